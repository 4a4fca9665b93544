// `#[auth]` needs the method it decides; the error lists them.
use ssh_framework::Auth;

struct App;

#[ssh_framework::server]
impl App {
    #[auth]
    async fn login(&self, user: &str) -> Auth {
        Auth::from_bool(user == "guest")
    }
}

fn main() {}
