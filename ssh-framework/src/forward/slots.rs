//! The count of one connection's channels of every kind (sessions, local and
//! remote forwards, X11, agent), shared with its listener tasks, capped by
//! [`MaxChannels`](crate::limit::MaxChannels), and watched for "no channel
//! open" by [`UnusedConnectionTimeout`](crate::limit::UnusedConnectionTimeout).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

/// A connection's count of open channels.
#[derive(Clone)]
pub(crate) struct ForwardSlots {
    count: Arc<Count>,
    max: usize,
}

struct Count {
    open: AtomicUsize,
    /// Whether no channel is open; updated only on 0 <-> 1 transitions.
    empty: watch::Sender<bool>,
}

impl Count {
    /// Publishes whether the count is zero; called after a 0 <-> 1 transition.
    /// The value is read again under the watch's lock, so racing transitions
    /// leave it right.
    fn publish(&self) {
        self.empty.send_if_modified(|empty| {
            let now = self.open.load(Ordering::Acquire) == 0;
            std::mem::replace(empty, now) != now
        });
    }
}

impl ForwardSlots {
    pub(crate) fn new(max: usize) -> Self {
        ForwardSlots { count: Arc::new(Count { open: AtomicUsize::new(0), empty: watch::Sender::new(true) }), max }
    }

    /// Takes a slot, or `None` at the limit.
    pub(crate) fn acquire(&self) -> Option<ForwardSlot> {
        let open = &self.count.open;
        let mut current = open.load(Ordering::Acquire);
        loop {
            if current >= self.max {
                tracing::info!(max = self.max, "channel limit reached; channel refused");
                return None;
            }
            match open.compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    if current == 0 {
                        self.count.publish();
                    }
                    return Some(ForwardSlot(self.count.clone()));
                }
                Err(now) => current = now,
            }
        }
    }

    /// Watches whether no channel is open.
    pub(crate) fn empty(&self) -> watch::Receiver<bool> {
        self.count.empty.subscribe()
    }
}

/// One channel's place in [`ForwardSlots`]; freed when dropped.
pub(crate) struct ForwardSlot(Arc<Count>);

impl Drop for ForwardSlot {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_published_on_zero_one_transitions_only() {
        let slots = ForwardSlots::new(2);
        let mut empty = slots.empty();
        assert!(*empty.borrow_and_update());
        let a = slots.acquire().unwrap();
        assert!(empty.has_changed().unwrap() && !*empty.borrow_and_update());
        let b = slots.acquire().unwrap();
        assert!(slots.acquire().is_none(), "capped at 2");
        drop(a);
        assert!(!empty.has_changed().unwrap(), "one channel still open");
        drop(b);
        assert!(empty.has_changed().unwrap() && *empty.borrow_and_update());
    }
}
