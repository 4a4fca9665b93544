//! Memory bounds under attack: a client that fills every channel it may open
//! and one that sends the largest environment it can must not grow the
//! server's memory past the stated bounds (issue 12, medium 4 and 5).
//!
//! The servers run in this process and the figures are this process's
//! resident set (server and client together, so the bound is conservative);
//! the tests of this binary take turns so that one's memory is not counted
//! in another's.

mod env;
mod forwarding;

use tokio::sync::{Mutex, MutexGuard};

/// One measuring test at a time.
static MEASURING: Mutex<()> = Mutex::const_new(());

/// Waits for the other measuring tests of this binary to finish.
async fn measuring_alone() -> MutexGuard<'static, ()> {
    MEASURING.lock().await
}

/// This process's resident set size in bytes (`VmRSS` of `/proc/self/status`).
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status is readable");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    let kib: usize = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS in kB");
    kib << 10
}

/// Samples [`rss`] every 20 ms until dropped; [`RssPeak::peak`] is the highest seen.
struct RssPeak {
    peak: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl RssPeak {
    fn start() -> Self {
        use std::sync::atomic::Ordering;
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(rss()));
        let sampled = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                sampled.fetch_max(rss(), Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
        RssPeak { peak, task }
    }

    fn peak(&self) -> usize {
        self.peak.fetch_max(rss(), std::sync::atomic::Ordering::Relaxed).max(rss())
    }
}

impl Drop for RssPeak {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const MIB: usize = 1 << 20;
