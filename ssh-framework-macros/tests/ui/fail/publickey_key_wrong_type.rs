// The key of a publickey handler is a `&PublicKey`; a reference to another
// type is a type error at that argument naming both types.
use ssh_framework::Auth;

struct App;

#[ssh_framework::server]
impl App {
    #[auth(publickey)]
    async fn key(&self, _user: &str, key: &[u8]) -> Auth {
        Auth::from_bool(key.is_empty())
    }
}

fn main() {}
