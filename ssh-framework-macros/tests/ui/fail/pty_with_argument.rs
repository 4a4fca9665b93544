// `#[pty]` takes no arguments; the error points at them.
use ssh_framework::PtyRequest;

struct App;

#[ssh_framework::server]
impl App {
    #[pty(foo)]
    async fn pty(&self, _pty: &PtyRequest) -> bool {
        true
    }
}

fn main() {}
