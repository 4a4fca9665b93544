//! The queue that carries a session channel's events (window changes,
//! signals) from the connection to the running body.
//!
//! tokio's `mpsc` allocates its first block of 32 slots and a cache-padded
//! channel state (about 1.3 KiB here) when it is made, on every channel, and
//! most channels never see an event. This queue allocates its list only when
//! an event arrives and frees it once read, so an idle channel holds one small
//! shared allocation.

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
    waker: AtomicWaker,
    capacity: usize,
}

/// Makes a queue holding at most `capacity` unread items.
pub(crate) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        closed: AtomicBool::new(false),
        waker: AtomicWaker::new(),
        capacity,
    });
    (Sender(shared.clone()), Receiver(shared))
}

/// The connection's end.
#[derive(Debug)]
pub(crate) struct Sender<T>(Arc<Shared<T>>);

impl<T> Sender<T> {
    /// Queues `item`, or gives it back when the queue is full.
    pub(crate) fn try_send(&self, item: T) -> Result<(), T> {
        {
            let mut queue = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.len() >= self.0.capacity {
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

/// The body's end.
#[derive(Debug)]
pub(crate) struct Receiver<T>(Arc<Shared<T>>);

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
        assert_eq!(std::future::poll_fn(|cx| rx.poll_recv(cx)).await, Some(1));
        assert!(tx.try_send(4).is_ok());
        drop(tx);
        assert_eq!(std::future::poll_fn(|cx| rx.poll_recv(cx)).await, Some(2));
        assert_eq!(std::future::poll_fn(|cx| rx.poll_recv(cx)).await, Some(4));
        assert_eq!(std::future::poll_fn(|cx| rx.poll_recv(cx)).await, None);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_send_and_on_close() {
        let (tx, mut rx) = bounded::<u8>(4);
        let waiter = tokio::spawn(async move {
            let first = std::future::poll_fn(|cx| rx.poll_recv(cx)).await;
            let second = std::future::poll_fn(|cx| rx.poll_recv(cx)).await;
            (first, second)
        });
        tokio::task::yield_now().await;
        tx.try_send(7).unwrap();
        drop(tx);
        assert_eq!(waiter.await.unwrap(), (Some(7), None));
    }
}
