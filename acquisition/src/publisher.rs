//! The agent's side of the channel: samples kept until the hub has them.

use std::collections::VecDeque;

use crate::group::GroupSpec;
use crate::message::samples::encoded_len;
use crate::message::{Ack, Birth, Message, PointInfo, Rebirth, Samples, MAX_SAMPLES};
use crate::sample::Sample;

/// A group as the publisher describes it.
#[derive(Debug)]
struct Described {
    birth: Birth,
    /// The last sequence number the hub acknowledged.
    acked: Option<u64>,
    /// The highest sequence number pushed: no acknowledgement goes past it.
    pushed: Option<u64>,
}

/// Keeps samples, in order, until the hub acknowledges them, within a
/// bound in bytes: when it is full the oldest samples are dropped and
/// counted (the hub then sees a gap and asks for a snapshot). While
/// connected it gives out each group's birth, then the samples not sent
/// yet; after a reconnect, every sample not acknowledged again (the hub
/// drops those it already has by their sequence numbers).
#[derive(Debug)]
pub struct Publisher {
    epoch: u64,
    groups: Vec<Described>,
    buffer: VecDeque<Sample>,
    bytes: usize,
    capacity: usize,
    /// Samples at the front of the buffer already sent on this connection.
    sent: usize,
    connected: bool,
    births: VecDeque<usize>,
    dropped: u64,
    /// Messages of samples sent that may wait for their acknowledgement.
    window: usize,
    /// Messages of samples sent and not acknowledged yet.
    unacked: usize,
}

/// Messages of samples sent ahead of their acknowledgements, by default.
pub const DEFAULT_WINDOW: usize = 16;

impl Publisher {
    /// A publisher of `groups` (at most 65,536) whose sequence numbers
    /// belong to `epoch` (choose a new one whenever they start again at
    /// 0), keeping at most `capacity` bytes of samples.
    pub fn new(epoch: u64, groups: &[GroupSpec], capacity: usize) -> Self {
        let groups = groups
            .iter()
            .take(usize::from(u16::MAX) + 1)
            .enumerate()
            .map(|(index, spec)| Described {
                birth: Birth {
                    group: index as u16,
                    epoch,
                    next_seq: 0,
                    device: spec.device.clone(),
                    unit: spec.unit,
                    interval_ms: u32::try_from(spec.interval.as_millis()).unwrap_or(u32::MAX),
                    name: spec.name.clone(),
                    points: spec
                        .points
                        .iter()
                        .map(|p| PointInfo {
                            name: p.name.clone(),
                            point: p.point,
                            exact: p.deadband.width() == 0.0,
                        })
                        .collect(),
                },
                acked: None,
                pushed: None,
            })
            .collect();
        Publisher {
            epoch,
            groups,
            buffer: VecDeque::new(),
            bytes: 0,
            capacity,
            sent: 0,
            connected: false,
            births: VecDeque::new(),
            dropped: 0,
            window: DEFAULT_WINDOW,
            unacked: 0,
        }
    }

    /// Sets how many messages of samples may be sent ahead of their
    /// acknowledgements (at least 1; [`DEFAULT_WINDOW`] by default): the
    /// rest wait here, in the bounded buffer, not in the connection's
    /// queues.
    pub fn window(mut self, messages: usize) -> Self {
        self.window = messages.max(1);
        self
    }

    /// The epoch of its sequence numbers.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Takes up where an earlier publisher of the same epoch stopped: the
    /// hub had acknowledged group `group`'s samples up to `acked`. Push
    /// the samples that earlier one still kept next, oldest first.
    pub fn resume(&mut self, group: usize, acked: u64) {
        if let Some(described) = self.groups.get_mut(group) {
            described.acked = Some(described.acked.map_or(acked, |a| a.max(acked)));
        }
    }

    /// The last sequence number of group `group` the hub acknowledged.
    pub fn acked(&self, group: usize) -> Option<u64> {
        self.groups.get(group).and_then(|d| d.acked)
    }

    /// The sequence number of group `group`'s oldest sample kept (none
    /// when it has none waiting).
    pub fn oldest(&self, group: usize) -> Option<u64> {
        self.buffer.iter().find(|s| s.group == group).map(|s| s.seq)
    }

    /// Every group's birth, in order (their `next_seq` is 0: the
    /// publisher sets it when it sends one).
    pub fn births(&self) -> impl Iterator<Item = &Birth> {
        self.groups.iter().map(|d| &d.birth)
    }

