// `#[env]` is not exported (a glob import would shadow `std::env!`), so outside
// a `#[server]` block it is rustc's "cannot find attribute" error, and `env!`
// still means std's macro next to `use ssh_framework::*`.
use ssh_framework::*;

struct App;

impl App {
    #[env]
    async fn env(&self, _name: &str, _value: &str) -> bool {
        true
    }
}

fn main() {
    let _ = (env!("CARGO_PKG_NAME"), ExitStatus::SUCCESS);
}
