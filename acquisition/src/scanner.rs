//! The scanner: which read is due, and which samples the answers make.

use std::collections::VecDeque;
use std::time::Instant;

use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::{plan, Read};
use outpost_modbus_core::{ExceptionCode, UnitId};

use crate::group::GroupSpec;
use crate::sample::{Quality, Reported, Sample};

/// Names a read in flight, to hand its answer back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(u64);

/// A read to send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOrder {
    /// Hand it back with the answer.
    pub token: Token,
    /// The unit to ask.
    pub unit: UnitId,
    /// The table to read.
    pub table: Table,
    /// The first address.
    pub start: u16,
    /// How many bits or registers.
    pub quantity: u16,
}

/// What became of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The registers read (holding or input registers).
    Registers(&'a [u16]),
    /// The bits read (coils or discrete inputs).
    Bits(&'a [bool]),
    /// The device answered with an exception.
    Exception(ExceptionCode),
    /// No answer: the connection failed, the request timed out, or what
    /// came back did not answer it.
    Failed,
}

/// One scan group as the scanner keeps it.
#[derive(Debug)]
struct Group {
    spec: GroupSpec,
    reads: Vec<Read>,
    next_due: Instant,
    /// Reads of the current scan not answered yet.
    pending: Vec<bool>,
    /// This scan reports every point.
    full: bool,
    /// The next scan reports every point.
    snapshot_asked: bool,
    snapshot_due: Instant,
    seq: u64,
    reported: Vec<Option<Reported>>,
    overruns: u64,
}

/// Polls scan groups and reports by exception (see the crate's docs).
#[derive(Debug)]
pub struct Scanner {
    groups: Vec<Group>,
    max_in_flight: usize,
    /// Reads due, waiting for a slot: (group, read).
    queue: VecDeque<(usize, usize)>,
    /// Reads in flight: (token, group, read).
    in_flight: Vec<(Token, usize, usize)>,
    next_token: u64,
    samples: VecDeque<Sample>,
}

impl Scanner {
    /// A scanner of `groups` on one device that takes `max_in_flight`
    /// requests at once (at least 1); every group is due at `now`.
    pub fn new(groups: Vec<GroupSpec>, max_in_flight: usize, now: Instant) -> Self {
        let groups = groups
            .into_iter()
            .map(|spec| {
                let points: Vec<_> = spec.points.iter().map(|p| p.point).collect();
                let reads = plan(&points, spec.coalesce);
                Group {
                    pending: vec![false; reads.len()],
                    reported: vec![None; spec.points.len()],
                    reads,
                    next_due: now,
                    full: false,
                    snapshot_asked: true,
                    snapshot_due: now,
                    seq: 0,
                    overruns: 0,
                    spec,
                }
            })
            .collect();
        Scanner {
            groups,
            max_in_flight: max_in_flight.max(1),
            queue: VecDeque::new(),
            in_flight: Vec::new(),
            next_token: 0,
            samples: VecDeque::new(),
        }
    }

    /// The reads planned for group `group` (empty for an unknown group).
    pub fn reads(&self, group: usize) -> &[Read] {
        self.groups.get(group).map_or(&[], |g| &g.reads[..])
    }

    /// How many scans of group `group` were skipped because the one
    /// before was still under way.
    pub fn overruns(&self, group: usize) -> u64 {
        self.groups.get(group).map_or(0, |g| g.overruns)
    }

    /// Numbers the samples of group `group` from `next_seq` on, if it has
    /// not gone past it yet: for a scanner that starts again where an
    /// earlier one stopped, under the same epoch (the samples it made
    /// were kept, see [`crate::Publisher::resume`]).
    pub fn resume(&mut self, group: usize, next_seq: u64) {
        if let Some(g) = self.groups.get_mut(group) {
            g.seq = g.seq.max(next_seq);
        }
    }

    /// The sequence number of group `group`'s next sample.
    pub fn next_seq(&self, group: usize) -> Option<u64> {
        self.groups.get(group).map(|g| g.seq)
    }

    /// Asks for a full report of group `group` on its next scan (a
    /// subscriber lost track of it).
    pub fn request_snapshot(&mut self, group: usize) {
        if let Some(g) = self.groups.get_mut(group) {
            g.snapshot_asked = true;
        }
    }

    /// Starts the scans that are due at `now` (`at_ms` by the wall clock,
    /// the timestamp of points that turn stale) and gives the next read to
    /// send, if the device has room for one.
    pub fn poll_read(&mut self, now: Instant, at_ms: u64) -> Option<ReadOrder> {
        for index in 0..self.groups.len() {
            if self.groups[index].next_due <= now {
                self.start_scan(index, now, at_ms);
            }
        }
        if self.in_flight.len() >= self.max_in_flight {
            return None;
        }
        let (group, read) = self.queue.pop_front()?;
        let token = Token(self.next_token);
        self.next_token += 1;
        self.in_flight.push((token, group, read));
        let g = &self.groups[group];
        let r = &g.reads[read];
        Some(ReadOrder {
            token,
            unit: g.spec.unit,
            table: r.table,
            start: r.start,
            quantity: r.quantity,
        })
    }

    /// When the next scan is due (call [`Scanner::poll_read`] then).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.groups.iter().map(|g| g.next_due).min()
    }

    /// The answer to the read named `token`; `at_ms` is its source
    /// timestamp (milliseconds since the Unix epoch, by the agent's clock). An unknown token (a read from before a
    /// restart of the scanner) is ignored.
    pub fn handle_answer(&mut self, at_ms: u64, token: Token, answer: Answer<'_>) {
        let Some(slot) = self.in_flight.iter().position(|(t, _, _)| *t == token) else {
            return;
        };
        let (_, group, read) = self.in_flight.remove(slot);
        let g = &mut self.groups[group];
        g.pending[read] = false;
        let r = &g.reads[read];
        for &point in &r.points {
            let spec = &g.spec.points[point];
            let last = g.reported[point];
            let last_value = last.and_then(|l| l.value);
            let (value, quality) = match answer {
                Answer::Registers(words) => match spec.point.decode_registers(r.start, words) {
                    Some(value) => (Some(value), Quality::Good),
                    None => (last_value, Quality::CommFailure),
                },
                Answer::Bits(bits) => match spec.point.decode_bits(r.start, bits) {
                    Some(value) => (Some(value), Quality::Good),
                    None => (last_value, Quality::CommFailure),
                },
                Answer::Exception(code) => (last_value, Quality::DeviceException(code)),
                Answer::Failed => (last_value, Quality::CommFailure),
            };
            // A point not reported yet is in its group's first scan, a full
            // one: it is reported whatever this says.
            let changed = match (last, value) {
                (Some(last), _) if last.quality != quality => true,
                (Some(Reported { value: Some(old), .. }), Some(new)) => spec.deadband.exceeded(old, new),
                // The same quality and still no value (never read).
                _ => false,
            };
            if changed || g.full {
                g.reported[point] = Some(Reported { value, quality });
                self.samples.push_back(Sample {
                    group,
                    seq: g.seq,
                    point,
                    at_ms,
                    quality,
                    value,
                    snapshot: g.full,
                });
                g.seq = g.seq.saturating_add(1);
            }
        }
        if !g.pending.contains(&true) {
            g.full = false;
        }
    }

    /// The next sample to report, in the order they were made. Take them
    /// all after each answer: they are not otherwise bounded.
    pub fn poll_sample(&mut self) -> Option<Sample> {
        self.samples.pop_front()
    }

    /// Queues the reads of a due group's scan, or counts an overrun when
    /// the last scan is still under way (its unread points turn stale).
    fn start_scan(&mut self, index: usize, now: Instant, at_ms: u64) {
        let g = &mut self.groups[index];
        let interval = g.spec.interval;
        // At a fixed rate; a scanner that fell behind skips what it missed.
        let next = g.next_due + interval;
        g.next_due = if next > now { next } else { now + interval };
        if g.pending.contains(&true) {
            g.overruns += 1;
            for read in 0..g.reads.len() {
                if !g.pending[read] {
                    continue;
                }
                for &point in &g.reads[read].points {
                    let Some(last) = g.reported[point] else { continue };
                    if last.quality == Quality::Stale {
                        continue;
                    }
                    g.reported[point] = Some(Reported {
                        value: last.value,
                        quality: Quality::Stale,
                    });
                    self.samples.push_back(Sample {
                        group: index,
                        seq: g.seq,
                        point,
                        at_ms,
                        quality: Quality::Stale,
                        value: last.value,
                        snapshot: false,
                    });
                    g.seq = g.seq.saturating_add(1);
                }
            }
            return;
        }
        if g.snapshot_asked || now >= g.snapshot_due {
            g.full = true;
            g.snapshot_asked = false;
            g.snapshot_due = now + g.spec.integrity;
        }
        for read in 0..g.reads.len() {
            g.pending[read] = true;
            self.queue.push_back((index, read));
        }
    }
}
