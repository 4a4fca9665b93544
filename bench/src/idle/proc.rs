//! The server's memory as /proc states it.

use std::time::Duration;

/// Memory figures of one process, in KiB, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Status {
    /// `VmRSS`: the resident set.
    pub(crate) rss_kib: u64,
    /// `RssAnon`: its anonymous part (heap, stacks), without mapped files.
    pub(crate) anon_kib: u64,
    /// `VmHWM`: the most the resident set ever was.
    pub(crate) hwm_kib: u64,
}

pub(crate) fn read(path: &str) -> Result<Status, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let field = |name: &str| -> Result<u64, String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse().ok())
            .ok_or_else(|| format!("{path}: no {name}"))
    };
    Ok(Status { rss_kib: field("VmRSS:")?, anon_kib: field("RssAnon:")?, hwm_kib: field("VmHWM:")? })
}

/// How often the resident set is sampled while waiting for it to settle.
const SAMPLE: Duration = Duration::from_millis(250);
/// Samples in a row that must agree.
const AGREE: usize = 8;
/// How long it may take to settle; after that the last sample is taken, with a warning.
const SETTLE: Duration = Duration::from_secs(30);

/// The status once the resident set stopped moving: [`AGREE`] samples in a
/// row within 0.2% (at least 64 KiB) of each other.
pub(crate) async fn stable(path: &str) -> Result<Status, String> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut window: Vec<Status> = Vec::new();
    loop {
        let now = read(path)?;
        window.push(now);
        if window.len() > AGREE {
            window.remove(0);
        }
        let (lo, hi) = window.iter().fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s.rss_kib), hi.max(s.rss_kib)));
        if window.len() == AGREE && hi - lo <= (hi / 500).max(64) {
            return Ok(now);
        }
        if tokio::time::Instant::now() >= deadline {
            eprintln!("#   warning: the resident set did not settle in {SETTLE:?} ({lo}..{hi} KiB); taking the last sample");
            return Ok(now);
        }
        tokio::time::sleep(SAMPLE).await;
    }
}

/// The direct children of `pid`.
pub(crate) fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    children
}
