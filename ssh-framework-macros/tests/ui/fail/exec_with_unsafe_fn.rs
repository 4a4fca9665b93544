// Handlers are called by generated safe code, so an `unsafe` handler is an
// error at `unsafe`.
use ssh_framework::{Command, ExitStatus};

struct App;

#[ssh_framework::server]
impl App {
    #[exec]
    async unsafe fn run(&self, _command: Command) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

fn main() {}
