//! Connection threads: each accepted connection runs, together with every
//! task it spawns, on one thread's own current-thread runtime.
//!
//! Why: a connection is a handful of tasks that hand each other data all the
//! time: russh's session loop, the channel bodies (a child process's output
//! pump, a handler writing from memory), the stdin reader. On a work-stealing
//! runtime they land on different workers, so every chunk wakes a second
//! thread (a futex or an eventfd write, then `epoll_wait` on the other side)
//! and the data changes caches. On one thread a wake is a queue push, and the
//! loop reads what a child wrote while the session encrypted, in larger
//! pieces, the way sshd's one process per connection does. Measured with
//! `bench/` on a 2-core machine (see its README): a 1 GiB download through
//! `head -c` cost mini-sshd 1.0-1.3 s of server CPU per GiB spread over two
//! workers, and 0.7-0.9 s on one.
//!
//! Connections are spread over the threads by count: a new one goes to the
//! thread serving the fewest. The threads log to the `tracing` subscriber
//! that was the default where they were started, as the caller's tasks do.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tracing::Dispatch;
use tokio::sync::oneshot;

/// The threads of a running server; dropping it stops them, and with them
/// every connection still on them.
#[derive(Debug)]
pub(crate) struct ConnectionThreads {
    threads: Vec<Thread>,
}

#[derive(Debug)]
struct Thread {
    handle: Handle,
    connections: Arc<AtomicUsize>,
    /// Dropped to stop the thread: its runtime then drops what it still runs.
    _stop: oneshot::Sender<()>,
}

impl ConnectionThreads {
    /// Starts `n` threads (at least one), each running a runtime with I/O and timers.
    pub(crate) fn start(n: usize) -> io::Result<Self> {
        let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
        let threads = (0..n.max(1))
            .map(|i| {
                let blocking = dispatch.clone();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name(format!("ssh-blocking-{i}"))
                    // The blocking pool's threads live as long as the runtime: so does the default.
                    .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&blocking)))
                    .build()?;
                let handle = runtime.handle().clone();
                let (stop, stopped) = oneshot::channel::<()>();
                let dispatch = dispatch.clone();
                std::thread::Builder::new().name(format!("ssh-connections-{i}")).spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        runtime.block_on(async {
                            let _ = stopped.await;
                        });
                    });
                    // Blocking tasks (file I/O of SFTP) are not waited for.
                    runtime.shutdown_background();
                })?;
                Ok(Thread { handle, connections: Arc::default(), _stop: stop })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(ConnectionThreads { threads })
    }

    /// Runs `connection` on the thread serving the fewest connections.
    pub(crate) fn spawn<F>(&self, connection: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(thread) = self.threads.iter().min_by_key(|t| t.connections.load(Ordering::Relaxed)) else {
            return;
        };
        let count = Counted::new(thread.connections.clone());
        thread.handle.spawn(async move {
            let _count = count;
            connection.await;
        });
    }
}

/// One connection in a thread's count, until dropped.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Counted(count)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn connections_spread_over_threads_and_their_tasks_stay_on_one() {
        let threads = ConnectionThreads::start(2).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (release, held) = tokio::sync::watch::channel(false);
        for _ in 0..4 {
            let tx = tx.clone();
            let mut held = held.clone();
            threads.spawn(async move {
                let outer = std::thread::current().id();
                // A task the connection spawns runs on the connection's thread.
                let inner = tokio::spawn(async { std::thread::current().id() }).await.unwrap();
                let _ = tx.send((outer, inner));
                let _ = held.wait_for(|released| *released).await;
            });
        }
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (outer, inner) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            assert_eq!(outer, inner);
            seen.push(outer);
        }
        seen.sort_by_key(|id| format!("{id:?}"));
        seen.dedup();
        assert_eq!(seen.len(), 2, "four held connections on two threads use both");
        let counts: Vec<usize> = threads.threads.iter().map(|t| t.connections.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, [2, 2]);
        release.send_replace(true);
    }
}
