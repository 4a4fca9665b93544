// The framework calls handlers with the types of their signature, so a generic
// handler is an error at its generics.
struct App;

#[ssh_framework::server]
impl App {
    #[channel(session)]
    async fn session<T: Default>(&self, _value: T) -> bool {
        true
    }
}

fn main() {}
