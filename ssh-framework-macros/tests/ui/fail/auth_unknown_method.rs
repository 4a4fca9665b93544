// An unknown authentication method is reported at the method's name, with the
// accepted methods and the closest one.
use ssh_framework::Auth;

struct App;

#[ssh_framework::server]
impl App {
    #[auth(passwd)]
    async fn login(&self, user: &str, password: &str) -> Auth {
        Auth::from_bool(user == password)
    }
}

fn main() {}
