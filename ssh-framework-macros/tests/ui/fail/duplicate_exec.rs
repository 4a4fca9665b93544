// Two catch-all exec handlers in one block: the error is at the second one.
use ssh_framework::{Command, ExitStatus};

struct App;

#[ssh_framework::server]
impl App {
    #[exec]
    async fn first(&self, _command: Command) -> ExitStatus {
        ExitStatus::SUCCESS
    }

    #[exec]
    async fn second(&self, _command: Command) -> ExitStatus {
        ExitStatus::FAILURE
    }
}

fn main() {}
