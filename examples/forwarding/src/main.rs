//! Run with: cargo run -p example-forwarding
//!
//! Port forwarding with policies: `ssh -L` only to the destinations a
//! `PermitOpen` list allows, plus an in-process echo service reachable as
//! `echo.internal:7`; `ssh -R` on loopback only; `ssh -A` with a command
//! that lists the forwarded agent's keys. Log in as `demo`, password `demo`:
//!
//! ```text
//! ssh -p 2223 -N -L 9000:echo.internal:7 demo@127.0.0.1     # then: nc 127.0.0.1 9000
//! ssh -p 2223 -N -R 0:127.0.0.1:8000 demo@127.0.0.1         # prints the allocated port
//! ssh -p 2223 -A demo@127.0.0.1 list-agent-keys
//! ```

// ANCHOR: all
use ssh_framework::extract::{AgentForwarded, User};
use ssh_framework::forward::{AgentListener, Client, Forward, GatewayPorts, ListenTarget, OpenFailure, PermitOpen, TcpTarget};
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, Server};
use tokio::io::AsyncWriteExt;

struct Forwarding {
    permit_open: PermitOpen,
}

#[ssh_framework::server]
impl Forwarding {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str) -> Auth {
        Auth::from_bool(user == "demo" && password == "demo")
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    // ANCHOR: local
    /// `ssh -L`: the in-process echo service, or a destination on the list.
    #[channel(direct_tcpip)]
    async fn local_forward(&self, target: TcpTarget, user: User) -> Forward {
        // ANCHOR: in_process
        if target.host == "echo.internal" && target.port == 7 {
            // Nothing listens on a socket: the channel itself is the connection.
            return Forward::serve(|mut io: ChannelIo| async move {
                let _ = tokio::io::copy(&mut io.stdin, &mut io.stdout).await;
            });
        }
        // ANCHOR_END: in_process
        if self.permit_open.allows(&target.host, target.port) {
            Forward::Connect
        } else {
            eprintln!("{user}: -L to {}:{} is not on the list", target.host, target.port);
            Forward::Refuse(OpenFailure::AdministrativelyProhibited)
        }
    }
    // ANCHOR_END: local

    // ANCHOR: remote
    /// `ssh -R`: any unprivileged port. The builder's `GatewayPorts::No`
    /// binds it on loopback whatever address the client asks for.
    #[tcpip_forward]
    async fn remote_forward(&self, target: ListenTarget) -> bool {
        target.port == 0 || target.port >= 1024
    }
    // ANCHOR_END: remote

    // ANCHOR: agent
    /// `ssh -A`: allowed for every session.
    #[agent]
    async fn agent(&self) -> bool {
        true
    }

    /// Runs `ssh-add -l` against the client's agent, as a program started by
    /// a login shell would reach it.
    #[exec("list-agent-keys")]
    async fn list_agent_keys(
        &self,
        _command: Command,
        mut io: ChannelIo,
        forwarded: AgentForwarded,
        client: Client,
    ) -> std::io::Result<ExitStatus> {
        if !forwarded.0 {
            io.stderr.write_all(b"no agent: connect with ssh -A\n").await?;
            return Ok(ExitStatus::code(2));
        }
        // A socket in a fresh 0700 directory; each connection to it opens an
        // agent channel to the client. Both go away when `agent` drops.
        let agent = AgentListener::bind(client, &std::env::temp_dir())?;
        let output = tokio::process::Command::new("ssh-add")
            .arg("-l")
            .env("SSH_AUTH_SOCK", agent.path())
            .output()
            .await?;
        io.stdout.write_all(&output.stdout).await?;
        io.stderr.write_all(&output.stderr).await?;
        Ok(ExitStatus::code(output.status.code().map_or(1, |c| c as u32)))
    }
    // ANCHOR_END: agent
}

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `info` unless RUST_LOG says otherwise, so a refused request explains itself.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    // ANCHOR: permit_open
    // Like OpenSSH's `PermitOpen`: exact names as the client sends them, `*` for any port or host.
    let permit_open: PermitOpen = "localhost:8080,127.0.0.1:8080,db.internal:5432".parse()?;
    // ANCHOR_END: permit_open
    let server = Server::builder()
        .handlers(Forwarding { permit_open })
        .gateway_ports(GatewayPorts::No)
        .max_listeners(4)
        .max_channels(64)
        .listen("127.0.0.1:2223".parse()?)
        .host_key_file("forwarding_host_ed25519_key")
        .build()
        .await?;
    println!("listening on {:?}; log in as demo, password demo", server.local_addrs());
    server.run().await?;
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
