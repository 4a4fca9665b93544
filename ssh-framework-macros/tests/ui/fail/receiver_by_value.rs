// Handlers borrow the shared value: `self` by value is an error at `self`.
struct App;

#[ssh_framework::server]
impl App {
    #[channel(session)]
    async fn session(self) -> bool {
        true
    }
}

fn main() {}
