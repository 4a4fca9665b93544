//! The count of one connection's channels of every kind (sessions, local and
//! remote forwards, X11, agent), shared with its listener tasks, and capped
//! by [`MaxChannels`](crate::limit::MaxChannels).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A connection's count of open channels.
#[derive(Clone)]
pub(crate) struct ForwardSlots {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl ForwardSlots {
    pub(crate) fn new(max: usize) -> Self {
        ForwardSlots { open: Arc::default(), max }
    }

    /// Takes a slot, or `None` at the limit.
    pub(crate) fn acquire(&self) -> Option<ForwardSlot> {
        let mut current = self.open.load(Ordering::Acquire);
        loop {
            if current >= self.max {
                tracing::info!(max = self.max, "channel limit reached; channel refused");
                return None;
            }
            match self.open.compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(ForwardSlot(self.open.clone())),
                Err(now) => current = now,
            }
        }
    }
}

/// One channel's place in [`ForwardSlots`]; freed when dropped.
pub(crate) struct ForwardSlot(Arc<AtomicUsize>);

impl Drop for ForwardSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
