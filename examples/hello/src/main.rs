//! Run with: cargo run -p example-hello
//!
//! The smallest useful server: one password user, and an exec handler that
//! greets and echoes stdin back. Try it with
//! `ssh -p 2222 demo@127.0.0.1 hello` (password `demo`).

// ANCHOR: all
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, Server};
use tokio::io::AsyncWriteExt;

struct Hello;

// ANCHOR: handlers
#[ssh_framework::server]
impl Hello {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str) -> Auth {
        Auth::from_bool(user == "demo" && password == "demo")
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[exec]
    async fn exec(&self, command: Command, mut io: ChannelIo) -> ExitStatus {
        let greeting = format!("hello, you ran `{command}`\n");
        if io.stdout.write_all(greeting.as_bytes()).await.is_err() {
            return ExitStatus::FAILURE;
        }
        // Echo stdin back until the client sends EOF.
        match tokio::io::copy(&mut io.stdin, &mut io.stdout).await {
            Ok(_) => ExitStatus::SUCCESS,
            Err(_) => ExitStatus::FAILURE,
        }
    }
}
// ANCHOR_END: handlers

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), ssh_framework::Error> {
    // `info` unless RUST_LOG says otherwise, so a refused request explains itself.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let server = Server::builder()
        .handlers(Hello)
        .listen("127.0.0.1:2222".parse().expect("a valid address"))
        .host_key_file("hello_host_ed25519_key")
        .build()
        .await?;
    println!("listening on {:?}; try: ssh -p 2222 demo@127.0.0.1 hello (password demo)", server.local_addrs());
    server.run().await
}
// ANCHOR_END: main
// ANCHOR_END: all
