// A handler attribute outside a `#[server]` impl block is an error at the
// attribute saying where it belongs; the function is kept, so its callers compile.
use ssh_framework::{Command, ExitStatus};

#[ssh_framework::exec]
async fn run(_command: Command) -> ExitStatus {
    ExitStatus::SUCCESS
}

fn main() {
    let _ = run;
}
