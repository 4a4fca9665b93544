// A handler whose future is not `Send` (a std `MutexGuard` held across an
// `.await`) is an error at the handler, not at the `#[server]` line.
use std::sync::Mutex;

use ssh_framework::{ChannelIo, ExitStatus};

struct App {
    count: Mutex<u32>,
}

#[ssh_framework::server]
impl App {
    #[exec]
    async fn run(&self, _io: ChannelIo) -> ExitStatus {
        let guard = self.count.lock().unwrap();
        tokio::task::yield_now().await;
        ExitStatus::code(*guard)
    }
}

fn main() {
    let _ = ssh_framework::Server::builder().handlers(App { count: Mutex::new(0) });
}
