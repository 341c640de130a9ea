//! The hub's side of the Modbus profile for one agent: which channel a
//! request rides, correlation ids, deadlines, the retry rule and the
//! failure each request ends with. No IO, no clock: time comes in as an
//! argument, actions (opens, sends, resets) and finished requests are
//! pulled out.
//!
//! Rules (PROTOCOL.md section 12):
//! - one channel per device and channel metadata (role and principal),
//!   shared by every request with them; concurrent first requests wait on
//!   the same open; a channel unused for [`RequesterConfig::idle_timeout`]
//!   is reset and reopened on demand;
//! - when a channel or the session breaks, a request that changes the
//!   device and may have left ends [`Failure::OutcomeUnknown`] and is never
//!   sent again; a read is sent at most twice (the second time marked as a
//!   retry), on a new channel or the next session within its deadline;
//! - an outcome that does not follow the profile resets its channel;
//! - every request ends exactly once: with the device's answer or one
//!   [`Failure`].

use std::collections::{BTreeSet, VecDeque};

use foldhash::{HashMap, HashMapExt};
use std::time::{Duration, Instant};

use bytes::Bytes;
use outpost_modbus_core::{Expectation, UnitId};
use outpost_tunnel_proto::{ChannelId, ErrorCode, OpenError};

use super::failure::Failure;
use crate::binding::{ChannelMetadata, Outcome, TunnelRequest, MAX_BUDGET};

/// Times a read may be sent: once, and once more after a break.
const MAX_SENDS: u8 = 2;
/// The longest wait past a request's deadline for its outcome to travel back.
const MAX_GRACE: Duration = Duration::from_millis(500);

/// Settings of a [`Requester`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequesterConfig {
    /// How long the agent may take to accept a channel (10 s).
    pub open_timeout: Duration,
    /// How long a channel may stay unused before it is reset (30 s).
    pub idle_timeout: Duration,
    /// Requests waiting or in flight at once; more fail with
    /// [`Failure::Overloaded`] (4096).
    pub max_requests: usize,
}

impl Default for RequesterConfig {
    fn default() -> Self {
        RequesterConfig {
            open_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_requests: 4096,
        }
    }
}

/// A request handed to a [`Requester`].
#[derive(Debug, Clone)]
pub struct Submit {
    /// The device's name at the agent.
    pub target: String,
    /// The channel's metadata: the role whose rules apply, and the principal.
    pub metadata: ChannelMetadata,
    /// The unit to address.
    pub unit: UnitId,
    /// The request PDU.
    pub pdu: Bytes,
    /// What answers it.
    pub expect: Expectation,
    /// Whether the request changes the device (then it is never re-sent).
    pub changes: bool,
    /// When the caller stops waiting.
    pub deadline: Instant,
}

/// Names a request submitted to a [`Requester`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

/// Names an open the requester asked for, until the session names its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpenToken(pub u64);

/// What the requester asks of the session.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a message channel; report the result with [`Requester::handle_opened`].
    Open {
        /// Names this open.
        token: OpenToken,
        /// The device's name.
        target: Bytes,
        /// The encoded channel metadata.
        metadata: Bytes,
    },
    /// Send one message.
    Send {
        /// The channel.
        channel: ChannelId,
        /// The request's correlation id.
        correlation: u32,
        /// The encoded request.
        payload: Bytes,
    },
    /// Abandon a channel.
    Reset {
        /// The channel.
        channel: ChannelId,
        /// Why.
        code: ErrorCode,
    },
}

/// Counts of what a requester did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequesterStats {
    /// Channels asked for.
    pub opens: u64,
    /// Channels reset because they went unused.
    pub idle_resets: u64,
    /// Requests sent (a retry counts again).
    pub sends: u64,
    /// Reads sent a second time.
    pub retries: u64,
    /// Outcomes that broke the profile (each reset its channel).
    pub malformed_outcomes: u64,
}

