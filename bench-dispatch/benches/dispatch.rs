//! The cost of one decision: the `#[server]`-generated service stack against a
//! hand-written russh `Handler`, each serving a whole connection over an
//! in-memory stream to russh's client (see the crate docs for why).
//!
//! Run with: `cargo bench -p ssh-framework-bench-dispatch`
//!
//! Each benchmark times only its loop: the connection a request runs on is
//! set up before and closed after. Everything runs on one current-thread
//! runtime and the time reported is that thread's CPU time (immune to other
//! processes on a busy machine), the CPU of client and server together; the client's
//! share is the same for both servers, so the difference of the two is what
//! the framework adds. `framework-clocked` reports only the time a layer
//! around the routing table measured inside it (the routing table and the
//! generated handler), per decision.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use ssh_framework_bench_dispatch::{Connected, Keys, Servers, Which, close_channel, env, exec, unhandled};
use tokio::runtime::Runtime;

const SERVERS: [Which; 3] = [Which::Framework, Which::Russh, Which::FrameworkClocked];

/// Times `iters` runs of `op` after `setup`; `teardown` runs untimed.
///
/// For [`Which::FrameworkClocked`] the time returned is the clock layer's, not the loop's.
fn run<S>(
    rt: &Runtime,
    servers: &Servers,
    which: Which,
    iters: u64,
    setup: impl AsyncFnOnce() -> S,
    mut op: impl AsyncFnMut(&mut S),
    teardown: impl AsyncFnOnce(S),
) -> Duration {
    rt.block_on(async {
        let mut state = setup().await;
        servers.clock().take();
        let start = thread_cpu_time();
        for _ in 0..iters {
            op(&mut state).await;
        }
        let elapsed = thread_cpu_time() - start;
        let (inside, _) = servers.clock().take();
        teardown(state).await;
        servers.clock().take();
        if which == Which::FrameworkClocked { inside } else { elapsed }
    })
}

/// CPU time of this thread, where the runtime runs client and server: time
/// other processes of a busy machine take is not counted.
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec.unsigned_abs(), t.tv_nsec.unsigned_abs() as u32)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

/// A login each iteration: key exchange, one authentication, disconnect.
fn logins(c: &mut Criterion) {
    let rt = runtime();
    let servers = rt.block_on(Servers::new(Keys::generate()));
    let mut group = c.benchmark_group("login");
    for which in SERVERS {
        group.bench_function(BenchmarkId::new("connect-only", which.name()), |b| {
            b.iter_custom(|iters| {
                let op = async |(): &mut ()| servers.connect(which).await.close().await;
                run(&rt, &servers, which, iters, async || (), op, async |()| ())
            });
        });
        group.bench_function(BenchmarkId::new("password-accept", which.name()), |b| {
            b.iter_custom(|iters| {
                let op = async |(): &mut ()| {
                    let mut c = servers.connect(which).await;
                    assert!(c.login_password().await);
                    c.close().await;
                };
                run(&rt, &servers, which, iters, async || (), op, async |()| ())
            });
        });
        group.bench_function(BenchmarkId::new("publickey-accept", which.name()), |b| {
            b.iter_custom(|iters| {
                let op = async |(): &mut ()| {
                    let mut c = servers.connect(which).await;
                    assert!(c.login_publickey().await);
                    c.close().await;
                };
                run(&rt, &servers, which, iters, async || (), op, async |()| ())
            });
        });
    }
    group.finish();
}

/// Decisions on a logged-in connection, one per iteration.
fn channels(c: &mut Criterion) {
    let rt = runtime();
    let servers = rt.block_on(Servers::new(Keys::generate()));
    let mut group = c.benchmark_group("channel");
    for which in SERVERS {
        let login = async || servers.logged_in(which).await;
        let logout = async |c: Connected| c.close().await;
        group.bench_function(BenchmarkId::new("open-session", which.name()), |b| {
            b.iter_custom(|iters| {
                let op = async |c: &mut Connected| close_channel(c.open_session().await.expect("opened")).await;
                run(&rt, &servers, which, iters, login, op, logout)
            });
        });
        group.bench_function(BenchmarkId::new("exec", which.name()), |b| {
            b.iter_custom(|iters| {
                let op = async |c: &mut Connected| assert_eq!(exec(c, "true").await, Some(0));
                run(&rt, &servers, which, iters, login, op, logout)
            });
        });
        let with_channel = async || {
            let c = servers.logged_in(which).await;
            let channel = c.open_session().await.expect("opened");
            (c, channel)
        };
        let close = async |(c, channel): (Connected, _)| {
            close_channel(channel).await;
            c.close().await;
        };
        group.bench_function(BenchmarkId::new("env-refused", which.name()), |b| {
            b.iter_custom(|iters| {
                let op = async |(_, channel): &mut (Connected, _)| assert!(!env(channel).await);
                run(&rt, &servers, which, iters, with_channel, op, close)
            });
        });
        group.bench_function(BenchmarkId::new("unhandled-refused", which.name()), |b| {
            b.iter_custom(|iters| {
                let op = async |(_, channel): &mut (Connected, _)| assert!(!unhandled(channel).await);
                run(&rt, &servers, which, iters, with_channel, op, close)
            });
        });
    }
    group.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    logins(&mut c);
    channels(&mut c);
    c.final_summary();
}
