//! The resident set of this process, for tests that bound what an attack may
//! cost a server running in it. Put each such test in a test binary of its
//! own: memory freed by an earlier test stays in the allocator and would hide
//! a later test's growth.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// One mebibyte.
pub const MIB: usize = 1 << 20;

/// This process's resident set size in bytes (`VmRSS` of `/proc/self/status`).
pub fn rss() -> usize {
    rss_of("/proc/self/status")
}

/// The resident set size in bytes that a `/proc/PID/status` file states.
pub fn rss_of(status: &str) -> usize {
    let status = std::fs::read_to_string(status).unwrap_or_else(|e| panic!("{status} is readable: {e}"));
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    let kib: usize = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS in kB");
    kib << 10
}

/// Samples [`rss`] every 20 ms from its start until dropped.
#[derive(Debug)]
pub struct RssPeak {
    start: usize,
    peak: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl RssPeak {
    /// Starts sampling; the resident set now is the baseline.
    pub fn start() -> Self {
        let start = rss();
        let peak = Arc::new(AtomicUsize::new(start));
        let sampled = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                sampled.fetch_max(rss(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        RssPeak { start, peak, task }
    }

    /// The most the resident set grew above the baseline so far.
    pub fn growth(&self) -> usize {
        self.peak.fetch_max(rss(), Ordering::Relaxed).max(rss()) - self.start
    }
}

impl Drop for RssPeak {
    fn drop(&mut self) {
        self.task.abort();
    }
}
