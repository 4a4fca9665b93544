// Extensions: an auth handler attaches an account to the connection; an exec
// handler extracts it (and a value a layer put on the request, optionally),
// with `Factors`, `PeerAddr` shown with `Display`, and the command's argv.
use std::sync::Arc;

use ssh_framework::extract::{Extension, PeerAddr};
use ssh_framework::{Auth, ChannelIo, Command, Connection, ExitStatus, Factors};

#[derive(Clone)]
struct Account {
    role: &'static str,
}

#[derive(Clone)]
struct RequestId(u64);

struct App;

#[ssh_framework::server]
impl App {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str, connection: Arc<Connection>) -> Auth {
        let ok = user == "alice" && password == "pw";
        if ok {
            connection.insert_extension(Account { role: "admin" });
        }
        Auth::from_bool(ok)
    }

    #[exec]
    async fn run(
        &self,
        account: Extension<Account>,
        id: Option<Extension<RequestId>>,
        factors: Factors,
        peer: PeerAddr,
        command: Command,
        _io: ChannelIo,
    ) -> Result<ExitStatus, std::io::Error> {
        let argv = command.argv().map_err(std::io::Error::other)?;
        let _ = (account.role, id.map(|i| i.0 .0), factors.as_slice().len(), peer.to_string(), argv);
        Ok(ExitStatus::SUCCESS)
    }
}

fn main() {
    let _ = ssh_framework::Server::builder().handlers(App);
}
