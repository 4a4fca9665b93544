// A local-forwarding handler returning something else than `Forward`, `bool`
// or `Result` of those gets the `IntoForward` sentence at the return type.
use ssh_framework::forward::TcpTarget;

struct App;

#[ssh_framework::server]
impl App {
    #[channel(direct_tcpip)]
    async fn local(&self, target: TcpTarget) -> Option<TcpTarget> {
        Some(target)
    }
}

fn main() {}
