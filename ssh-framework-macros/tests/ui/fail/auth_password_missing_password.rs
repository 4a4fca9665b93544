// A password handler without its `password: &str` argument is reported at the
// argument list, naming what is missing and the whole expected signature.
use ssh_framework::Auth;

struct App;

#[ssh_framework::server]
impl App {
    #[auth(password)]
    async fn login(&self, user: &str) -> Auth {
        Auth::from_bool(user == "demo")
    }
}

fn main() {}
