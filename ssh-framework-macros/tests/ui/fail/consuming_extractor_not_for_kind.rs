// A consuming extractor in a kind that has nothing to consume (`ChannelIo` in
// `#[pty]`) is an error at that argument naming the handler kind.
use ssh_framework::ChannelIo;

struct App;

#[ssh_framework::server]
impl App {
    #[pty]
    async fn pty(&self, _io: ChannelIo) -> bool {
        true
    }
}

fn main() {
    let _ = ssh_framework::Server::builder().handlers(App);
}
