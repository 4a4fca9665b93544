// `&str` is a fixed argument of authentication and env handlers only; in an
// `#[exec]` handler it is one error at the argument, pointing to `User` and
// `Command`, and no second error about `str` not being `Sized`.
use ssh_framework::{ChannelIo, ExitStatus};

struct App;

#[ssh_framework::server]
impl App {
    #[exec]
    async fn run(&self, user: &str, _io: ChannelIo) -> ExitStatus {
        ExitStatus::code(user.len() as u32)
    }
}

fn main() {
    let _ = ssh_framework::Server::builder().handlers(App);
}
