//! The routing table built from `#[server]` impl blocks, and the `tower::Service` that dispatches on it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;

use crate::auth::MethodSet;
use crate::error::{Error, ErrorKind};
use crate::handler::slot::Slot;
use crate::request::{Request, RequestKind, Response};

/// A type whose annotated methods handle requests: implemented by `#[ssh_framework::server]`.
///
/// Several types can be registered on one [`ServerBuilder`](crate::ServerBuilder),
/// an app's authentication in one and a reusable module (a git service, say) in
/// another; two handlers for the same decision are a [`RouteConflict`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no SSH handlers",
    label = "put `#[ssh_framework::server]` on an `impl` block of this type"
)]
pub trait Handlers: Send + Sync + 'static {
    /// Adds this type's handlers to `routes`.
    fn register(self: Arc<Self>, routes: &mut Routes) -> Result<(), RouteConflict>;
}

/// Two handlers claim the same decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConflict {
    route: String,
}

impl RouteConflict {
    /// What both handlers claim, such as `exec "git-upload-pack"`.
    pub fn route(&self) -> &str {
        &self.route
    }
}

impl fmt::Display for RouteConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "two handlers are registered for {}", self.route)
    }
}

impl std::error::Error for RouteConflict {}

impl From<RouteConflict> for Error {
    fn from(e: RouteConflict) -> Self {
        Error::with_source(ErrorKind::RouteConflict, "", e)
    }
}

/// A registered handler: builds the response to one request.
pub type Route = Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>;
/// A registered `#[allowed_auths]` handler.
pub type AllowedAuthsRoute = Arc<dyn Fn(String) -> BoxFuture<'static, MethodSet> + Send + Sync>;
/// A registered `#[banner]` handler.
pub type BannerRoute = Arc<dyn Fn() -> BoxFuture<'static, Option<String>> + Send + Sync>;

#[derive(Default)]
struct Table {
    slots: HashMap<Slot, Route>,
    exec_any: Option<Route>,
    exec: HashMap<String, Route>,
    subsystem: HashMap<String, Route>,
    allowed_auths: Option<AllowedAuthsRoute>,
    banner: Option<BannerRoute>,
}

/// The routing table: every registered handler, and the innermost `tower::Service` of the stack.
///
/// A request no handler claims gets [`Response::Reject`], as paramiko's
/// `ServerInterface` defaults do.
#[derive(Clone, Default)]
pub struct Routes {
    table: Arc<Table>,
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut slots: Vec<&str> = self.table.slots.keys().map(|s| s.attribute()).collect();
        slots.sort_unstable();
        f.debug_struct("Routes")
            .field("slots", &slots)
            .field("exec_any", &self.table.exec_any.is_some())
            .field("exec", &self.table.exec.keys().collect::<Vec<_>>())
            .field("subsystem", &self.table.subsystem.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Routes {
    /// An empty table: every request is refused.
    pub fn new() -> Self {
        Routes::default()
    }

    /// Adds every handler of `handlers`.
    pub fn add<H: Handlers>(&mut self, handlers: H) -> Result<(), RouteConflict> {
        Arc::new(handlers).register(self)
    }

    fn table(&mut self) -> &mut Table {
        Arc::get_mut(&mut self.table).expect("routes are only built before the server starts")
    }

    /// Registers the handler of a slot (generated code calls this).
    pub(crate) fn slot(&mut self, slot: Slot, route: Route) -> Result<(), RouteConflict> {
        let table = self.table();
        if table.slots.contains_key(&slot) {
            return Err(RouteConflict { route: slot.attribute().to_owned() });
        }
        table.slots.insert(slot, route);
        Ok(())
    }

    /// Registers an exec handler for one program name, or for any command (generated code calls this).
    pub(crate) fn exec(&mut self, program: Option<&str>, route: Route) -> Result<(), RouteConflict> {
        let table = self.table();
        match program {
            None if table.exec_any.is_some() => Err(RouteConflict { route: "#[exec]".into() }),
            None => {
                table.exec_any = Some(route);
                Ok(())
            }
            Some(name) if table.exec.contains_key(name) => {
                Err(RouteConflict { route: format!("#[exec({name:?})]") })
            }
            Some(name) => {
                table.exec.insert(name.to_owned(), route);
                Ok(())
            }
        }
    }

    /// Registers a subsystem handler (generated code calls this).
    pub(crate) fn subsystem(&mut self, name: &str, route: Route) -> Result<(), RouteConflict> {
        let table = self.table();
        if table.subsystem.contains_key(name) {
            return Err(RouteConflict { route: format!("#[subsystem({name:?})]") });
        }
        table.subsystem.insert(name.to_owned(), route);
        Ok(())
    }

    /// Registers the `#[allowed_auths]` handler (generated code calls this).
    pub(crate) fn allowed_auths(&mut self, route: AllowedAuthsRoute) -> Result<(), RouteConflict> {
        let table = self.table();
        if table.allowed_auths.is_some() {
            return Err(RouteConflict { route: "#[allowed_auths]".into() });
        }
        table.allowed_auths = Some(route);
        Ok(())
    }

    /// Registers the `#[banner]` handler (generated code calls this).
    pub(crate) fn banner(&mut self, route: BannerRoute) -> Result<(), RouteConflict> {
        let table = self.table();
        if table.banner.is_some() {
            return Err(RouteConflict { route: "#[banner]".into() });
        }
        table.banner = Some(route);
        Ok(())
    }

    /// The methods that have a handler (`none` included when there is an `#[auth(none)]`).
    pub fn methods(&self) -> MethodSet {
        use crate::auth::Method;
        let mut set = MethodSet::EMPTY;
        for (slot, method) in [
            (Slot::AuthNone, Method::None),
            (Slot::AuthPassword, Method::Password),
            (Slot::AuthPublicKey, Method::PublicKey),
            (Slot::AuthCertificate, Method::PublicKey),
            (Slot::AuthKeyboardInteractive, Method::KeyboardInteractive),
        ] {
            if self.table.slots.contains_key(&slot) {
                set.insert(method);
            }
        }
        set
    }

    /// Whether a `#[auth(certificate)]` handler is registered.
    pub(crate) fn takes_certificates(&self) -> bool {
        self.table.slots.contains_key(&Slot::AuthCertificate)
    }

    /// The methods `user` may try: the `#[allowed_auths]` answer, limited to methods with a handler.
    pub(crate) fn allowed_methods(&self, user: &str) -> impl Future<Output = MethodSet> + Send + 'static {
        let with_handler = self.methods();
        let custom = self.table.allowed_auths.as_ref().map(|route| route(user.to_owned()));
        async move {
            match custom {
                Some(fut) => fut.await.intersection(with_handler),
                None => with_handler,
            }
        }
    }

    pub(crate) fn banner_text(&self) -> Option<BoxFuture<'static, Option<String>>> {
        self.table.banner.as_ref().map(|route| route())
    }

