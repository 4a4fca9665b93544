// Outside a `#[server]` block `#[global_request]` gives the same explanation,
// and names the attribute to use for a forwarding request.
use ssh_framework::global_request;

struct App;

impl App {
    #[global_request("tcpip-forward")]
    async fn forward(&self) -> bool {
        true
    }
}

fn main() {
    let _ = App.forward();
}
