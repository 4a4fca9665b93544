// `#[banner]` handlers take no arguments besides `&self`, not even extractors.
use ssh_framework::extract::PeerAddr;

struct App;

#[ssh_framework::server]
impl App {
    #[banner]
    async fn banner(&self, _peer: PeerAddr) -> String {
        String::from("hi")
    }
}

fn main() {}
