// A `#[server]` block written by a `macro_rules!` macro, with the signature's
// types passed in as `$ty` fragments, is checked and expanded like one
// written by hand.
use ssh_framework::{Auth, ChannelIo, ExitStatus, Server};

macro_rules! password_server {
    ($name:ident, $secret:ty, $auth:ty, $io:ty, $status:ty) => {
        struct $name;

        #[ssh_framework::server]
        impl $name {
            #[auth(password)]
            async fn login(&self, user: &str, password: $secret) -> $auth {
                Auth::from_bool(user == password)
            }

            #[shell]
            async fn shell(&self, _io: $io) -> $status {
                ExitStatus::SUCCESS
            }
        }
    };
}

password_server!(App, &str, Auth, ChannelIo, ExitStatus);

fn main() {
    let _builder = Server::builder().handlers(App);
}
