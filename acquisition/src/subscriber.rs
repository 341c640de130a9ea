//! The hub's side of the channel: what each point is now, and what to ask.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::message::{Ack, Birth, Message, Rebirth, Samples};
use crate::sample::Sample;

/// A sample as the hub hands it on: the point's name with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The device's name (as the agent calls it).
    pub device: String,
    /// The group's name.
    pub group: String,
    /// The point's name.
    pub point: String,
    /// The sample (its `group` and `point` are the agent's indices).
    pub sample: Sample,
}

/// A group as the hub knows it now, from [`Subscriber::groups`].
#[derive(Debug, Clone, Copy)]
pub struct GroupState<'a> {
    /// Its birth.
    pub birth: &'a Birth,
    /// The latest sample of each point, in the birth's order.
    pub latest: &'a [Option<Sample>],
    /// Whether the view is whole (see [`Subscriber::is_complete`]).
    pub complete: bool,
}

/// One group as the hub knows it.
#[derive(Debug)]
struct Known {
    birth: Birth,
    /// The sequence number expected next.
    expected: u64,
    /// The latest sample of each point.
    latest: Vec<Option<Sample>>,
    /// A rebirth was asked for and its birth has not come yet.
    asked: bool,
    /// Since a rebirth was asked: the points whose snapshot sample came.
    refreshed: Option<Vec<bool>>,
}

/// Follows one agent's groups: takes births and samples, keeps the latest
/// sample of each point, acknowledges what arrived, and asks for a
/// rebirth (a birth and a full snapshot) when a group is new to it, when
/// its sequence numbers skip (samples were lost), or when samples come
/// that no birth described.
#[derive(Debug)]
pub struct Subscriber {
    groups: HashMap<u16, Known>,
    out: VecDeque<Message>,
    updates: VecDeque<Update>,
    gaps: u64,
    duplicates: u64,
    /// Groups samples came for that no birth described, asked about once.
    asked_unknown: HashSet<u16>,
    max_groups: usize,
    max_points: usize,
    points: usize,
    refused: u64,
}

/// Groups one agent may describe, by default.
pub const DEFAULT_MAX_GROUPS: usize = 1024;
/// Points, over all of one agent's groups, by default.
pub const DEFAULT_MAX_POINTS: usize = 65_536;

impl Default for Subscriber {
    fn default() -> Self {
        Subscriber {
            groups: HashMap::new(),
            out: VecDeque::new(),
            updates: VecDeque::new(),
            gaps: 0,
            duplicates: 0,
            asked_unknown: HashSet::new(),
            max_groups: DEFAULT_MAX_GROUPS,
            max_points: DEFAULT_MAX_POINTS,
            points: 0,
            refused: 0,
        }
    }
}

impl Subscriber {
    /// A subscriber that knows no group yet, and follows at most
    /// [`DEFAULT_MAX_GROUPS`] groups of [`DEFAULT_MAX_POINTS`] points in
    /// all.
    pub fn new() -> Self {
        Subscriber::default()
    }

    /// Sets how many groups, and points in all, it follows: a birth past
    /// either is refused (counted in [`Subscriber::refused`]; its samples
    /// are dropped), so an agent cannot make the hub keep more than this.
    pub fn limits(mut self, groups: usize, points: usize) -> Self {
        self.max_groups = groups;
        self.max_points = points;
        self
    }

    /// Births refused because they passed the limits.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// A message from the agent. Acknowledgements and rebirth requests
    /// come out of [`Subscriber::poll_message`], samples out of
    /// [`Subscriber::poll_update`].
    pub fn handle(&mut self, message: Message) {
        match message {
            Message::Birth(birth) => self.on_birth(birth),
            Message::Samples(samples) => self.on_samples(samples),
            // Messages of the hub's own kinds are not the agent's to send.
            _ => {}
        }
    }

    fn ask(&mut self, group: u16) {
        if let Some(known) = self.groups.get_mut(&group) {
            known.refreshed = Some(vec![false; known.latest.len()]);
        }
        self.out.push_back(Message::Rebirth(Rebirth { group }));
    }