    /// Keeps a sample from the scanner; when the bound is passed, the
    /// oldest are dropped (see [`Publisher::dropped`]). Samples of a group
    /// it does not know are ignored.
    pub fn push(&mut self, sample: Sample) {
        let Some(described) = self.groups.get_mut(sample.group) else {
            return;
        };
        described.pushed = Some(described.pushed.map_or(sample.seq, |p| p.max(sample.seq)));
        self.bytes += encoded_len(&sample);
        self.buffer.push_back(sample);
        while self.bytes > self.capacity {
            let Some(oldest) = self.buffer.pop_front() else { break };
            self.bytes -= encoded_len(&oldest);
            self.sent = self.sent.saturating_sub(1);
            self.dropped += 1;
        }
    }

    /// Samples dropped because the buffer was full, since it was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Samples kept (sent or not) that the hub has not acknowledged.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether no sample waits for the hub.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Bytes of samples kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A channel to the hub is open: every group's birth goes first, then
    /// every sample not acknowledged, oldest first.
    pub fn connected(&mut self) {
        self.connected = true;
        self.sent = 0;
        self.unacked = 0;
        self.births = (0..self.groups.len()).collect();
    }

    /// The channel is gone: nothing more is given out until the next.
    pub fn disconnected(&mut self) {
        self.connected = false;
    }

    /// The hub has every sample of a group up to `ack.upto`: they are
    /// forgotten. An acknowledgement of another epoch is ignored, and one
    /// past the samples pushed counts only up to them (a hub cannot make
    /// the publisher skip sequence numbers it has not used).
    pub fn handle_ack(&mut self, ack: Ack) {
        if ack.epoch != self.epoch {
            return;
        }
        let group = usize::from(ack.group);
        let Some(described) = self.groups.get_mut(group) else {
            return;
        };
        // The hub answers every message of samples once.
        self.unacked = self.unacked.saturating_sub(1);
        let Some(pushed) = described.pushed else {
            return;
        };
        let upto = ack.upto.min(pushed);
        described.acked = Some(described.acked.map_or(upto, |a| a.max(upto)));
        // In place: an acknowledgement comes for every message, and the
        // buffer may hold a whole outage.
        let sent = self.sent;
        let (mut index, mut freed, mut freed_sent) = (0, 0, 0);
        self.buffer.retain(|sample| {
            let acked = sample.group == group && sample.seq <= upto;
            if acked {
                freed += encoded_len(sample);
                freed_sent += usize::from(index < sent);
            }
            index += 1;
            !acked
        });
        self.bytes -= freed;
        self.sent -= freed_sent;
    }

    /// The hub asks for a group's birth and a full snapshot: the birth is
    /// queued; returns whether the group is known (then ask the scanner
    /// for the snapshot: [`crate::Scanner::request_snapshot`]).
    pub fn handle_rebirth(&mut self, rebirth: Rebirth) -> bool {
        let group = usize::from(rebirth.group);
        if group >= self.groups.len() {
            return false;
        }
        // Asked in answer to samples it could not place (instead of an
        // acknowledgement).
        self.unacked = self.unacked.saturating_sub(1);
        if !self.births.contains(&group) {
            self.births.push_back(group);
        }
        true
    }

    /// The next message for the hub, of at most about `max_bytes` (one
    /// sample at least), while connected: births first, then samples of
    /// one group at a time, in order, while fewer than the window's
    /// messages of samples wait for their acknowledgements.
    pub fn poll_message(&mut self, max_bytes: usize) -> Option<Message> {
        if !self.connected {
            return None;
        }
        if let Some(group) = self.births.pop_front() {
            let described = &self.groups[group];
            let mut birth = described.birth.clone();
            // Where the hub's view goes on: after what it acknowledged.
            birth.next_seq = described.acked.map_or(0, |a| a.saturating_add(1));
            // Samples sent before it that the hub could not place get no
            // answer: the window starts over.
            self.unacked = 0;
            return Some(Message::Birth(birth));
        }
        if self.unacked >= self.window {
            return None;
        }
        let first = self.buffer.get(self.sent)?;
        let group = first.group;
        let mut size = 0;
        let mut samples = Vec::new();
        while let Some(sample) = self.buffer.get(self.sent) {
            let len = encoded_len(sample);
            let full = samples.len() == MAX_SAMPLES || (!samples.is_empty() && size + len > max_bytes);
            if sample.group != group || full {
                break;
            }
            size += len;
            samples.push(*sample);
            self.sent += 1;
        }
        self.unacked += 1;
        Some(Message::Samples(Samples {
            group: group as u16,
            epoch: self.epoch,
            samples,
        }))
    }
}
