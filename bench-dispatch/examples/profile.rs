//! Runs one kind of decision many times on one connection, for a profiler.
//!
//! Run with: `cargo run --release -p ssh-framework-bench-dispatch --example profile -- SERVER DECISION N`
//! where SERVER is `framework` or `russh` and DECISION is `env`, `unhandled`,
//! `open` or `exec`. Under `valgrind --tool=callgrind` or `--tool=dhat`, the
//! difference between N = 1 and N = 10001 divided by 10000 is the cost of one
//! decision (instructions, allocations), setup and teardown cancelled out.

use ssh_framework_bench_dispatch::{Keys, Servers, Which, close_channel, env, exec, unhandled};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: profile framework|russh env|unhandled|open|exec N";
    let [server, decision, n] = &args[..] else { panic!("{usage}") };
    let which = match server.as_str() {
        "framework" => Which::Framework,
        "russh" => Which::Russh,
        _ => panic!("{usage}"),
    };
    let n: u64 = n.parse().expect(usage);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    rt.block_on(async {
        let servers = Servers::new(Keys::generate()).await;
        let c = servers.logged_in(which).await;
        let mut channel = c.open_session().await.expect("opened");
        for _ in 0..n {
            match decision.as_str() {
                "env" => assert!(!env(&mut channel).await),
                "unhandled" => assert!(!unhandled(&mut channel).await),
                "open" => close_channel(c.open_session().await.expect("opened")).await,
                "exec" => assert_eq!(exec(&c, "true").await, Some(0)),
                _ => panic!("{usage}"),
            }
        }
        close_channel(channel).await;
        c.close().await;
    });
}
