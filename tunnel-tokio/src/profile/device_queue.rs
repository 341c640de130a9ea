//! The agent's queue in front of one device: at most `in_flight` requests
//! at the device, the rest waiting in arrival order until a slot frees or
//! their deadline passes; BUSY only past `bound` waiting requests.

use std::collections::VecDeque;

use foldhash::{HashSet, HashSetExt};
use std::time::Instant;

/// Names a request in a [`DeviceQueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(u64);

/// The queue is full: the request is answered BUSY and nothing is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// A device's queue.
#[derive(Debug)]
pub struct DeviceQueue {
    in_flight: usize,
    bound: usize,
    running: HashSet<Ticket>,
    waiting: VecDeque<(Ticket, Instant)>,
    started: VecDeque<Ticket>,
    expired: VecDeque<Ticket>,
    next: u64,
}

impl DeviceQueue {
    /// A queue letting `in_flight` requests (at least 1) reach the device at
    /// once, with at most `bound` waiting.
    pub fn new(in_flight: usize, bound: usize) -> Self {
        DeviceQueue {
            in_flight: in_flight.max(1),
            bound,
            running: HashSet::new(),
            waiting: VecDeque::new(),
            started: VecDeque::new(),
            expired: VecDeque::new(),
            next: 0,
        }
    }

    /// Requests at the device now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Queues a request that gives up at `deadline`. It starts through
    /// [`DeviceQueue::poll_started`] (at once if a slot is free) or
    /// expires through [`DeviceQueue::poll_expired`].
    pub fn enqueue(&mut self, now: Instant, deadline: Instant) -> Result<Ticket, QueueFull> {
        let ticket = Ticket(self.next);
        if deadline <= now {
            self.next += 1;
            self.expired.push_back(ticket);
            return Ok(ticket);
        }
        if self.running.len() < self.in_flight && self.waiting.is_empty() {
            self.next += 1;
            self.running.insert(ticket);
            self.started.push_back(ticket);
            return Ok(ticket);
        }
        if self.waiting.len() >= self.bound {
            return Err(QueueFull);
        }
        self.next += 1;
        self.waiting.push_back((ticket, deadline));
        Ok(ticket)
    }

    /// A request is done with the device (answered, failed, or abandoned
    /// before it started): its slot goes to the next waiting request.
    pub fn finish(&mut self, now: Instant, ticket: Ticket) {
        if !self.running.remove(&ticket) {
            self.waiting.retain(|(t, _)| *t != ticket);
            self.started.retain(|t| *t != ticket);
            return;
        }
        self.started.retain(|t| *t != ticket);
        self.start_next(now);
    }

