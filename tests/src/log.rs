//! [`Captured`]: what the server logs, captured for a test to read.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::util::SubscriberInitExt;

/// A `tracing` writer into a shared buffer.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Captures every event at `level` and above on this thread until the
    /// guard drops: the thread's default subscriber, which a server started
    /// on this thread passes on to its connection threads.
    pub fn start(level: tracing::Level) -> (Captured, tracing::dispatcher::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let guard = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(level)
            .with_writer(move || writer.clone())
            .finish()
            .set_default();
        (captured, guard)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// Runs `test` on a current-thread runtime under a subscriber capturing what
/// is logged at `level`: by the test's tasks, and by the connection threads of
/// a server it starts; the runtime and its tasks (their spans) go before the
/// subscriber does.
pub fn with_log<F: std::future::Future<Output = ()>>(level: tracing::Level, test: impl FnOnce(Captured) -> F) {
    let (captured, _guard) = Captured::start(level);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(test(captured));
    drop(runtime);
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
