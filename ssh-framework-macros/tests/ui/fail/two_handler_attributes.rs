// One method handles one kind of request: the second attribute is the error.
use ssh_framework::{ChannelIo, ExitStatus};

struct App;

#[ssh_framework::server]
impl App {
    #[shell]
    #[exec]
    async fn run(&self, _io: ChannelIo) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

fn main() {}
