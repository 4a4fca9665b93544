// `#[global_request]` is an error at the attribute explaining that russh
// answers custom global requests before any handler sees them; the rest of
// the block still registers.
struct App;

#[ssh_framework::server]
impl App {
    #[global_request("ping@example.com")]
    async fn ping(&self) -> bool {
        true
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }
}

fn main() {
    let _builder = ssh_framework::Server::builder().handlers(App);
}
