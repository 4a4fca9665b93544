// Two handlers for the same program: the error is at the second one; a
// handler for another program and the catch-all are not duplicates.
use ssh_framework::{Command, ExitStatus};

struct App;

#[ssh_framework::server]
impl App {
    #[exec("git")]
    async fn git(&self, _command: Command) -> ExitStatus {
        ExitStatus::SUCCESS
    }

    #[exec("hg")]
    async fn hg(&self, _command: Command) -> ExitStatus {
        ExitStatus::SUCCESS
    }

    #[exec]
    async fn any(&self, _command: Command) -> ExitStatus {
        ExitStatus::SUCCESS
    }

    #[exec("git")]
    async fn git_again(&self, _command: Command) -> ExitStatus {
        ExitStatus::FAILURE
    }
}

fn main() {}
