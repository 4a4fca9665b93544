// Handlers run concurrently for every connection: `&mut self` is an error at
// the receiver suggesting interior mutability.
struct App;

#[ssh_framework::server]
impl App {
    #[channel(session)]
    async fn session(&mut self) -> bool {
        true
    }
}

fn main() {}
