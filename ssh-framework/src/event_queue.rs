//! The queue that carries what arrives on a channel to the code serving it:
//! a session channel's events (window changes, signals), and the data the
//! client sends (stdin, forwarded bytes).
//!
//! tokio's `mpsc` allocates its first block of 32 slots and a cache-padded
//! channel state when it is made (1.3 KiB for events, more for stdin's
//! larger items), on every channel, and most channels sit idle most of the
//! time. This queue allocates its list only when an item arrives and frees
//! it once read, so an idle channel holds one small shared allocation.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

#[derive(Debug)]
struct Shared<T> {
    queue: Mutex<VecDeque<T>>,
    /// The sender is gone: once the queue is empty, the receiver ends.
    closed: AtomicBool,
    /// The receiver is gone: nothing more is queued.
    abandoned: AtomicBool,
    waker: AtomicWaker,
    capacity: usize,
}

/// Makes a queue holding at most `capacity` unread items.
pub(crate) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        closed: AtomicBool::new(false),
        abandoned: AtomicBool::new(false),
        waker: AtomicWaker::new(),
        capacity,
    });
    (Sender(shared.clone()), Receiver(shared))
}

/// The connection's end.
#[derive(Debug)]
pub(crate) struct Sender<T>(Arc<Shared<T>>);

impl<T> Sender<T> {
    /// Queues `item`, or gives it back when the queue is full or the receiver is gone.
    pub(crate) fn try_send(&self, item: T) -> Result<(), T> {
        {
            let mut queue = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
            // Read under the lock: the receiver's drop sets it before it empties the queue.
            if queue.len() >= self.0.capacity || self.0.abandoned.load(Ordering::Acquire) {
                return Err(item);
            }
            queue.push_back(item);
        }
        self.0.waker.wake();
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.waker.wake();
    }
}

/// The body's end. Dropping it drops what is queued, at once.
#[derive(Debug)]
pub(crate) struct Receiver<T>(Arc<Shared<T>>);

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.0.abandoned.store(true, Ordering::Release);
        let queued = std::mem::take(&mut *self.0.queue.lock().unwrap_or_else(PoisonError::into_inner));
        // Dropped outside the lock: an item's drop may give back what it held.
        drop(queued);
    }
}

impl<T> Receiver<T> {
    fn try_take(&self) -> Option<T> {
        let mut queue = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let item = queue.pop_front();
        if queue.is_empty() && queue.capacity() > 0 {
            // Read: give the list back, so an idle channel holds none.
            *queue = VecDeque::new();
        }
        item
    }

    /// The next item; `None` once the sender is gone and the queue is empty.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(item) = self.try_take() {
            return Poll::Ready(Some(item));
        }
        self.0.waker.register(cx.waker());
        // Checked again after registering: a send or close in between woke nobody.
        if let Some(item) = self.try_take() {
            return Poll::Ready(Some(item));
        }
        if self.0.closed.load(Ordering::Acquire) {
            // A last item may have been queued just before the close.
            return Poll::Ready(self.try_take());
        }
        Poll::Pending
    }

    /// Waits for the next item; `None` once the sender is gone and the queue is empty.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_refuses_past_capacity_and_ends_after_the_sender() {
        let (tx, mut rx) = bounded(2);
        assert!(tx.try_send(1).is_ok());
        assert!(tx.try_send(2).is_ok());
        assert_eq!(tx.try_send(3), Err(3));
        assert_eq!(rx.recv().await, Some(1));
        assert!(tx.try_send(4).is_ok());
        drop(tx);
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(4));
        assert_eq!(rx.recv().await, None);
    }

    #[test]
    fn a_dropped_receiver_drops_what_was_queued_and_refuses_more() {
        let item = Arc::new(());
        let (tx, rx) = bounded(usize::MAX);
        assert!(tx.try_send(item.clone()).is_ok());
        assert_eq!(Arc::strong_count(&item), 2);
        drop(rx);
        assert_eq!(Arc::strong_count(&item), 1, "the queued item was dropped with the receiver");
        assert!(tx.try_send(item.clone()).is_err());
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_send_and_on_close() {
        let (tx, mut rx) = bounded::<u8>(4);
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::task::yield_now().await;
        tx.try_send(7).unwrap();
        drop(tx);
        assert_eq!(waiter.await.unwrap(), (Some(7), None));
    }
}
