// A decision handler returning something else than `bool` gets the
// `IntoDecision` sentence at the return type.
struct App;

#[ssh_framework::server]
impl App {
    #[channel(session)]
    async fn session(&self) -> Option<bool> {
        Some(true)
    }
}

fn main() {}