type Key = (String, ChannelMetadata);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelState {
    /// Asked for; the session has not named it yet.
    Requested(OpenToken),
    /// Named, waiting for the agent to accept it.
    Opening(ChannelId),
    /// Accepted.
    Open(ChannelId),
}

#[derive(Debug)]
struct Channel {
    state: ChannelState,
    /// When the open was asked for.
    since: Instant,
    /// Requests waiting for it or in flight on it.
    users: usize,
    /// When it last had no users.
    idle_since: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for its channel to open.
    Channel,
    /// Waiting for the next session.
    Session,
    /// Sent; waiting for the outcome until `until`.
    InFlight {
        channel: ChannelId,
        correlation: u32,
        until: Instant,
    },
}

#[derive(Debug)]
struct Pending {
    key: Key,
    unit: UnitId,
    pdu: Bytes,
    expect: Expectation,
    changes: bool,
    deadline: Instant,
    stage: Stage,
    sends: u8,
    /// Whether it may have left on an earlier attempt.
    maybe_sent: bool,
}

impl Pending {
    /// When the requester must act on it next: the end of the wait for its
    /// outcome once sent, its deadline before.
    fn timer(&self) -> Instant {
        match self.stage {
            Stage::InFlight { until, .. } => until,
            _ => self.deadline,
        }
    }
}

/// The hub's side of the Modbus profile for one agent, across its sessions.
#[derive(Debug)]
pub struct Requester {
    config: RequesterConfig,
    up: bool,
    /// The agent announced it is stopping (GOAWAY): nothing new goes on
    /// this session; its channels close as their last requests end.
    going_away: bool,
    channels: HashMap<Key, Channel>,
    by_token: HashMap<OpenToken, Key>,
    by_id: HashMap<ChannelId, Key>,
    requests: HashMap<RequestId, Pending>,
    /// Each request's next time to act, soonest first (kept with `requests`).
    timers: BTreeSet<(Instant, RequestId)>,
    in_flight: HashMap<(ChannelId, u32), RequestId>,
    next_request: u64,
    next_token: u64,
    next_correlation: u32,
    actions: VecDeque<Action>,
    done: VecDeque<(RequestId, Result<Bytes, Failure>)>,
    stats: RequesterStats,
}

impl Requester {
    /// A requester with no session yet.
    pub fn new(config: RequesterConfig) -> Self {
        Requester {
            config,
            up: false,
            going_away: false,
            channels: HashMap::new(),
            by_token: HashMap::new(),
            by_id: HashMap::new(),
            requests: HashMap::new(),
            timers: BTreeSet::new(),
            in_flight: HashMap::new(),
            next_request: 0,
            next_token: 0,
            next_correlation: 0,
            actions: VecDeque::new(),
            done: VecDeque::new(),
            stats: RequesterStats::default(),
        }
    }

    /// Whether a session is up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether nothing waits: no request and no channel.
    pub fn is_idle(&self) -> bool {
        self.requests.is_empty() && self.channels.is_empty() && self.done.is_empty()
    }

    /// Channels held now (opening or open).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Requests not yet finished.
    pub fn request_count(&self) -> usize {
        self.requests.len()
    }

    /// What the requester has done so far.
    pub fn stats(&self) -> RequesterStats {
        self.stats
    }

    /// The next action for the session.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next finished request: the device's answer PDU (checked against
    /// the request; a device exception included) or why there is none.
    #[must_use]
    pub fn poll_done(&mut self) -> Option<(RequestId, Result<Bytes, Failure>)> {
        self.done.pop_front()
    }

