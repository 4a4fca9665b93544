// A handler attribute in an impl block without `#[server]` is an error at the
// attribute saying what is missing.
use ssh_framework::{exec, Command, ExitStatus};

struct App;

impl App {
    #[exec]
    async fn run(&self, _command: Command) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

fn main() {}
