// An argument whose type is not an extractor gets the `FromRequest` sentence at
// that argument's type, and nothing else fails.
use ssh_framework::{ChannelIo, ExitStatus};

struct App;

struct Config {
    verbose: bool,
}

#[ssh_framework::server]
impl App {
    #[exec]
    async fn run(&self, config: Config, _io: ChannelIo) -> ExitStatus {
        ExitStatus::code(u32::from(config.verbose))
    }
}

fn main() {
    let _ = ssh_framework::Server::builder().handlers(App);
}
