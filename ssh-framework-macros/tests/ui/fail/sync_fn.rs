// Handlers are `async fn`; a plain `fn` is an error at `fn`.
struct App;

#[ssh_framework::server]
impl App {
    #[channel(session)]
    fn session(&self) -> bool {
        true
    }
}

fn main() {}
