//! Data acquisition on the agent: one scan task per device polls its scan
//! groups through the device's queue (scans and the hub's requests share
//! its in-flight limit), and the samples wait in the publisher until the
//! hub acknowledges them. The rules (what to read when, what to report,
//! what to send and keep) are `outpost-acquisition`'s sans-IO scanner and
//! publisher; this file moves reads, answers and time.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use outpost_acquisition::message::Message;
use outpost_acquisition::{Answer, GroupSpec, Publisher, ReadOrder, Scanner, Token};
use outpost_modbus_core::access::Table;
use outpost_modbus_core::ExceptionCode;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::device::DeviceRuntime;
use crate::modbus::{ClientError, Requests};

/// The target an agent opens its data acquisition channel to.
pub(crate) const CHANNEL: &[u8] = b"outpost/acquisition";

/// The most bytes of samples in one message (a channel's window must
/// hold a whole message; the smallest a hub would configure holds this).
pub(crate) const MESSAGE_BYTES: usize = 4096;

/// Samples kept for the hub by default while it cannot take them.
pub(crate) const DEFAULT_BUFFER: usize = 16 * 1024 * 1024;

/// How often losses of a full buffer are logged, at most.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// The scan groups of one device.
#[derive(Debug)]
struct DeviceScan {
    device: Arc<DeviceRuntime>,
    /// The publisher's index of its first group (its groups are numbered
    /// in order from there).
    first: usize,
    groups: usize,
    scanner: Mutex<Scanner>,
    /// Wakes its task when a snapshot is asked for.
    wake: Notify,
}

/// What the agent's scan tasks and its sessions share.
#[derive(Debug)]
pub(crate) struct Acquisition {
    publisher: Mutex<Publisher>,
    /// Told when the publisher may have a message for the hub: samples
    /// came, or an acknowledgement opened the window.
    pub(crate) ready: Notify,
    scans: Vec<DeviceScan>,
    #[cfg(feature = "spool")]
    spooled: Option<Spooled>,
}

/// What became of a read, owned until the scanner takes it.
enum Read {
    Registers(Vec<u16>),
    Bits(Vec<bool>),
    Exception(ExceptionCode),
    Failed,
}

/// `groups` in the publisher's order: device by device, in the order
/// their devices first appear, each device's in the order given.
pub(crate) fn order(groups: Vec<GroupSpec>) -> Vec<GroupSpec> {
    let mut devices: Vec<String> = Vec::new();
    for g in &groups {
        if !devices.contains(&g.device) {
            devices.push(g.device.clone());
        }
    }
    let mut ordered = Vec::with_capacity(groups.len());
    for device in &devices {
        ordered.extend(groups.iter().filter(|g| &g.device == device).cloned());
    }
    ordered
}

/// What an earlier run of the agent left (nothing without a spool).
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// The epoch of the sequence numbers to go on with.
    pub(crate) epoch: u64,
    /// Per group: the last sequence number acknowledged.
    pub(crate) acked: Vec<Option<u64>>,
    /// Samples not acknowledged, oldest first.
    pub(crate) samples: Vec<outpost_acquisition::Sample>,
}

/// Where samples are kept: the buffer's size, what an earlier run left,
/// and the spool if any.
#[derive(Debug)]
pub(crate) struct Keeping {
    pub(crate) buffer: usize,
    pub(crate) restored: Restored,
    #[cfg(feature = "spool")]
    pub(crate) spool: Option<super::spool::Spool>,
}

/// The spool and what was last written to it.
#[cfg(feature = "spool")]
#[derive(Debug)]
struct Spooled {
    /// Taken out when the agent stops; a write under way keeps its own
    /// reference until it ends, and the database closes with the last.
    spool: Mutex<Option<Arc<super::spool::Spool>>>,
    /// Resolves once the database is closed.
    closed: Mutex<Option<super::spool::Closed>>,
    /// Held from writing samples down until they are in the publisher.
    written: tokio::sync::Mutex<Written>,
}

