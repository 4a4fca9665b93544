// `#[server]` takes no arguments; the error is at them.
struct App;

#[ssh_framework::server(port = 22)]
impl App {
    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }
}

fn main() {}
