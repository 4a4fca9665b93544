// An authentication handler returning something else than an authentication
// result gets the `IntoAuth` sentence at the return type.
struct App;

#[ssh_framework::server]
impl App {
    #[auth(password)]
    async fn login(&self, _user: &str, _password: &str) -> String {
        String::from("yes")
    }
}

fn main() {}
