// A decision handler must return its decision; leaving out the return type is
// an error naming the expected signature.
struct App;

#[ssh_framework::server]
impl App {
    #[channel(session)]
    async fn session(&self) {}
}

fn main() {}
