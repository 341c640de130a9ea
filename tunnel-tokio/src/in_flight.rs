//! Futures in flight inside one task, polled by that task: the requests a
//! gateway client or an agent's session has under way.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use futures::stream::{FuturesUnordered, StreamExt};

/// A boxed future of the set.
pub(crate) type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Futures polled by the task that holds them, answered in whatever order
/// they end.
///
/// The first is held on its own and polled with the task's own context;
/// only futures beside it go to a `FuturesUnordered`. That set wakes its
/// task again whenever it has polled every future it holds without one
/// ending (so as not to starve others), and tokio takes a task that wakes
/// itself while it runs for one that yields: it goes to the back of the
/// queue and another worker is woken to take it. With one request at a
/// time that was two thread switches per request (measured: the gateway
/// path went from 1.5x to 2x its floor); with this, none.
pub(crate) struct InFlight<T> {
    first: Option<Boxed<T>>,
    others: FuturesUnordered<Boxed<T>>,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        InFlight {
            first: None,
            others: FuturesUnordered::new(),
        }
    }
}

impl<T> InFlight<T> {
    /// Futures not yet ended.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.others.len()
    }

    /// Whether none is in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.others.is_empty()
    }

    /// Adds one (polled when [`InFlight::next`] is).
    pub(crate) fn push(&mut self, future: Boxed<T>) {
        if self.first.is_none() {
            self.first = Some(future);
        } else {
            self.others.push(future);
        }
    }

    /// The output of the next to end; pending while none is in flight.
    pub(crate) async fn next(&mut self) -> T {
        std::future::poll_fn(|cx| {
            if let Some(first) = self.first.as_mut() {
                if let Poll::Ready(output) = first.as_mut().poll(cx) {
                    self.first = None;
                    return Poll::Ready(output);
                }
            }
            if !self.others.is_empty() {
                if let Poll::Ready(Some(output)) = self.others.poll_next_unpin(cx) {
                    return Poll::Ready(output);
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn outputs_come_in_the_order_they_end() {
        let mut set: InFlight<u32> = InFlight::default();
        assert!(set.is_empty());
        for (n, ms) in [(1u32, 30u64), (2, 10), (3, 20)] {
            set.push(Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                n
            }));
        }
        assert_eq!(set.len(), 3);
        let mut order = Vec::new();
        while !set.is_empty() {
            order.push(set.next().await);
        }
        assert_eq!(order, [2, 3, 1]);
        assert_eq!(set.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_first_is_taken_after_the_first_ends() {
        let mut set: InFlight<u32> = InFlight::default();
        set.push(Box::pin(async { 1 }));
        set.push(Box::pin(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            2
        }));
        assert_eq!(set.next().await, 1);
        set.push(Box::pin(async { 3 }));
        assert_eq!(set.len(), 2);
        assert_eq!(set.next().await, 3);
        assert_eq!(set.next().await, 2);
        assert!(set.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn next_waits_while_none_is_in_flight() {
        let mut set: InFlight<u32> = InFlight::default();
        let waited = tokio::time::timeout(Duration::from_secs(1), set.next()).await;
        assert!(waited.is_err());
    }
}