    fn on_birth(&mut self, birth: Birth) {
        let group = birth.group;
        let known_points = self.groups.get(&group).map(|k| k.latest.len());
        let groups = self.groups.len() + usize::from(known_points.is_none());
        let points = self.points - known_points.unwrap_or(0) + birth.points.len();
        if groups > self.max_groups || points > self.max_points {
            self.refused += 1;
            return;
        }
        self.points = points;
        let asked = self.groups.get(&group).is_some_and(|k| k.asked) || self.asked_unknown.remove(&group);
        // The same run of sequence numbers and the same points: what is
        // known stays (a birth says where the agent's acknowledged samples
        // end; what arrived since is not taken twice).
        let same = self
            .groups
            .remove(&group)
            .filter(|k| k.birth.epoch == birth.epoch && k.birth.points == birth.points);
        let (expected, latest) = match same {
            Some(known) => (known.expected.max(birth.next_seq), known.latest),
            None => (birth.next_seq, vec![None; birth.points.len()]),
        };
        self.groups.insert(
            group,
            Known {
                birth,
                expected,
                // Its snapshot follows (asked for, or asked for below).
                refreshed: Some(vec![false; latest.len()]),
                latest,
                asked: false,
            },
        );
        if !asked {
            // A birth it did not ask for: a new session or a new group.
            // Its full snapshot makes the picture whole.
            if let Some(known) = self.groups.get_mut(&group) {
                known.asked = true;
            }
            self.ask(group);
        }
    }

    fn on_samples(&mut self, samples: Samples) {
        let group = samples.group;
        let Some(known) = self.groups.get_mut(&group).filter(|k| k.birth.epoch == samples.epoch) else {
            // No birth describes them: ask for one, once.
            let asked = match self.groups.get_mut(&group) {
                Some(known) => std::mem::replace(&mut known.asked, true),
                None => !self.asked_unknown.insert(group),
            };
            if !asked {
                self.ask(group);
            }
            return;
        };
        let mut gap = false;
        for sample in samples.samples {
            if sample.seq < known.expected {
                self.duplicates += 1;
                continue;
            }
            if sample.seq > known.expected {
                gap = true;
                self.gaps += 1;
            }
            known.expected = sample.seq.saturating_add(1);
            let Some(slot) = known.latest.get_mut(sample.point) else {
                continue;
            };
            *slot = Some(sample);
            if let Some(refreshed) = &mut known.refreshed {
                if sample.snapshot {
                    refreshed[sample.point] = true;
                    if refreshed.iter().all(|r| *r) {
                        known.refreshed = None;
                    }
                }
            }
            self.updates.push_back(Update {
                device: known.birth.device.clone(),
                group: known.birth.name.clone(),
                point: known.birth.points[sample.point].name.clone(),
                sample,
            });
        }
        let ack = Ack {
            group,
            epoch: known.birth.epoch,
            upto: known.expected.saturating_sub(1),
        };
        let ask = gap && !known.asked;
        if ask {
            known.asked = true;
        }
        if known.expected > 0 {
            self.out.push_back(Message::Ack(ack));
        }
        if ask {
            self.ask(group);
        }
    }

    /// The next message for the agent.
    pub fn poll_message(&mut self) -> Option<Message> {
        self.out.pop_front()
    }

    /// The next sample that arrived, in order.
    pub fn poll_update(&mut self) -> Option<Update> {
        self.updates.pop_front()
    }

    /// The latest sample of a point of a group, by names.
    pub fn latest(&self, group: &str, point: &str) -> Option<&Sample> {
        let known = self.groups.values().find(|k| k.birth.name == group)?;
        let index = known.birth.points.iter().position(|p| p.name == point)?;
        known.latest[index].as_ref()
    }

    /// The birth of a group, by name.
    pub fn birth(&self, group: &str) -> Option<&Birth> {
        self.groups.values().map(|k| &k.birth).find(|b| b.name == group)
    }

    /// Every group it knows, by their births.
    pub fn births(&self) -> impl Iterator<Item = &Birth> {
        self.groups.values().map(|k| &k.birth)
    }

    /// The latest sample of every point of a group, by the group's name,
    /// in the birth's order (none for a point not reported yet).
    pub fn group_latest(&self, group: &str) -> Option<(&Birth, &[Option<Sample>])> {
        let known = self.groups.values().find(|k| k.birth.name == group)?;
        Some((&known.birth, &known.latest))
    }

    /// Whether the hub's view of a group is whole: a sample of every point
    /// came, and the full snapshot it last asked for (on a new session or
    /// a gap) has arrived.
    pub fn is_complete(&self, group: &str) -> bool {
        self.groups().any(|g| g.birth.name == group && g.complete)
    }

    /// Every group it knows, with its latest samples and whether its view
    /// is whole, in one pass (what a cache or a listing reads).
    pub fn groups(&self) -> impl Iterator<Item = GroupState<'_>> {
        self.groups.values().map(|k| GroupState {
            birth: &k.birth,
            latest: &k.latest,
            complete: !k.asked && k.refreshed.is_none() && k.latest.iter().all(Option::is_some),
        })
    }

    /// Times a group's sequence numbers skipped (samples lost on the way).
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// Samples that came again (resent after a reconnect) and were dropped.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}
