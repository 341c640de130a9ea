//! The plant devices an agent serves: where each is, which units it
//! answers for, and how many requests it takes at once.

use foldhash::{HashMap, HashMapExt};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use outpost_modbus_core::UnitId;
use tokio::sync::oneshot;

use crate::modbus::Client;
use crate::profile::{DeviceQueue, QueueFull, Ticket};

/// Requests that may wait for a device by default: enough that 64 clients
/// with 16 requests in flight each never see BUSY.
pub(crate) const DEFAULT_QUEUE: usize = 1024;

/// How the agent reaches a device.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    Tcp(String),
    RtuOverTcp(String),
    #[cfg(feature = "serial")]
    Serial(String, u32),
}

/// A named plant device the hub may address through the agent.
///
/// ```
/// use std::time::Duration;
/// use outpost_modbus_core::UnitId;
/// use outpost_tunnel_tokio::agent::Device;
///
/// let plc = Device::tcp("plc-1", "10.1.2.3:502").units([UnitId(1)]);
/// let meters = Device::rtu_over_tcp("meters", "10.1.2.9:4001")
///     .units((1..=8).map(UnitId))
///     .timeout(Duration::from_millis(500));
/// ```
#[derive(Debug, Clone)]
pub struct Device {
    pub(crate) name: String,
    link: Link,
    units: [bool; 256],
    max_in_flight: usize,
    queue: usize,
    timeout: Duration,
}

impl Device {
    fn new(name: &str, link: Link) -> Self {
        Device {
            name: name.to_owned(),
            link,
            units: [false; 256],
            max_in_flight: 1,
            queue: DEFAULT_QUEUE,
            timeout: Duration::from_secs(1),
        }
    }

    /// A Modbus TCP device at `address` (`host:port`).
    pub fn tcp(name: &str, address: &str) -> Self {
        Self::new(name, Link::Tcp(address.to_owned()))
    }

    /// RTU devices behind a serial-to-TCP gateway at `address`.
    pub fn rtu_over_tcp(name: &str, address: &str) -> Self {
        Self::new(name, Link::RtuOverTcp(address.to_owned()))
    }

    /// RTU devices on a local serial port (feature `serial`), 8E1 at `baud`.
    #[cfg(feature = "serial")]
    pub fn rtu_serial(name: &str, path: &str, baud: u32) -> Self {
        Self::new(name, Link::Serial(path.to_owned(), baud))
    }

    /// Unit ids the hub may address on this device (none by default: every
    /// request is denied with exception 0A until units are listed).
    pub fn units(mut self, units: impl IntoIterator<Item = UnitId>) -> Self {
        for u in units {
            self.units[usize::from(u.0)] = true;
        }
        self
    }

    /// Requests sent to the device at once (1: many devices handle one at a
    /// time). RTU over TCP always has one.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.clamp(1, crate::modbus::MAX_IN_FLIGHT);
        self
    }

    /// Requests that may wait for the device (1024). A request waits for a
    /// free slot until its budget runs out (then it is answered EXPIRED);
    /// past this many waiting, it is answered BUSY at once.
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n;
        self
    }

    /// How long the device may take to answer (1 s); the hub's budget may
    /// shorten it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The device's name, as the hub addresses it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A device with its client and its queue, shared by every session of the agent.
#[derive(Debug)]
pub(crate) struct DeviceRuntime {
    pub(crate) name: String,
    pub(crate) client: Client,
    units: [bool; 256],
    queue: Mutex<Queue>,
    pub(crate) timeout: Duration,
    /// Requests it takes at once.
    pub(crate) max_in_flight: usize,
    /// How long the device takes to answer (`outpost_agent_device_seconds`).
    pub(crate) latency: metrics::Histogram,
    /// Whether the last attempt could not connect (logged when it changes).
    pub(crate) unreachable: std::sync::atomic::AtomicBool,
}

/// The sans-IO queue and the requests waiting on it.
#[derive(Debug)]
struct Queue {
    queue: DeviceQueue,
    /// Told `true` when their request may start, `false` when it expired.
    waiters: HashMap<Ticket, oneshot::Sender<bool>>,
}

impl Queue {
    /// Tells every waiter whose request started or expired. What became
    /// of `own` (a request with no waiter yet: `true` started, `false`
    /// expired), if anything, is returned instead.
    fn settle(&mut self, now: Instant, own: Option<Ticket>) -> Option<bool> {
        let mut mine = None;
        loop {
            if let Some(ticket) = self.queue.poll_started() {
                if Some(ticket) == own {
                    mine = Some(true);
                    continue;
                }
                let told = self.waiters.remove(&ticket).is_some_and(|w| w.send(true).is_ok());
                if !told {
                    // Its caller is gone: the slot goes on.
                    self.queue.finish(now, ticket);
                }
            } else if let Some(ticket) = self.queue.poll_expired() {
                if Some(ticket) == own {
                    mine = Some(false);
                } else if let Some(w) = self.waiters.remove(&ticket) {
                    let _ = w.send(false);
                }
            } else {
                return mine;
            }
        }
    }
}

/// Why a request got no slot at the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoSlot {
    /// Too many requests wait already.
    Busy,
    /// Its deadline passed while it waited.
    Expired,
}

