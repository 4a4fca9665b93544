// `#[subsystem]` needs the subsystem's name; the error shows the form.
use ssh_framework::{ChannelIo, ExitStatus};

struct App;

#[ssh_framework::server]
impl App {
    #[subsystem]
    async fn sftp(&self, _io: ChannelIo) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

fn main() {}
