//! [`TestServer`]: a server built with the framework, configured by the test,
//! listening on a free port of 127.0.0.1 and served by a spawned task.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ssh_framework::{Server, ServerBuilder, ShutdownHandle};
use tokio::task::JoinHandle;

use crate::openssh::Ssh;
use crate::{init_tracing, within};

/// A server under test, listening on a free port of 127.0.0.1, served by a spawned task.
pub struct TestServer {
    addr: SocketAddr,
    shutdown: ShutdownHandle,
    task: Option<JoinHandle<Result<(), ssh_framework::Error>>>,
    dir: tempfile::TempDir,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).field("dir", &self.dir.path()).finish()
    }
}

impl TestServer {
    /// Builds and spawns a server. `configure` receives a builder that already
    /// listens on `127.0.0.1:0`, has a fresh ed25519 host key in the server's
    /// temp dir and a 10 ms rejection delay; it adds handlers, layers, limits.
    pub async fn start(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
        TestServer::start_in(tempfile::tempdir().expect("a temp dir"), configure).await
    }

    /// [`start`](TestServer::start) with `dir` as the server's temp dir (for
    /// one under `/tmp` with a short path when Unix sockets go in it).
    pub async fn start_in(dir: tempfile::TempDir, configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
        init_tracing();
        let builder = Server::builder()
            .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .host_key_file(dir.path().join("host_ed25519_key"))
            .rejection_delay(Duration::from_millis(10));
        let server = configure(builder).build().await.expect("the server builds");
        let addr = server.local_addrs()[0];
        let shutdown = server.shutdown_handle();
        let task = tokio::spawn(server.run());
        TestServer { addr, shutdown, task: Some(task), dir }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// This server's temp dir, for client keys, askpass scripts and sockets.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A handle that starts a graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// An OpenSSH client command for `user` against this server.
    pub fn ssh(&self, user: &str) -> Ssh {
        Ssh::new(self.port(), user)
    }

    /// Waits for `Server::run` to return (after a shutdown) and gives its result.
    pub async fn stopped(&mut self) -> Result<(), ssh_framework::Error> {
        let task = self.task.take().expect("the server task is awaited once");
        within("the server to stop", task).await.expect("the server task did not panic")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