    /// Requests waiting past their deadline give up.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired = &mut self.expired;
        self.waiting.retain(|(t, deadline)| {
            let keep = *deadline > now;
            if !keep {
                expired.push_back(*t);
            }
            keep
        });
    }

    /// The earliest deadline of a waiting request.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.waiting.iter().map(|(_, d)| *d).min()
    }

    /// A request that may go to the device now.
    #[must_use]
    pub fn poll_started(&mut self) -> Option<Ticket> {
        self.started.pop_front()
    }

    /// A request whose deadline passed while it waited (answer EXPIRED).
    #[must_use]
    pub fn poll_expired(&mut self) -> Option<Ticket> {
        self.expired.pop_front()
    }

    fn start_next(&mut self, now: Instant) {
        while self.running.len() < self.in_flight {
            let Some((ticket, deadline)) = self.waiting.pop_front() else {
                return;
            };
            if deadline <= now {
                self.expired.push_back(ticket);
                continue;
            }
            self.running.insert(ticket);
            self.started.push_back(ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn requests_wait_for_a_slot_in_order() {
        let now = Instant::now();
        let mut q = DeviceQueue::new(1, 100);
        let a = q.enqueue(now, now + Duration::from_secs(1)).unwrap();
        let b = q.enqueue(now, now + Duration::from_secs(1)).unwrap();
        let c = q.enqueue(now, now + Duration::from_secs(1)).unwrap();
        assert_eq!(q.poll_started(), Some(a));
        assert_eq!(q.poll_started(), None);
        q.finish(now, a);
        assert_eq!(q.poll_started(), Some(b));
        q.finish(now, b);
        assert_eq!(q.poll_started(), Some(c));
    }

    #[test]
    fn a_request_that_waits_past_its_deadline_expires() {
        let now = Instant::now();
        let mut q = DeviceQueue::new(1, 100);
        let a = q.enqueue(now, now + Duration::from_secs(5)).unwrap();
        let b = q.enqueue(now, now + Duration::from_millis(100)).unwrap();
        assert_eq!(q.poll_timeout(), Some(now + Duration::from_millis(100)));
        q.handle_timeout(now + Duration::from_millis(99));
        assert_eq!(q.poll_expired(), None);
        q.handle_timeout(now + Duration::from_millis(100));
        assert_eq!(q.poll_expired(), Some(b));
        assert_eq!(q.poll_started(), Some(a));
        assert_eq!(q.waiting(), 0);
    }

    #[test]
    fn busy_only_past_the_bound() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let mut q = DeviceQueue::new(2, 3);
        for _ in 0..5 {
            q.enqueue(now, later).unwrap();
        }
        assert_eq!(q.running(), 2);
        assert_eq!(q.waiting(), 3);
        assert_eq!(q.enqueue(now, later), Err(QueueFull));
    }

    #[test]
    fn an_abandoned_waiting_request_frees_its_place() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let mut q = DeviceQueue::new(1, 1);
        let a = q.enqueue(now, later).unwrap();
        let b = q.enqueue(now, later).unwrap();
        q.finish(now, b);
        assert_eq!(q.waiting(), 0);
        assert!(q.enqueue(now, later).is_ok());
        let _ = a;
    }

    #[test]
    fn requests_already_past_their_deadline_expire_each_with_its_own_ticket() {
        let now = Instant::now();
        let mut q = DeviceQueue::new(1, 10);
        let a = q.enqueue(now, now).unwrap();
        let b = q.enqueue(now, now - Duration::from_millis(1)).unwrap();
        let c = q.enqueue(now, now + Duration::from_secs(1)).unwrap();
        assert!(a != b && b != c && a != c);
        assert_eq!(q.poll_expired(), Some(a));
        assert_eq!(q.poll_expired(), Some(b));
        assert_eq!(q.poll_expired(), None);
        assert_eq!(q.poll_started(), Some(c));
    }

    #[test]
    fn abandoning_one_waiting_request_keeps_the_others_in_order() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let mut q = DeviceQueue::new(1, 10);
        let a = q.enqueue(now, later).unwrap();
        let b = q.enqueue(now, later).unwrap();
        let c = q.enqueue(now, later).unwrap();
        let d = q.enqueue(now, later).unwrap();
        assert_eq!(q.poll_started(), Some(a));
        q.finish(now, c);
        assert_eq!(q.waiting(), 2);
        q.finish(now, a);
        assert_eq!(q.poll_started(), Some(b));
        q.finish(now, b);
        assert_eq!(q.poll_started(), Some(d));
    }

    #[test]
    fn abandoning_a_waiting_request_keeps_the_started_ones_to_be_told() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let mut q = DeviceQueue::new(2, 10);
        let a = q.enqueue(now, later).unwrap();
        let b = q.enqueue(now, later).unwrap();
        let c = q.enqueue(now, later).unwrap();
        // a and b started and are not yet told; c waits and gives up.
        q.finish(now, c);
        assert_eq!(q.poll_started(), Some(a));
        assert_eq!(q.poll_started(), Some(b));
        assert_eq!(q.poll_started(), None);
    }

    #[test]
    fn a_slot_freed_after_a_waiting_deadline_skips_the_expired() {
        let now = Instant::now();
        let mut q = DeviceQueue::new(1, 10);
        let a = q.enqueue(now, now + Duration::from_secs(5)).unwrap();
        let b = q.enqueue(now, now + Duration::from_millis(10)).unwrap();
        let c = q.enqueue(now, now + Duration::from_secs(5)).unwrap();
        assert_eq!(q.poll_started(), Some(a));
        q.finish(now + Duration::from_millis(20), a);
        assert_eq!(q.poll_expired(), Some(b));
        assert_eq!(q.poll_started(), Some(c));
    }
}
