// A handler without `&self` is an error at the argument where `&self` belongs,
// and the remaining arguments are still checked as the fixed ones (no second error).
use ssh_framework::Auth;

struct App;

#[ssh_framework::server]
impl App {
    #[auth(none)]
    async fn guest(user: &str) -> Auth {
        Auth::from_bool(user == "guest")
    }
}

fn main() {}
