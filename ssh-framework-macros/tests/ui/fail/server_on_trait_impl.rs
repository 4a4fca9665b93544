// `#[server]` goes on an inherent impl block; on a trait impl it is an error at
// the trait, and nothing else fails.
struct App;

#[ssh_framework::server]
impl Default for App {
    fn default() -> Self {
        App
    }
}

fn main() {
    let _ = ssh_framework::Server::builder().handlers(App::default());
}