    /// When [`Requester::handle_timeout`] wants to be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let request = self.timers.first().map(|(t, _)| *t);
        let channels = self.channels.values().filter_map(|c| match c.state {
            ChannelState::Open(_) if c.users == 0 => Some(c.idle_since + self.config.idle_timeout),
            ChannelState::Open(_) => None,
            _ => Some(c.since + self.config.open_timeout),
        });
        request.into_iter().chain(channels).min()
    }

    /// Takes a request. It finishes through [`Requester::poll_done`] (at
    /// once when no session is up or too many requests wait).
    pub fn submit(&mut self, now: Instant, request: Submit) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        if !self.up {
            self.done.push_back((id, Err(Failure::NoAgent)));
            return id;
        }
        if self.requests.len() >= self.config.max_requests {
            self.done.push_back((id, Err(Failure::Overloaded)));
            return id;
        }
        let waits = self.going_away;
        let pending = Pending {
            key: (request.target, request.metadata),
            unit: request.unit,
            pdu: request.pdu,
            expect: request.expect,
            changes: request.changes,
            deadline: request.deadline.min(now + MAX_BUDGET),
            stage: Stage::Channel,
            sends: 0,
            maybe_sent: false,
        };
        self.put(id, pending);
        if waits {
            // The agent is stopping: the request waits for its next session.
            self.set_stage(id, Stage::Session);
        } else {
            self.route(now, id);
        }
        id
    }

    /// Forgets a request whose caller stopped waiting; it never finishes.
    pub fn cancel(&mut self, now: Instant, id: RequestId) {
        if let Some(pending) = self.take(id) {
            self.release(now, &pending);
        }
        self.done.retain(|(d, _)| *d != id);
    }

    /// The agent said it is stopping (GOAWAY): requests not yet sent wait
    /// for its next session (within their deadlines), requests in flight
    /// get their outcomes, and each channel is closed once no request uses
    /// it, so the agent's session can end cleanly.
    pub fn session_going_away(&mut self, _now: Instant) {
        // Without a session there is nothing to wind down (and a second
        // GOAWAY finds nothing left to move or close).
        if !self.up {
            return;
        }
        self.going_away = true;
        let mut waiting: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.stage == Stage::Channel)
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        for id in waiting {
            if let Some(pending) = self.requests.get(&id) {
                let key = pending.key.clone();
                if let Some(c) = self.channels.get_mut(&key) {
                    c.users = c.users.saturating_sub(1);
                }
            }
            self.set_stage(id, Stage::Session);
        }
        let unused: Vec<Key> = self
            .channels
            .iter()
            .filter(|(_, c)| c.users == 0)
            .map(|(k, _)| k.clone())
            .collect();
        for key in unused {
            self.close_channel(&key);
        }
    }

    /// Closes the channel of `key`, which no request uses.
    fn close_channel(&mut self, key: &Key) {
        let Some(c) = self.channels.remove(key) else {
            return;
        };
        match c.state {
            ChannelState::Requested(token) => {
                self.by_token.remove(&token);
            }
            ChannelState::Opening(id) => {
                self.by_id.remove(&id);
                self.reset(id, ErrorCode::Cancel);
            }
            ChannelState::Open(id) => {
                self.by_id.remove(&id);
                self.reset(id, ErrorCode::NoError);
            }
        }
    }

    /// A session with the agent is up: requests waiting for one go on.
    pub fn session_up(&mut self, now: Instant) {
        self.up = true;
        self.going_away = false;
        let mut waiting: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.stage == Stage::Session)
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        for id in waiting {
            if let Some(r) = self.requests.get_mut(&id) {
                r.stage = Stage::Channel;
            }
            self.route(now, id);
        }
    }

    /// The session ended: its channels are gone and actions not yet taken
    /// are void. Each request is retried or ends as its rule says.
    pub fn session_down(&mut self, now: Instant) {
        self.up = false;
        self.going_away = false;
        self.actions.clear();
        self.channels.clear();
        self.by_token.clear();
        self.by_id.clear();
        self.in_flight.clear();
        let mut ids: Vec<RequestId> = self.requests.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.broken(now, id);
        }
    }

    /// The session answered an [`Action::Open`].
    pub fn handle_opened(&mut self, _now: Instant, token: OpenToken, result: Result<ChannelId, OpenError>) {
        let Some(key) = self.by_token.remove(&token) else {
            // Opened for nothing that still wants it.
            if let Ok(channel) = result {
                self.reset(channel, ErrorCode::Cancel);
            }
            return;
        };
        match result {
            Ok(channel) => {
                if let Some(c) = self.channels.get_mut(&key) {
                    c.state = ChannelState::Opening(channel);
                    self.by_id.insert(channel, key);
                }
            }
            Err(e) => {
                self.channels.remove(&key);
                let failure = match e {
                    OpenError::TooManyChannels | OpenError::IdsExhausted => Failure::ChannelLimit,
                    OpenError::TargetTooLong | OpenError::TooLarge { .. } => Failure::Refused(ErrorCode::Refused),
                    _ => Failure::NoAgent,
                };
                self.fail_waiting(&key, failure);
            }
        }
    }

    /// The agent accepted a channel: its requests go out.
    pub fn handle_accepted(&mut self, now: Instant, channel: ChannelId) {
        let Some(key) = self.by_id.get(&channel).cloned() else {
            return;
        };
        if let Some(c) = self.channels.get_mut(&key) {
            c.state = ChannelState::Open(channel);
        }
        let mut waiting: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.key == key && r.stage == Stage::Channel)
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        for id in waiting {
            self.send(now, id, channel);
        }
    }

    /// The agent refused a channel: its requests fail.
    pub fn handle_refused(&mut self, _now: Instant, channel: ChannelId, code: ErrorCode) {
        if let Some(key) = self.by_id.remove(&channel) {
            self.channels.remove(&key);
            self.fail_waiting(&key, Failure::Refused(code));
        }
    }

    /// A channel is gone (reset by either side).
    pub fn handle_gone(&mut self, now: Instant, channel: ChannelId) {
        let Some(key) = self.by_id.remove(&channel) else {
            return;
        };
        let Some(c) = self.channels.remove(&key) else {
            return;
        };
        if !matches!(c.state, ChannelState::Open(_)) {
            // Gone before the agent accepted it: as good as refused.
            self.fail_waiting(&key, Failure::Refused(ErrorCode::Cancel));
            return;
        }
        self.break_channel(now, channel, &key);
    }

    /// A message arrived on a channel this requester opened.
    pub fn handle_message(&mut self, now: Instant, channel: ChannelId, correlation: u32, payload: Bytes) {
        let Some(id) = self.in_flight.remove(&(channel, correlation)) else {
            // The answer to a request that ended already.
            return;
        };
        let Some(pending) = self.take(id) else {
            return;
        };
        self.release(now, &pending);
        let result = match Outcome::decode(&payload) {
            Ok(Outcome::Answered(answer)) => match pending.expect.check(answer) {
                Ok(_) => Ok(payload.slice_ref(answer)),
                Err(e) => Err(Failure::InvalidResponse(e)),
            },
            Ok(outcome) => Err(Failure::from_outcome(&outcome, pending.changes).unwrap_or(Failure::Timeout)),
            Err(e) => {
                // The agent broke the profile: the channel is reset, this
                // request has no outcome, the others on it are broken.
                self.stats.malformed_outcomes += 1;
                self.done.push_back((id, Err(Failure::no_answer(pending.changes))));
                if let Some(key) = self.by_id.remove(&channel) {
                    self.channels.remove(&key);
                    self.reset(channel, e.code());
                    self.break_channel(now, channel, &key);
                }
                return;
            }
        };
        self.done.push_back((id, result));
    }

    /// Time passed: requests past their deadline end, opens that took too
    /// long are abandoned, channels unused too long are reset.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Soonest first; ties in submission order.
        let expired: Vec<RequestId> = self
            .timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .collect();
        for id in expired {
            let Some(pending) = self.take(id) else {
                continue;
            };
            self.release(now, &pending);
            let failure = match pending.stage {
                Stage::InFlight { .. } => Failure::no_answer(pending.changes),
                Stage::Session => Failure::NoAgent,
                Stage::Channel if pending.maybe_sent => Failure::no_answer(pending.changes),
                Stage::Channel => Failure::Expired,
            };
            self.done.push_back((id, Err(failure)));
        }
        let stale: Vec<Key> = self
            .channels
            .iter()
            .filter(|(_, c)| match c.state {
                ChannelState::Open(_) => c.users == 0 && c.idle_since + self.config.idle_timeout <= now,
                _ => c.since + self.config.open_timeout <= now,
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            let Some(c) = self.channels.remove(&key) else {
                continue;
            };
            match c.state {
                ChannelState::Requested(token) => {
                    self.by_token.remove(&token);
                }
                ChannelState::Opening(id) | ChannelState::Open(id) => {
                    self.by_id.remove(&id);
                    if matches!(c.state, ChannelState::Open(_)) {
                        self.stats.idle_resets += 1;
                        self.reset(id, ErrorCode::NoError);
                    } else {
                        self.reset(id, ErrorCode::Cancel);
                    }
                }
            }
            self.fail_waiting(&key, Failure::Expired);
        }
    }

    /// Sends `id` on its channel, opening the channel first if needed.
    fn route(&mut self, now: Instant, id: RequestId) {
        let Some(pending) = self.requests.get(&id) else {
            return;
        };
        // The key is copied only to open a channel, not per request.
        match self.channels.get_mut(&pending.key) {
            Some(c) => {
                c.users += 1;
                if let ChannelState::Open(channel) = c.state {
                    self.send(now, id, channel);
                }
            }
            None => {
                let key = pending.key.clone();
                let token = OpenToken(self.next_token);
                self.next_token += 1;
                self.stats.opens += 1;
                self.actions.push_back(Action::Open {
                    token,
                    target: Bytes::copy_from_slice(key.0.as_bytes()),
                    metadata: Bytes::from(key.1.to_vec()),
                });
                self.by_token.insert(token, key.clone());
                self.channels.insert(
                    key,
                    Channel {
                        state: ChannelState::Requested(token),
                        since: now,
                        users: 1,
                        idle_since: now,
                    },
                );
            }
        }
    }

    /// Puts `id` on the wire of `channel`.
    fn send(&mut self, now: Instant, id: RequestId, channel: ChannelId) {
        let Some(pending) = self.requests.get(&id) else {
            return;
        };
        let budget = pending.deadline.saturating_duration_since(now);
        // Less than a millisecond left (the profile's unit of budget), or a
        // PDU the profile cannot carry: the request ends here.
        let Ok(request) = TunnelRequest::new(pending.unit, budget, &pending.pdu) else {
            return self.finish(now, id, Err(Failure::Expired));
        };
        let request = if pending.maybe_sent { request.retried() } else { request };
        let mut payload = Vec::with_capacity(request.encoded_len());
        request.encode(&mut payload);
        let mut correlation = self.next_correlation;
        while self.in_flight.contains_key(&(channel, correlation)) {
            correlation = correlation.wrapping_add(1);
        }
        self.next_correlation = correlation.wrapping_add(1);
        // The agent answers within the budget; allow the trip back.
        let grace = MAX_GRACE.min(budget / 2 + Duration::from_millis(50));
        let until = pending.deadline + grace;
        if pending.maybe_sent {
            self.stats.retries += 1;
        }
        self.stats.sends += 1;
        self.set_stage(
            id,
            Stage::InFlight {
                channel,
                correlation,
                until,
            },
        );
        if let Some(p) = self.requests.get_mut(&id) {
            p.sends += 1;
        }
        self.in_flight.insert((channel, correlation), id);
        self.actions.push_back(Action::Send {
            channel,
            correlation,
            payload: Bytes::from(payload),
        });
    }

    /// `id`'s channel or session broke under it: retry or end, by the rule.
    fn broken(&mut self, now: Instant, id: RequestId) {
        let Some(pending) = self.requests.get_mut(&id) else {
            return;
        };
        let sent = matches!(pending.stage, Stage::InFlight { .. });
        pending.maybe_sent |= sent;
        let (changes, maybe_sent, sends) = (pending.changes, pending.maybe_sent, pending.sends);
        let usable = self.up && !self.going_away;
        self.set_stage(id, if usable { Stage::Channel } else { Stage::Session });
        if changes && maybe_sent {
            return self.finish_broken(id, Failure::OutcomeUnknown);
        }
        if sends >= MAX_SENDS {
            return self.finish_broken(id, Failure::no_answer(changes));
        }
        if usable {
            self.route(now, id);
        }
    }

    /// Ends a broken request (its channel is already gone).
    fn finish_broken(&mut self, id: RequestId, failure: Failure) {
        if self.take(id).is_some() {
            self.done.push_back((id, Err(failure)));
        }
    }

    /// Every request on `channel` (which is gone) is broken.
    fn break_channel(&mut self, now: Instant, channel: ChannelId, key: &Key) {
        self.in_flight.retain(|(c, _), _| *c != channel);
        let mut users: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| &r.key == key && r.stage != Stage::Session)
            .map(|(id, _)| *id)
            .collect();
        users.sort_unstable();
        for id in users {
            self.broken(now, id);
        }
    }

    /// Ends every request waiting for `key`'s channel (which is gone).
    fn fail_waiting(&mut self, key: &Key, failure: Failure) {
        let mut waiting: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| &r.key == key && r.stage == Stage::Channel)
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        for id in waiting {
            let maybe_sent = self.requests.get(&id).is_some_and(|r| r.maybe_sent);
            let changes = self.requests.get(&id).is_some_and(|r| r.changes);
            let failure = if maybe_sent {
                Failure::no_answer(changes)
            } else {
                failure
            };
            self.finish_broken(id, failure);
        }
    }

    /// Ends `id` with `result`, releasing its channel.
    fn finish(&mut self, now: Instant, id: RequestId, result: Result<Bytes, Failure>) {
        if let Some(pending) = self.take(id) {
            self.release(now, &pending);
            self.done.push_back((id, result));
        }
    }

    /// A request no longer uses its channel.
    fn release(&mut self, now: Instant, pending: &Pending) {
        if pending.stage == Stage::Session {
            return;
        }
        if let Stage::InFlight {
            channel, correlation, ..
        } = pending.stage
        {
            self.in_flight.remove(&(channel, correlation));
        }
        let mut unused = false;
        if let Some(c) = self.channels.get_mut(&pending.key) {
            c.users = c.users.saturating_sub(1);
            if c.users == 0 {
                c.idle_since = now;
                unused = true;
            }
        }
        if unused && self.going_away {
            self.close_channel(&pending.key);
        }
    }

    /// Adds a request with its timer.
    fn put(&mut self, id: RequestId, pending: Pending) {
        self.timers.insert((pending.timer(), id));
        self.requests.insert(id, pending);
    }

    /// Removes a request with its timer.
    fn take(&mut self, id: RequestId) -> Option<Pending> {
        let pending = self.requests.remove(&id)?;
        self.timers.remove(&(pending.timer(), id));
        Some(pending)
    }

    /// Moves a request to `stage`, keeping its timer right.
    fn set_stage(&mut self, id: RequestId, stage: Stage) {
        if let Some(p) = self.requests.get_mut(&id) {
            self.timers.remove(&(p.timer(), id));
            p.stage = stage;
            self.timers.insert((p.timer(), id));
        }
    }

    fn reset(&mut self, channel: ChannelId, code: ErrorCode) {
        self.actions.push_back(Action::Reset { channel, code });
    }

    /// Checks the requester's bookkeeping (for tests and fuzzing).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        for (key, c) in &self.channels {
            let users = self
                .requests
                .values()
                .filter(|r| &r.key == key && r.stage != Stage::Session)
                .count();
            assert_eq!(c.users, users, "channel users for {key:?}");
            match c.state {
                ChannelState::Requested(t) => assert_eq!(self.by_token.get(&t), Some(key)),
                ChannelState::Opening(id) | ChannelState::Open(id) => assert_eq!(self.by_id.get(&id), Some(key)),
            }
        }
        for (flight, id) in &self.in_flight {
            let r = self.requests.get(id).expect("in flight and unknown");
            assert!(
                matches!(r.stage, Stage::InFlight { channel, correlation, .. } if (channel, correlation) == *flight)
            );
        }
        for r in self.requests.values() {
            assert!(r.sends <= MAX_SENDS);
            assert!(!(r.changes && r.sends > 1), "a write sent twice");
            if r.stage == Stage::Session {
                assert!(!self.up || self.going_away);
            } else {
                assert!(self.up, "a request on a channel with no session");
                assert!(self.channels.contains_key(&r.key));
            }
        }
        assert!(self.up || self.channels.is_empty());
        if self.going_away {
            assert!(
                self.channels.values().all(|c| c.users > 0),
                "an unused channel kept while going away"
            );
        }
        assert_eq!(self.timers.len(), self.requests.len(), "a timer per request");
        for (id, r) in &self.requests {
            assert!(self.timers.contains(&(r.timer(), *id)), "{id:?}'s timer");
        }
    }
}

