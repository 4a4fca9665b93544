// Every handler attribute with the extractors and return types the docs
// promise compiles and registers.
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ssh_framework::extract::{Environment, PeerAddr, Pty, SubsystemName, User};
use ssh_framework::keys::PublicKey;
use ssh_framework::{
    Auth, ChannelIo, Command, Connection, ExitStatus, Factors, Method, MethodSet, Prompt, Prompter, PtyRequest,
    Server, Signal, WindowSize,
};

struct App {
    sessions: AtomicU32,
    /// The keys that may log in as `admin`.
    admin_keys: Vec<PublicKey>,
}

#[ssh_framework::server]
impl App {
    /// Doc comments and other attributes stay on the method.
    #[auth(none)]
    #[allow(clippy::unused_async)]
    async fn guest(&self, user: &str, peer: PeerAddr) -> bool {
        user == "guest" && peer.0.is_some()
    }

    #[auth(password)]
    async fn password(&self, user: &str, password: &str, passed: Factors) -> Result<Auth, String> {
        match (user, password) {
            ("admin", "secret") if passed.contains(Method::PublicKey) => Ok(Auth::Accept),
            ("admin", "secret") => Ok(Auth::Partial(MethodSet::single(Method::PublicKey))),
            ("", _) => Err(String::from("empty user name")),
            _ => Ok(Auth::Reject),
        }
    }

    #[auth(publickey)]
    async fn key(&self, user: &str, key: &PublicKey, connection: Arc<Connection>) -> Auth {
        let _ = connection;
        Auth::from_bool(user == "admin" && self.admin_keys.iter().any(|k| k.key_data() == key.key_data()))
    }

    #[auth(keyboard_interactive)]
    async fn otp(&self, _user: &str, prompter: &mut Prompter, user: Option<User>) -> Result<bool, String> {
        let _ = user;
        let code = prompter.ask_one(Prompt::hidden("Code: ")).await.map_err(|e| e.to_string())?;
        Ok(code == "123456")
    }

    #[allowed_auths]
    async fn methods(&self, user: &str) -> MethodSet {
        if user == "admin" {
            [Method::PublicKey, Method::Password].into()
        } else {
            MethodSet::single(Method::KeyboardInteractive)
        }
    }

    #[banner]
    async fn banner(&self) -> Option<String> {
        Some(String::from("Authorized use only.\n"))
    }

    #[channel(session)]
    async fn session(&self, user: User) -> bool {
        self.sessions.fetch_add(1, Ordering::Relaxed) < 100 && !user.is_empty()
    }

    #[pty]
    async fn pty(&self, pty: &PtyRequest, size: WindowSize) -> Result<bool, String> {
        Ok(pty.term.starts_with("xterm") && size.cols > 0)
    }

    #[env]
    async fn env(&self, name: &str, value: &str) -> bool {
        name == "LANG" && !value.is_empty()
    }

    #[window_change]
    async fn resize(&self, size: WindowSize) -> bool {
        size.rows > 0
    }

    #[signal]
    async fn signal(&self, signal: Signal) -> bool {
        signal.name() == Signal::INT
    }

    #[shell]
    async fn shell(&self, io: ChannelIo, pty: Pty, env: Environment) -> ExitStatus {
        let _ = (io, pty, env);
        ExitStatus::SUCCESS
    }

    #[exec]
    async fn exec(&self, command: Command, _io: ChannelIo) -> u32 {
        u32::from(command.as_str().is_empty())
    }

    #[exec("git-upload-pack")]
    async fn upload_pack(&self, _command: Command, _io: ChannelIo) -> Result<ExitStatus, std::io::Error> {
        Ok(ExitStatus::SUCCESS)
    }

    #[ssh_framework::exec("true")]
    async fn true_(&self) {}

    #[subsystem("sftp")]
    async fn sftp(&self, name: SubsystemName, _io: ChannelIo) -> Result<(), String> {
        Err(format!("{} is not implemented", name.0))
    }

    /// Methods without a handler attribute are left alone.
    fn helper(&self) -> u32 {
        self.sessions.load(Ordering::Relaxed)
    }
}

fn main() {
    let app = App { sessions: AtomicU32::new(0), admin_keys: Vec::new() };
    assert_eq!(app.helper(), 0);
    let _builder = Server::builder().handlers(app);
}
