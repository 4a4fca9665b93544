// `#[cfg]` on a handler applies to its registration too, and two handlers for
// one decision under different `#[cfg]`s are not a duplicate.
use ssh_framework::{ChannelIo, Command, ExitStatus, Server};

struct App;

#[ssh_framework::server]
impl App {
    #[cfg(any())]
    #[exec]
    async fn never_compiled(&self, _command: Command, _io: ChannelIo) -> ExitStatus {
        ExitStatus::FAILURE
    }

    #[cfg(not(any()))]
    #[exec]
    async fn exec(&self, _command: Command, _io: ChannelIo) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

fn main() {
    let _builder = Server::builder().handlers(App);
}
