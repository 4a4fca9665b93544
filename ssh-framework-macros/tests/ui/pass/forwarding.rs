// Every forwarding attribute with the extractors and return types the docs
// promise compiles and registers, as plain and as path attributes.
use ssh_framework::extract::{PeerAddr, SocketPath, User};
use ssh_framework::forward::{Client, Forward, ListenTarget, OpenFailure, PermitOpen, TcpTarget, X11Request};
use ssh_framework::{ChannelIo, Server};
use tokio::io::AsyncWriteExt;

struct App {
    permit: PermitOpen,
}

#[ssh_framework::server]
impl App {
    #[channel(direct_tcpip)]
    async fn local(&self, target: TcpTarget, user: User, peer: PeerAddr) -> Forward {
        if target.host == "in-process" {
            return Forward::serve(|mut io: ChannelIo| async move {
                let _ = io.stdout.write_all(b"hello\n").await;
            });
        }
        if self.permit.allows(&target.host, target.port) && !user.is_empty() && peer.0.is_some() {
            Forward::Connect
        } else {
            Forward::Refuse(OpenFailure::AdministrativelyProhibited)
        }
    }

    #[channel(direct_streamlocal)]
    async fn local_socket(&self, path: SocketPath, _client: Client) -> Result<bool, String> {
        if path.0.is_empty() { Err(String::from("empty path")) } else { Ok(path.0.starts_with("/run/")) }
    }

    #[tcpip_forward]
    async fn remote(&self, target: ListenTarget) -> bool {
        target.port == 0 || target.port >= 1024
    }

    #[ssh_framework::cancel_tcpip_forward]
    async fn cancel_remote(&self, target: &ListenTarget) -> Result<bool, std::io::Error> {
        Ok(target.port != 22)
    }

    #[streamlocal_forward]
    async fn remote_socket(&self, path: SocketPath, user: User) -> bool {
        path.0.starts_with(&format!("/tmp/{}/", &*user))
    }

    #[cancel_streamlocal_forward]
    async fn cancel_remote_socket(&self, _path: SocketPath) -> bool {
        true
    }

    #[x11]
    async fn x11(&self, request: X11Request) -> bool {
        request.auth_protocol == "MIT-MAGIC-COOKIE-1"
    }

    #[ssh_framework::agent]
    async fn agent(&self, user: Option<User>) -> bool {
        user.is_some()
    }
}

fn main() {
    let app = App { permit: PermitOpen::any() };
    let _builder = Server::builder().handlers(app);
}
