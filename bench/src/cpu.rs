//! CPU time of a process tree from /proc: a server and everything it runs
//! (sshd's per-connection processes, spawned shells and commands), sampled at
//! the start and the end of a data phase.

use std::sync::OnceLock;
use std::time::Duration;

/// Processes walked at most in one tree (a bound, not an expected size).
const MAX_TREE: usize = 10_000;

fn ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| rustix::param::clock_ticks_per_second() as f64)
}

/// `(utime + stime, cutime + cstime)` of `pid` in clock ticks.
fn times(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    times_of(&stat)
}

fn times_of(stat: &str) -> Option<(u64, u64)> {
    // After the command name (which may hold spaces and parentheses): the state
    // is field 3; utime, stime, cutime, cstime are fields 14 to 17.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let n = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((n(11)? + n(12)?, n(13)? + n(14)?))
}

/// The live children of `pid`, from every thread's `children` file.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

/// CPU seconds (user + system) of `pid` and all its live descendants, each
/// with the time of the children it has already reaped: every process that
/// ran under `pid` and has been reaped by someone in the tree is counted once,
/// in its reaper's `cutime`/`cstime`.
pub(crate) fn tree(pid: u32) -> Option<f64> {
    let (own, reaped) = times(pid)?;
    let mut total = own + reaped;
    let mut stack = children(pid);
    let mut seen = 0;
    while let Some(p) = stack.pop() {
        seen += 1;
        if seen > MAX_TREE {
            break;
        }
        // A process that exits between the listing and this read is now in its
        // parent's cutime, read before or after: a race of one process, ignored.
        if let Some((own, reaped)) = times(p) {
            total += own + reaped;
        }
        stack.extend(children(p));
    }
    Some(total as f64 / ticks())
}

/// Live descendants of `pid`.
pub(crate) fn descendants(pid: u32) -> usize {
    let mut stack = children(pid);
    let mut count = 0;
    while let Some(p) = stack.pop() {
        count += 1;
        if count > MAX_TREE {
            break;
        }
        stack.extend(children(p));
    }
    count
}

/// Waits (at most 3 s) until `pid` has no more live descendants than
/// `baseline`, so that a finished connection's processes have been reaped into
/// the tree's totals, then a little longer for the server's own threads.
pub(crate) async fn settle(pid: u32, baseline: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while descendants(pid) > baseline && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
}

/// CPU seconds of this process's reaped children (the `ssh` and `sftp` clients).
pub(crate) fn reaped_children() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    times_of(&stat).map(|(_, reaped)| reaped as f64 / ticks()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_times_after_a_name_with_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194304 100 0 0 0 7 3 11 13 20 0 1 0 100 0 0";
        assert_eq!(super::times_of(stat), Some((10, 24)));
    }

    #[test]
    fn this_process_is_its_own_tree() {
        let me = std::process::id();
        assert!(super::tree(me).is_some());
        assert_eq!(super::descendants(me), 0);
    }
}