/// What the spool was last told.
#[cfg(feature = "spool")]
#[derive(Debug, Default)]
struct Written {
    acked: Vec<Option<u64>>,
    dropped: u64,
    /// Writes that failed since the last one logged, and when that was.
    failed: (u64, Option<Instant>),
}

impl Acquisition {
    /// The scanners of `groups` (checked, in the order of [`order`], each
    /// naming a device of `devices`), keeping samples as `keeping` says.
    pub(crate) fn new(
        groups: Vec<GroupSpec>,
        devices: &std::collections::HashMap<String, Arc<DeviceRuntime>>,
        keeping: Keeping,
    ) -> Option<Self> {
        if groups.is_empty() {
            return None;
        }
        let now = Instant::now();
        let restored = keeping.restored;
        let mut publisher = Publisher::new(restored.epoch, &groups, keeping.buffer);
        for (group, acked) in restored.acked.iter().enumerate() {
            if let Some(acked) = acked {
                publisher.resume(group, *acked);
            }
        }
        for sample in &restored.samples {
            publisher.push(*sample);
        }
        #[cfg(feature = "spool")]
        let spooled = keeping.spool.map(|mut spool| Spooled {
            closed: Mutex::new(Some(spool.watch_close())),
            spool: Mutex::new(Some(Arc::new(spool))),
            written: tokio::sync::Mutex::new(Written {
                acked: restored.acked.clone(),
                dropped: 0,
                failed: (0, None),
            }),
        });
        let mut scans = Vec::new();
        let mut first = 0;
        while first < groups.len() {
            let name = &groups[first].device;
            let count = groups[first..].iter().take_while(|g| &g.device == name).count();
            let mine = groups[first..first + count].to_vec();
            if let Some(device) = devices.get(name) {
                let mut scanner = Scanner::new(mine, device.max_in_flight, now);
                // Sequence numbers go on after what the earlier run made.
                for local in 0..count {
                    let group = first + local;
                    let acked = restored
                        .acked
                        .get(group)
                        .copied()
                        .flatten()
                        .map(|a| a.saturating_add(1));
                    let kept = restored
                        .samples
                        .iter()
                        .filter(|s| s.group == group)
                        .map(|s| s.seq.saturating_add(1))
                        .max();
                    scanner.resume(local, acked.max(kept).unwrap_or(0));
                }
                // What the plan saves, for the operator: reads per scan
                // against one per point.
                let points: usize = groups[first..first + count].iter().map(|g| g.points.len()).sum();
                let reads: usize = (0..count).map(|g| scanner.reads(g).len()).sum();
                info!(device = %name, groups = count, points, reads, "scan groups planned: {reads} reads for {points} points per round of scans");
                scans.push(DeviceScan {
                    first,
                    groups: count,
                    scanner: Mutex::new(scanner),
                    device: Arc::clone(device),
                    wake: Notify::new(),
                });
            }
            first += count;
        }
        Some(Acquisition {
            publisher: Mutex::new(publisher),
            ready: Notify::new(),
            scans,
            #[cfg(feature = "spool")]
            spooled,
        })
    }

