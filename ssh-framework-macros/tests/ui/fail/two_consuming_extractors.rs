// A handler takes at most one consuming extractor: a second `ChannelIo` is an
// error at that argument, saying why and what to do instead.
use ssh_framework::{ChannelIo, ExitStatus};

struct App;

#[ssh_framework::server]
impl App {
    #[exec]
    async fn run(&self, io: ChannelIo, again: ChannelIo) -> ExitStatus {
        drop((io, again));
        ExitStatus::SUCCESS
    }
}

fn main() {
    let _ = ssh_framework::Server::builder().handlers(App);
}
