//! The two servers the benchmark compares make the same decisions, so that
//! the benchmark times equal work: password and key accepted, a wrong
//! password refused, a session channel opened, `exec` run to exit status 0,
//! `env` and an unhandled request refused; and the clock layer sees each decision.

use ssh_framework_bench_dispatch::{Keys, Servers, Which, close_channel, env, exec, unhandled};

#[tokio::test(flavor = "current_thread")]
async fn framework_and_hand_written_russh_decide_alike() {
    let servers = Servers::new(Keys::generate()).await;
    for which in [Which::Framework, Which::FrameworkClocked, Which::Russh] {
        let name = which.name();
        let check = async {
            let mut c = servers.connect(which).await;
            assert!(c.login_password().await, "{name}: password");
            c.close().await;

            let mut c = servers.connect(which).await;
            assert!(c.login_publickey().await, "{name}: publickey");
            assert_eq!(exec(&c, "true").await, Some(0), "{name}: exec");
            let mut channel = c.open_session().await.expect("session channel");
            // More than russh's channel queue (100): neither server stalls on requests nobody reads.
            for _ in 0..150 {
                assert!(!env(&mut channel).await, "{name}: env refused");
                assert!(!unhandled(&mut channel).await, "{name}: agent forwarding refused");
            }
            close_channel(channel).await;
            // Channels are released: more than MaxSessions (10) open and close in turn.
            for _ in 0..12 {
                close_channel(c.open_session().await.expect("session channel")).await;
            }
            c.close().await;
        };
        tokio::time::timeout(std::time::Duration::from_secs(20), check).await.expect("bounded");
        let (_, decisions) = servers.clock().take();
        if which == Which::FrameworkClocked {
            // 2 connects, 2 logins, 14 channel opens, 1 exec, 3 env, 3 agent requests.
            assert!(decisions >= 25, "the clock layer saw {decisions} decisions");
        } else {
            assert_eq!(decisions, 0, "{name} has no clock layer");
        }
    }
}
