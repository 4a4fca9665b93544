// A channel type the macro does not know (here OpenSSH's `tun@openssh.com`)
// is reported at its name, with the supported ones.
struct App;

#[ssh_framework::server]
impl App {
    #[channel(tun)]
    async fn tunnel(&self) -> bool {
        true
    }
}

fn main() {}
