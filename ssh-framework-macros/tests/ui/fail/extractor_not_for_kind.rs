// An extractor the handler's kind never receives (a `WindowSize` in `#[shell]`)
// is an error at that argument naming the kinds that have one.
use ssh_framework::{ChannelIo, ExitStatus, WindowSize};

struct App;

#[ssh_framework::server]
impl App {
    #[shell]
    async fn shell(&self, size: WindowSize, _io: ChannelIo) -> ExitStatus {
        ExitStatus::code(size.cols)
    }
}

fn main() {
    let _ = ssh_framework::Server::builder().handlers(App);
}
