// An allowed-auths handler must return something a `MethodSet` converts from;
// the error is at the return type.
struct App;

#[ssh_framework::server]
impl App {
    #[allowed_auths]
    async fn methods(&self, _user: &str) -> Vec<String> {
        vec![String::from("password")]
    }
}

fn main() {}
