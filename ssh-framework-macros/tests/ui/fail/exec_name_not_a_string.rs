// `#[exec(...)]` takes a program name as a string; anything else is an error at the argument.
use ssh_framework::{ChannelIo, ExitStatus};

struct App;

#[ssh_framework::server]
impl App {
    #[exec(42)]
    async fn run(&self, _io: ChannelIo) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

fn main() {}