    /// Keeps `samples`: on disk first when there is a spool, then in the
    /// publisher; what the hub acknowledged and what a full buffer dropped
    /// is written down too.
    async fn keep(&self, samples: Vec<outpost_acquisition::Sample>) {
        #[cfg(feature = "spool")]
        if let Some(spooled) = &self.spooled {
            use super::spool::Changes;
            let mut written = spooled.written.lock().await;
            let mut changes = Changes {
                add: samples.clone(),
                ..Changes::default()
            };
            {
                let publisher = self.publisher();
                for group in 0..self.groups() {
                    let acked = publisher.acked(group);
                    if acked.is_some() && written.acked.get(group).copied().flatten() != acked {
                        if written.acked.len() <= group {
                            written.acked.resize(group + 1, None);
                        }
                        written.acked[group] = acked;
                        if let (Ok(g), Some(upto)) = (u16::try_from(group), acked) {
                            changes.acked.push((g, upto));
                        }
                    }
                }
            }
            self.write(spooled, &mut written, changes).await;
            let dropped = {
                let mut publisher = self.publisher();
                for sample in samples {
                    publisher.push(sample);
                }
                (publisher.dropped() > written.dropped).then(|| {
                    written.dropped = publisher.dropped();
                    (0..self.groups())
                        .filter_map(|g| Some((u16::try_from(g).ok()?, publisher.oldest(g))))
                        .collect::<Vec<_>>()
                })
            };
            if let Some(kept_from) = dropped {
                self.write(
                    spooled,
                    &mut written,
                    Changes {
                        kept_from,
                        ..Changes::default()
                    },
                )
                .await;
            }
            return;
        }
        let mut publisher = self.publisher();
        for sample in samples {
            publisher.push(sample);
        }
    }

    /// Writes `changes` to the spool off the runtime's threads.
    #[cfg(feature = "spool")]
    async fn write(&self, spooled: &Spooled, written: &mut Written, changes: super::spool::Changes) {
        if changes.is_empty() {
            return;
        }
        // A stopped agent writes nothing more.
        let Some(spool) = lock(&spooled.spool).clone() else {
            return;
        };
        let error = match tokio::task::spawn_blocking(move || spool.write(&changes)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        // The samples stay in memory; the next write may succeed. A disk
        // that keeps failing is logged every ten seconds, with the count.
        let (failures, logged) = &mut written.failed;
        *failures += 1;
        if logged.is_none_or(|at| at.elapsed() >= DROP_LOG_EVERY) {
            warn!(%error, failures = *failures, "samples could not be written to the spool; they are kept in memory only");
            *failures = 0;
            *logged = Some(Instant::now());
        }
    }

    /// Lets go of the spool: nothing is written to it from now on, and
    /// its database closes once a write under way has ended. What the
    /// returned receiver resolves on (`None`: no spool, or let go before).
    #[cfg(feature = "spool")]
    pub(crate) fn release_spool(&self) -> Option<super::spool::Closed> {
        let spooled = self.spooled.as_ref()?;
        let closed = lock(&spooled.closed).take();
        // Dropped after the lock: the last reference closes the database.
        let spool = lock(&spooled.spool).take();
        drop(spool);
        closed
    }

    /// Groups in all.
    #[cfg(feature = "spool")]
    fn groups(&self) -> usize {
        self.scans.iter().map(|s| s.groups).sum()
    }

    /// How many scan tasks there are (one per device with groups).
    pub(crate) fn devices(&self) -> usize {
        self.scans.len()
    }

    fn publisher(&self) -> MutexGuard<'_, Publisher> {
        lock(&self.publisher)
    }

    /// A channel to the hub is open.
    pub(crate) fn connected(&self) {
        self.publisher().connected();
    }

    /// The channel is gone.
    pub(crate) fn disconnected(&self) {
        self.publisher().disconnected();
    }

