// A generic impl block gets a generic `Handlers` impl with the same bounds.
use ssh_framework::{ChannelIo, Command, ExitStatus, Server};

struct App<T> {
    greeting: T,
}

#[ssh_framework::server]
impl<T: AsRef<str> + Send + Sync + 'static> App<T> {
    #[channel(session)]
    async fn session(&self) -> bool {
        !self.greeting.as_ref().is_empty()
    }

    #[exec]
    async fn exec(&self, _command: Command, _io: ChannelIo) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

struct Wrapper<T>(T);

#[ssh_framework::server]
impl<T> Wrapper<T>
where
    T: Send + Sync + 'static,
{
    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }
}

fn main() {
    let _builder = Server::builder()
        .handlers(App { greeting: String::from("hi") })
        .handlers(Wrapper(42_u8));
}
