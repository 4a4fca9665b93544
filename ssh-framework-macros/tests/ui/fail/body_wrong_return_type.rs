// A shell, exec or subsystem handler returning something else than an exit
// status gets the `IntoExitStatus` sentence at the return type.
use ssh_framework::ChannelIo;

struct App;

#[ssh_framework::server]
impl App {
    #[shell]
    async fn shell(&self, _io: ChannelIo) -> &'static str {
        "done"
    }
}

fn main() {}
