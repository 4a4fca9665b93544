//! Run with: cargo run -p example-auth
//!
//! alice logs in with a password, bob with a key from `bob.authorized_keys`
//! and then a one-time code, guest with nothing:
//!
//! ```sh
//! ssh -p 2222 alice@127.0.0.1 whoami        # password alice-pw
//! cat ~/.ssh/id_ed25519.pub > bob.authorized_keys
//! ssh -p 2222 bob@127.0.0.1 whoami          # your key, then a code
//! ssh -p 2222 guest@127.0.0.1 whoami
//! ```

use example_auth::App;
use ssh_framework::Server;
use ssh_framework::authorized_keys::AuthorizedKeys;

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `info` unless RUST_LOG says otherwise: every refused login is logged at info.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();

    // bob's keys, one per line as in ~/.ssh/authorized_keys. A missing file
    // means bob has no key yet, so no key of his can pass.
    let bob_keys = match AuthorizedKeys::read("bob.authorized_keys") {
        Ok(keys) => keys,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!("bob.authorized_keys not found: bob cannot log in");
            AuthorizedKeys::default()
        }
        Err(e) => return Err(format!("bob.authorized_keys: {e}").into()),
    };
    for error in bob_keys.errors() {
        tracing::warn!("bob.authorized_keys: {error}; line skipped");
    }
    let app = App::new()
        .with_password("alice", "alice-pw")
        .with_key_and_code("bob", bob_keys, &["314159", "271828", "161803"])
        .with_guest("guest");

    let server = Server::builder()
        .handlers(app)
        .listen("127.0.0.1:2222".parse()?)
        .host_key_file("auth_host_ed25519_key")
        .build()
        .await?;
    println!("listening on {:?}; bob's one-time codes: 314159 271828 161803", server.local_addrs());
    server.run().await?;
    Ok(())
}
// ANCHOR_END: main