/// A request's turn at the device; dropping it gives the slot to the next.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    device: &'a DeviceRuntime,
    ticket: Ticket,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut queue = self.device.queue();
        queue.queue.finish(now, self.ticket);
        queue.waiters.remove(&self.ticket);
        queue.settle(now, None);
    }
}

impl DeviceRuntime {
    /// Starts the device's client (it connects on the first request).
    pub(crate) fn start(device: &Device) -> Self {
        let builder = match &device.link {
            Link::Tcp(address) => Client::tcp(address.clone()),
            Link::RtuOverTcp(address) => Client::rtu_over_tcp(address.clone()),
            #[cfg(feature = "serial")]
            Link::Serial(path, baud) => Client::rtu_serial(path, *baud),
        };
        // The queue below lets only `max_in_flight` requests reach the
        // client at once; its own queue needs room for those alone.
        let client = builder
            .max_in_flight(device.max_in_flight)
            .queue(device.max_in_flight)
            .timeout(device.timeout)
            .build();
        DeviceRuntime {
            latency: metrics::histogram!("outpost_agent_device_seconds", "device" => device.name.clone()),
            unreachable: std::sync::atomic::AtomicBool::new(false),
            name: device.name.clone(),
            client,
            units: device.units,
            queue: Mutex::new(Queue {
                queue: DeviceQueue::new(device.max_in_flight, device.queue),
                waiters: HashMap::new(),
            }),
            timeout: device.timeout,
            max_in_flight: device.max_in_flight,
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the hub may address `unit` here.
    pub(crate) fn serves(&self, unit: UnitId) -> bool {
        self.units[usize::from(unit.0)]
    }

    /// Waits for a turn at the device until `deadline`.
    ///
    /// A device with room starts the request at once: no waiter, no timer
    /// (the common case, one request at a time).
    pub(crate) async fn slot(&self, deadline: Instant) -> Result<Slot<'_>, NoSlot> {
        let (ticket, mut rx) = {
            let now = Instant::now();
            let mut queue = self.queue();
            let ticket = queue.queue.enqueue(now, deadline).map_err(|QueueFull| NoSlot::Busy)?;
            match queue.settle(now, Some(ticket)) {
                Some(true) => return Ok(Slot { device: self, ticket }),
                Some(false) => return Err(NoSlot::Expired),
                None => {}
            }
            let (tx, rx) = oneshot::channel();
            queue.waiters.insert(ticket, tx);
            (ticket, rx)
        };
        // From here the slot is ours to give back, whatever happens.
        let slot = Slot { device: self, ticket };
        let waited = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), &mut rx).await;
        let started = match waited {
            Ok(told) => told.unwrap_or(false),
            Err(_) => {
                let now = Instant::now();
                let mut queue = self.queue();
                queue.queue.handle_timeout(now);
                queue.settle(now, None);
                drop(queue);
                rx.try_recv().unwrap_or(false)
            }
        };
        if started {
            Ok(slot)
        } else {
            Err(NoSlot::Expired)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Device, DeviceRuntime, NoSlot};

    /// A device taking one request at a time with room for `queue` more
    /// (never connected: slots are handed out without a request).
    fn device(queue: usize) -> DeviceRuntime {
        DeviceRuntime::start(&Device::tcp("plc", "127.0.0.1:9").max_in_flight(1).queue(queue))
    }

    fn waiting(device: &DeviceRuntime) -> usize {
        device.queue().waiters.len()
    }

    #[tokio::test]
    async fn a_free_device_starts_a_request_at_once_without_a_waiter() {
        let device = device(1);
        let later = Instant::now() + Duration::from_secs(5);
        let first = device.slot(later).await.expect("free");
        assert_eq!(waiting(&device), 0);
        drop(first);
        // The slot was given back: the next starts at once too.
        let _second = device.slot(later).await.expect("free again");
        assert_eq!(waiting(&device), 0);
    }

    #[tokio::test]
    async fn a_waiting_request_starts_when_the_slot_is_given_back() {
        let device = device(1);
        let later = Instant::now() + Duration::from_secs(5);
        let first = device.slot(later).await.expect("free");
        let second = device.slot(later);
        tokio::pin!(second);
        assert!(futures::poll!(second.as_mut()).is_pending());
        assert_eq!(waiting(&device), 1);
        // Full: one running, one waiting.
        assert_eq!(device.slot(later).await.err(), Some(NoSlot::Busy));
        drop(first);
        // At once, not at its deadline.
        let _second = tokio::time::timeout(Duration::from_secs(1), second)
            .await
            .expect("started at once")
            .expect("started when the first ended");
        assert_eq!(waiting(&device), 0);
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_gets_no_slot() {
        let device = device(1);
        let first = device
            .slot(Instant::now() + Duration::from_secs(5))
            .await
            .expect("free");
        // Waiting, until its deadline passes.
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(device.slot(soon).await.err(), Some(NoSlot::Expired));
        assert_eq!(waiting(&device), 0);
        drop(first);
        // Already past when it comes, with the device free: not started.
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(device.slot(past).await.err(), Some(NoSlot::Expired));
        let _next = device
            .slot(Instant::now() + Duration::from_secs(5))
            .await
            .expect("free");
    }
}
