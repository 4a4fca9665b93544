// A type has one `#[server]` block (it implements `Handlers` once); a second
// block for the same type is rustc's conflicting-impl error at its attribute,
// pointing back at the first.
use ssh_framework::{ChannelIo, ExitStatus};

struct App;

#[ssh_framework::server]
impl App {
    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }
}

#[ssh_framework::server]
impl App {
    #[shell]
    async fn shell(&self, _io: ChannelIo) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

fn main() {}