    fn route_for(&self, kind: &RequestKind) -> Option<&Route> {
        let table = &*self.table;
        let slot = match kind {
            RequestKind::Connect => return None,
            RequestKind::AuthNone { .. } => Slot::AuthNone,
            RequestKind::AuthPassword { .. } => Slot::AuthPassword,
            RequestKind::AuthPublicKey { .. } => Slot::AuthPublicKey,
            RequestKind::AuthCertificate { .. } => Slot::AuthCertificate,
            RequestKind::AuthKeyboardInteractive { .. } => Slot::AuthKeyboardInteractive,
            RequestKind::ChannelOpenSession => Slot::ChannelSession,
            RequestKind::Pty(_) => Slot::Pty,
            RequestKind::Env { .. } => Slot::Env,
            RequestKind::Shell => Slot::Shell,
            RequestKind::WindowChange(_) => Slot::WindowChange,
            RequestKind::Signal(_) => Slot::Signal,
            RequestKind::X11(_) => Slot::X11,
            RequestKind::AgentForward => Slot::Agent,
            RequestKind::DirectTcpip(_) => Slot::DirectTcpip,
            RequestKind::DirectStreamlocal { .. } => Slot::DirectStreamlocal,
            RequestKind::TcpipForward(_) => Slot::TcpipForward,
            RequestKind::CancelTcpipForward(_) => Slot::CancelTcpipForward,
            RequestKind::StreamlocalForward { .. } => Slot::StreamlocalForward,
            RequestKind::CancelStreamlocalForward { .. } => Slot::CancelStreamlocalForward,
            RequestKind::Exec(command) => {
                return table.exec.get(command.program()).or(table.exec_any.as_ref());
            }
            RequestKind::Subsystem(name) => return table.subsystem.get(name),
        };
        table.slots.get(&slot)
    }
}

impl tower::Service<Request> for Routes {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if matches!(request.kind(), RequestKind::Connect) {
            // Connections are allowed; what they may do is decided per request.
            return Box::pin(async { Ok(Response::Accept) });
        }
        match self.route_for(request.kind()) {
            Some(route) => {
                let fut = route(request);
                Box::pin(async move { Ok(fut.await) })
            }
            // Closing a listener the client owns is never a privilege: without a
            // handler, a cancel is allowed (the connection checks ownership).
            None if matches!(
                request.kind(),
                RequestKind::CancelTcpipForward(_) | RequestKind::CancelStreamlocalForward { .. }
            ) =>
            {
                Box::pin(async { Ok(Response::Accept) })
            }
            None => {
                let name = request.kind().name();
                match request.kind() {
                    // Clients send env unasked (OpenSSH's SendEnv) and ignore
                    // the refusal, and probe methods (`none` first): not worth
                    // a line per login; a failed login is logged where it is counted.
                    kind if kind.auth_user().is_some() => tracing::debug!(request = name, "no handler; refused"),
                    RequestKind::Env { .. } | RequestKind::Connect => tracing::debug!(request = name, "no handler; refused"),
                    RequestKind::Exec(command) => tracing::info!(request = name, %command, "no handler; refused"),
                    RequestKind::Subsystem(subsystem) => tracing::info!(request = name, subsystem, "no handler; refused"),
                    _ => tracing::info!(request = name, "no handler; refused"),
                }
                Box::pin(async { Ok(Response::Reject) })
            }
        }
    }
}