    /// Samples dropped because the buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.publisher().dropped()
    }

    /// The next message for the hub, encoded.
    pub(crate) fn poll_message(&self) -> Option<Bytes> {
        let message = self.publisher().poll_message(MESSAGE_BYTES)?;
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        Some(Bytes::from(bytes))
    }

    /// A message from the hub. An error means the hub broke the protocol.
    pub(crate) fn handle(&self, bytes: &[u8]) -> Result<(), outpost_acquisition::message::MessageError> {
        match Message::decode(bytes)? {
            Message::Ack(ack) => self.publisher().handle_ack(ack),
            Message::Rebirth(rebirth) => {
                if self.publisher().handle_rebirth(rebirth) {
                    let group = usize::from(rebirth.group);
                    if let Some(scan) = self
                        .scans
                        .iter()
                        .find(|s| (s.first..s.first + s.groups).contains(&group))
                    {
                        lock(&scan.scanner).request_snapshot(group - scan.first);
                        scan.wake.notify_one();
                    }
                }
            }
            // The agent's own kinds are not the hub's to send.
            _ => return Err(outpost_acquisition::message::MessageError::Invalid("kind")),
        }
        Ok(())
    }

    /// Polls the groups of scan `index` for as long as the agent runs.
    pub(crate) async fn scan(self: Arc<Self>, index: usize) {
        let Some(scan) = self.scans.get(index) else { return };
        let device = &*scan.device;
        let mut reads = FuturesUnordered::new();
        // Losses are logged when they happen, at most every ten seconds.
        let mut logged = (0u64, None::<Instant>);
        loop {
            let next = {
                let mut scanner = lock(&scan.scanner);
                let now = Instant::now();
                while let Some(order) = scanner.poll_read(now, wall_ms()) {
                    reads.push(read(device, order));
                }
                scanner.poll_timeout()
            };
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(
                next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
            ));
            tokio::select! {
                Some((token, result)) = reads.next(), if !reads.is_empty() => {
                    let samples = {
                        let at = wall_ms();
                        let mut scanner = lock(&scan.scanner);
                        let answer = match &result {
                            Read::Registers(words) => Answer::Registers(words),
                            Read::Bits(bits) => Answer::Bits(bits),
                            Read::Exception(code) => Answer::Exception(*code),
                            Read::Failed => Answer::Failed,
                        };
                        scanner.handle_answer(at, token, answer);
                        let mut samples = Vec::new();
                        while let Some(mut sample) = scanner.poll_sample() {
                            sample.group += scan.first;
                            samples.push(sample);
                        }
                        samples
                    };
                    if samples.is_empty() {
                        continue;
                    }
                    self.keep(samples).await;
                    self.ready.notify_one();
                    let dropped = self.dropped();
                    if dropped > logged.0 && logged.1.is_none_or(|at| at.elapsed() >= DROP_LOG_EVERY) {
                        warn!(device = %device.name, dropped = dropped - logged.0, total = dropped, "the acquisition buffer is full: the oldest samples were dropped");
                        logged = (dropped, Some(Instant::now()));
                    }
                }
                () = sleep => {}
                () = scan.wake.notified() => {}
            }
        }
    }
}

/// `mutex` locked, even if a task panicked while holding it (the others
/// go on with what it left).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Milliseconds since the Unix epoch, by the agent's clock.
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One read, in its turn at the device (within one timeout of the
/// device's, waiting included).
async fn read(device: &DeviceRuntime, order: ReadOrder) -> (Token, Read) {
    let deadline = Instant::now() + device.timeout;
    let Ok(_slot) = device.slot(deadline).await else {
        debug!(device = %device.name, "a scan found no turn at the device in time");
        return (order.token, Read::Failed);
    };
    // The client's own timeout (the device's) bounds the answer.
    let client = &device.client;
    let (unit, start, quantity) = (order.unit, order.start, order.quantity);
    let result = match order.table {
        Table::Coils => client.read_coils(unit, start, quantity).await.map(Read::Bits),
        Table::DiscreteInputs => client.read_discrete_inputs(unit, start, quantity).await.map(Read::Bits),
        Table::HoldingRegisters => client
            .read_holding_registers(unit, start, quantity)
            .await
            .map(Read::Registers),
        Table::InputRegisters => client
            .read_input_registers(unit, start, quantity)
            .await
            .map(Read::Registers),
        _ => return (order.token, Read::Failed),
    };
    let read = match result {
        Ok(read) => read,
        Err(ClientError::Exception(code)) => Read::Exception(code),
        Err(e) => {
            debug!(device = %device.name, error = %e, "a scan's read failed");
            Read::Failed
        }
    };
    (order.token, read)
}
