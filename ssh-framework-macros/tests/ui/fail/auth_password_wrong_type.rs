// A fixed argument of the wrong type is reported at that argument's type.
use ssh_framework::Auth;

struct App;

#[ssh_framework::server]
impl App {
    #[auth(password)]
    async fn login(&self, user: &str, password: u32) -> Auth {
        Auth::from_bool(user == "demo" && password == 1234)
    }
}

fn main() {}