#[cfg(test)]
mod checker {
    //! The invariant checker, which the tests and the fuzzer rely on,
    //! notices each kind of broken bookkeeping.

    use super::*;
    use crate::binding::{Principal, Role};

    fn key() -> Key {
        (
            "plc".to_owned(),
            ChannelMetadata {
                role: Role::new("operator").unwrap(),
                principal: Principal::default(),
            },
        )
    }

    fn pending(stage: Stage) -> Pending {
        Pending {
            key: key(),
            unit: UnitId(1),
            pdu: Bytes::from_static(&[3, 0, 0, 0, 1]),
            expect: Expectation::new(&outpost_modbus_core::Request::decode(&[3, 0, 0, 0, 1]).unwrap()),
            changes: false,
            deadline: Instant::now() + Duration::from_secs(1),
            stage,
            sends: 0,
            maybe_sent: false,
        }
    }

    /// Whether the checker panics on a requester that `spoil` changed.
    fn noticed(spoil: impl FnOnce(&mut Requester)) -> bool {
        let mut r = Requester::new(RequesterConfig::default());
        r.session_up(Instant::now());
        spoil(&mut r);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.check_invariants())).is_err()
    }

    fn channel(users: usize) -> Channel {
        Channel {
            state: ChannelState::Requested(OpenToken(9)),
            since: Instant::now(),
            users,
            idle_since: Instant::now(),
        }
    }

    #[test]
    fn broken_bookkeeping_is_noticed() {
        assert!(!noticed(|_| {}), "a fresh requester is sound");
        assert!(!noticed(|r| {
            r.channels.insert(key(), channel(1));
            r.by_token.insert(OpenToken(9), key());
            r.put(RequestId(1), pending(Stage::Channel));
        }));
        // A channel counting a user that no request is.
        assert!(noticed(|r| {
            r.channels.insert(key(), channel(1));
            r.by_token.insert(OpenToken(9), key());
        }));
        // A channel whose open the requester has no record of.
        assert!(noticed(|r| {
            r.channels.insert(key(), channel(0));
        }));
        // A request without its timer.
        assert!(noticed(|r| {
            r.channels.insert(key(), channel(1));
            r.by_token.insert(OpenToken(9), key());
            r.requests.insert(RequestId(1), pending(Stage::Channel));
        }));
        // A request waiting for a session while one is up.
        assert!(noticed(|r| r.put(RequestId(1), pending(Stage::Session))));
        // A request on a channel that does not exist.
        assert!(noticed(|r| r.put(RequestId(1), pending(Stage::Channel))));
        // An unused channel kept while the agent is going away.
        assert!(noticed(|r| {
            r.going_away = true;
            r.channels.insert(key(), channel(0));
            r.by_token.insert(OpenToken(9), key());
        }));
        // An answer expected for a request that is not in flight.
        assert!(noticed(|r| {
            r.in_flight.insert((ChannelId::new(2).unwrap(), 1), RequestId(5));
        }));
    }
}
