// All mistakes of a block are reported in one build, each once: an unknown
// authentication method, a sync handler (macro errors) and an argument that is
// not an extractor (a type error). `.handlers(App)` still type-checks.
use ssh_framework::{Auth, ChannelIo, ExitStatus};

struct App;

#[ssh_framework::server]
impl App {
    #[auth(passwrd)]
    async fn login(&self, _user: &str, _password: &str) -> Auth {
        Auth::Reject
    }

    #[channel(session)]
    fn session(&self) -> bool {
        true
    }

    #[shell]
    async fn shell(&self, _io: ChannelIo, _count: usize) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

fn main() {
    let _ = ssh_framework::Server::builder().handlers(App);
}
