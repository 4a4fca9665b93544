//! Run with: cargo run -p example-exec
//!
//! Then, with password `demo`:
//!
//! ```sh
//! ssh -p 2222 demo@127.0.0.1 sum 1 2 3                # 6
//! ssh -p 2222 demo@127.0.0.1 echo 'a; rm -rf ~'       # a; rm -rf ~
//! printf 'b\na\n' | ssh -p 2222 demo@127.0.0.1 sort -r
//! ssh -p 2222 demo@127.0.0.1 ls                       # ls: command not found (exit 127)
//! ```

use example_exec::Tools;
use ssh_framework::Server;

#[tokio::main]
async fn main() -> Result<(), ssh_framework::Error> {
    // `info` unless RUST_LOG says otherwise, so a refused request explains itself.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let server = Server::builder()
        .handlers(Tools)
        .listen("127.0.0.1:2222".parse().expect("a valid address"))
        .host_key_file("exec_host_ed25519_key")
        .build()
        .await?;
    println!("listening on {:?}; try: ssh -p 2222 demo@127.0.0.1 sum 1 2 3 (password demo)", server.local_addrs());
    server.run().await
}
