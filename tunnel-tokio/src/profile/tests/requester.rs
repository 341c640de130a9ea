//! The hub's requester against a scripted agent session: scenario tests of
//! each rule, and random interleavings.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use outpost_modbus_core::{Expectation, Request, UnitId};
use outpost_tunnel_proto::{ChannelId, ErrorCode, OpenError};
use proptest::prelude::*;

use super::super::*;
use crate::binding::{ChannelMetadata, Outcome, Principal, Role, TunnelRequest};

const READ: [u8; 5] = [0x03, 0x00, 0x00, 0x00, 0x01];
const WRITE: [u8; 5] = [0x06, 0x00, 0x01, 0x00, 0x07];
const READ_ANSWER: [u8; 4] = [0x03, 0x02, 0x00, 0x2A];

fn metadata(role: &str) -> ChannelMetadata {
    ChannelMetadata {
        role: Role::new(role).unwrap(),
        principal: Principal::default(),
    }
}

/// A request the agent received: what it decoded from a send.
#[derive(Debug, Clone)]
struct Received {
    channel: ChannelId,
    correlation: u32,
    pdu: Vec<u8>,
    retry: bool,
}

/// A requester and a fake agent session in front of it.
struct Harness {
    r: Requester,
    now: Instant,
    next_channel: u32,
    /// Opens the agent has not answered yet.
    opens: Vec<(OpenToken, Bytes, Bytes)>,
    /// Channels named but not yet accepted.
    naming: Vec<ChannelId>,
    open_channels: HashSet<ChannelId>,
    received: Vec<Received>,
    resets: Vec<(ChannelId, ErrorCode)>,
    done: HashMap<RequestId, Result<Bytes, Failure>>,
    ended_twice: bool,
}

impl Harness {
    fn new(config: RequesterConfig) -> Self {
        let now = Instant::now();
        let mut r = Requester::new(config);
        r.session_up(now);
        Harness {
            r,
            now,
            next_channel: 2,
            opens: Vec::new(),
            naming: Vec::new(),
            open_channels: HashSet::new(),
            received: Vec::new(),
            resets: Vec::new(),
            done: HashMap::new(),
            ended_twice: false,
        }
    }

    fn submit(&mut self, pdu: &[u8], role: &str, timeout: Duration) -> RequestId {
        let request = Request::decode(pdu).unwrap();
        let id = self.r.submit(
            self.now,
            Submit {
                target: "plc".into(),
                metadata: metadata(role),
                unit: UnitId(1),
                pdu: Bytes::copy_from_slice(pdu),
                expect: Expectation::new(&request),
                changes: request.is_write(),
                deadline: self.now + timeout,
            },
        );
        self.pump();
        id
    }

    /// Takes every action and finished request out of the requester.
    fn pump(&mut self) {
        while let Some(action) = self.r.poll_action() {
            match action {
                Action::Open {
                    token,
                    target,
                    metadata,
                } => self.opens.push((token, target, metadata)),
                Action::Send {
                    channel,
                    correlation,
                    payload,
                } => {
                    let request = TunnelRequest::decode(&payload).expect("a valid request");
                    assert!(self.open_channels.contains(&channel), "sent on a channel not open");
                    self.received.push(Received {
                        channel,
                        correlation,
                        pdu: request.pdu().to_vec(),
                        retry: request.is_retry(),
                    });
                }
                Action::Reset { channel, code } => {
                    self.open_channels.remove(&channel);
                    self.resets.push((channel, code));
                }
            }
        }
        while let Some((id, result)) = self.r.poll_done() {
            if self.done.insert(id, result).is_some() {
                self.ended_twice = true;
            }
        }
        self.r.check_invariants();
    }

    /// The session names every open channel and the agent accepts it.
    fn accept_opens(&mut self) {
        for (token, _, _) in std::mem::take(&mut self.opens) {
            let channel = ChannelId::new(self.next_channel).unwrap();
            self.next_channel += 2;
            self.r.handle_opened(self.now, token, Ok(channel));
            self.open_channels.insert(channel);
            self.r.handle_accepted(self.now, channel);
            self.pump();
        }
    }

    fn answer(&mut self, received: &Received, outcome: Outcome<'_>) {
        let mut wire = Vec::new();
        outcome.encode(&mut wire);
        self.r
            .handle_message(self.now, received.channel, received.correlation, Bytes::from(wire));
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.r.handle_timeout(self.now);
        self.pump();
    }

    fn session_down(&mut self) {
        self.r.session_down(self.now);
        self.opens.clear();
        self.naming.clear();
        self.open_channels.clear();
        self.pump();
    }

    fn session_up(&mut self) {
        self.r.session_up(self.now);
        self.pump();
    }
}

const T: Duration = Duration::from_secs(2);

#[test]
fn concurrent_first_requests_share_one_open() {
    let mut h = Harness::new(RequesterConfig::default());
    let ids: Vec<_> = (0..64).map(|_| h.submit(&READ, "operator", T)).collect();
    assert_eq!(h.opens.len(), 1, "one open for 64 requests");
    h.accept_opens();
    assert_eq!(h.received.len(), 64);
    for received in h.received.clone() {
        h.answer(&received, Outcome::Answered(&READ_ANSWER));
    }
    for id in ids {
        assert_eq!(h.done[&id].as_deref(), Ok(&READ_ANSWER[..]));
    }
    assert_eq!(h.r.channel_count(), 1);
    assert!(!h.ended_twice);
}

#[test]
fn a_stopping_agent_gets_nothing_new_and_its_channels_close_as_they_empty() {
    let mut h = Harness::new(RequesterConfig::default());
    let in_flight = h.submit(&WRITE, "operator", T);
    h.submit(&READ, "viewer", T);
    h.accept_opens();
    assert_eq!(h.received.len(), 2);
    // A third role's channel is still opening when the agent says GOAWAY.
    let waiting = h.submit(&WRITE, "engineer", T);
    assert_eq!(h.opens.len(), 1);
    let viewer_read = h.received[1].clone();
    h.answer(&viewer_read, Outcome::Answered(&READ_ANSWER));
    assert!(h.resets.is_empty(), "idle, but within the idle time");

    h.r.session_going_away(h.now);
    h.pump();
    // The viewer's channel is unused: closed at once. The operator's waits
    // for its write; the engineer's open is dropped and its write waits.
    assert_eq!(h.resets, [(viewer_read.channel, ErrorCode::NoError)]);
    assert_eq!(h.r.channel_count(), 1);
    let later = h.submit(&READ, "operator", T);
    assert_eq!(h.received.len(), 2, "nothing new goes on a session going away");
    let write = h.received[0].clone();
    h.answer(&write, Outcome::Answered(&[0x06, 0x00, 0x01, 0x00, 0x07]));
    assert!(h.done[&in_flight].is_ok(), "the write in flight got its answer");
    assert_eq!(h.resets.len(), 2, "its channel closed once empty");
    assert_eq!(h.r.channel_count(), 0);
    assert!(!h.done.contains_key(&waiting) && !h.done.contains_key(&later));

    // The agent comes back: the waiting requests go out, never sent before.
    h.session_down();
    h.session_up();
    h.accept_opens();
    assert_eq!(h.received.len(), 4);
    assert!(h.received[2..].iter().all(|r| !r.retry));
    let second_session: Vec<Received> = h.received[2..].to_vec();
    for received in second_session {
        let answer: &[u8] = if received.pdu[0] == 0x06 { &WRITE } else { &READ_ANSWER };
        h.answer(&received, Outcome::Answered(answer));
    }
    assert!(h.done[&waiting].is_ok() && h.done[&later].is_ok());
    assert!(!h.ended_twice);
}

#[test]
fn requests_waiting_for_a_stopped_agent_end_at_their_deadline() {
    let mut h = Harness::new(RequesterConfig::default());
    h.r.session_going_away(h.now);
    let id = h.submit(&READ, "operator", T);
    assert!(h.opens.is_empty());
    h.advance(T);
    assert!(matches!(h.done[&id], Err(Failure::NoAgent)), "{:?}", h.done[&id]);
}

#[test]
fn roles_get_their_own_channels() {
    let mut h = Harness::new(RequesterConfig::default());
    h.submit(&READ, "operator", T);
    h.submit(&READ, "viewer", T);
    h.submit(&READ, "operator", T);
    assert_eq!(h.opens.len(), 2);
}

#[test]
fn an_unused_channel_is_reset_after_the_idle_time_and_reopened_on_demand() {
    let config = RequesterConfig {
        idle_timeout: Duration::from_secs(30),
        ..RequesterConfig::default()
    };
    let mut h = Harness::new(config);
    h.submit(&READ, "operator", T);
    h.accept_opens();
    let first = h.received[0].clone();
    h.answer(&first, Outcome::Answered(&READ_ANSWER));
    h.advance(Duration::from_secs(29));
    assert!(h.resets.is_empty(), "still within the idle time");
    assert_eq!(h.r.poll_timeout(), Some(h.now + Duration::from_secs(1)));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.resets, [(first.channel, ErrorCode::NoError)]);
    assert_eq!(h.r.channel_count(), 0);
    assert_eq!(h.r.poll_timeout(), None);
    let again = h.submit(&READ, "operator", T);
    assert_eq!(h.opens.len(), 1, "reopened on demand");
    h.accept_opens();
    let second = h.received[1].clone();
    assert_ne!(second.channel, first.channel);
    h.answer(&second, Outcome::Answered(&READ_ANSWER));
    assert!(h.done[&again].is_ok());
    assert_eq!(h.r.stats().idle_resets, 1);
}

#[test]
fn a_busy_channel_is_not_idle() {
    let mut h = Harness::new(RequesterConfig {
        idle_timeout: Duration::from_secs(1),
        ..RequesterConfig::default()
    });
    h.submit(&READ, "operator", Duration::from_secs(10));
    h.accept_opens();
    h.advance(Duration::from_secs(5));
    assert!(h.resets.is_empty());
}

#[test]
fn a_read_is_retried_once_on_the_next_session_marked_as_a_retry() {
    let mut h = Harness::new(RequesterConfig::default());
    let id = h.submit(&READ, "operator", T);
    h.accept_opens();
    assert!(!h.received[0].retry);
    h.session_down();
    assert!(h.done.is_empty(), "a read waits for the next session");
    h.advance(Duration::from_millis(300));
    h.session_up();
    h.accept_opens();
    assert_eq!(h.received.len(), 2);
    assert!(h.received[1].retry);
    let second = h.received[1].clone();
    h.answer(&second, Outcome::Answered(&READ_ANSWER));
    assert!(h.done[&id].is_ok());
}

#[test]
fn a_read_is_sent_at_most_twice() {
    let mut h = Harness::new(RequesterConfig::default());
    let id = h.submit(&READ, "operator", T);
    h.accept_opens();
    h.session_down();
    h.session_up();
    h.accept_opens();
    h.session_down();
    assert_eq!(h.received.len(), 2);
    assert_eq!(h.done[&id], Err(Failure::Timeout));
}

#[test]
fn a_write_that_left_is_never_re_sent() {
    let mut h = Harness::new(RequesterConfig::default());
    let id = h.submit(&WRITE, "operator", T);
    h.accept_opens();
    h.session_down();
    assert_eq!(h.done[&id], Err(Failure::OutcomeUnknown));
    h.session_up();
    h.accept_opens();
    assert_eq!(h.received.len(), 1);
}

#[test]
fn a_write_that_never_left_goes_on_the_next_session() {
    let mut h = Harness::new(RequesterConfig::default());
    let id = h.submit(&WRITE, "operator", T);
    // The session ends before the channel opened: the write never left.
    h.session_down();
    assert!(h.done.is_empty());
    h.session_up();
    h.accept_opens();
    assert_eq!(h.received.len(), 1);
    assert!(!h.received[0].retry, "nothing was sent before");
    let received = h.received[0].clone();
    h.answer(&received, Outcome::Answered(&WRITE));
    assert!(h.done[&id].is_ok());
}

#[test]
fn no_session_means_no_agent() {
    let mut h = Harness::new(RequesterConfig::default());
    h.session_down();
    let id = h.submit(&READ, "operator", T);
    assert_eq!(h.done[&id], Err(Failure::NoAgent));
}

#[test]
fn a_request_waiting_for_a_session_ends_at_its_deadline() {
    let mut h = Harness::new(RequesterConfig::default());
    let id = h.submit(&READ, "operator", T);
    h.accept_opens();
    h.session_down();
    h.advance(T);
    assert_eq!(h.done[&id], Err(Failure::NoAgent));
}

#[test]
fn outcomes_end_requests_with_their_failures() {
    let mut h = Harness::new(RequesterConfig::default());
    let cases = [
        (Outcome::Busy, Failure::Busy),
        (Outcome::Unreachable, Failure::Unreachable),
        (Outcome::Expired, Failure::Expired),
        (
            Outcome::Denied(outpost_modbus_core::ExceptionCode::IllegalDataAddress),
            Failure::Denied(outpost_modbus_core::ExceptionCode::IllegalDataAddress),
        ),
        (Outcome::NoAnswer, Failure::Timeout),
    ];
    for (outcome, failure) in cases {
        let id = h.submit(&READ, "operator", T);
        h.accept_opens();
        let received = h.received.last().unwrap().clone();
        h.answer(&received, outcome);
        assert_eq!(h.done[&id], Err(failure));
    }
    let id = h.submit(&WRITE, "operator", T);
    let received = h.received.last().unwrap().clone();
    h.answer(&received, Outcome::NoAnswer);
    assert_eq!(h.done[&id], Err(Failure::OutcomeUnknown));
}

#[test]
fn an_answer_that_does_not_fit_the_request_is_an_invalid_response() {
    let mut h = Harness::new(RequesterConfig::default());
    let id = h.submit(&READ, "operator", T);
    h.accept_opens();
    let received = h.received[0].clone();
    h.answer(&received, Outcome::Answered(&[0x04, 0x02, 0x00, 0x01]));
    assert!(matches!(h.done[&id], Err(Failure::InvalidResponse(_))));
}

#[test]
fn a_malformed_outcome_resets_the_channel_and_reads_on_it_go_on_a_new_one() {
    let mut h = Harness::new(RequesterConfig::default());
    let bad = h.submit(&READ, "operator", T);
    let other = h.submit(&READ, "operator", T);
    let write = h.submit(&WRITE, "operator", T);
    h.accept_opens();
    let first = h.received[0].clone();
    h.r.handle_message(
        h.now,
        first.channel,
        first.correlation,
        Bytes::from_static(&[0x02, 0x01]),
    );
    h.pump();
    assert_eq!(h.resets.len(), 1);
    assert_eq!(h.resets[0].0, first.channel);
    assert_eq!(h.done[&bad], Err(Failure::Timeout));
    assert_eq!(
        h.done[&write],
        Err(Failure::OutcomeUnknown),
        "a write on the reset channel"
    );
    assert_eq!(h.r.stats().malformed_outcomes, 1);
    h.accept_opens();
    let retried = h.received.last().unwrap().clone();
    assert_ne!(retried.channel, first.channel);
    assert!(retried.retry);
    h.answer(&retried, Outcome::Answered(&READ_ANSWER));
    assert!(h.done[&other].is_ok());
}

#[test]
fn a_refused_channel_fails_its_requests() {
    let mut h = Harness::new(RequesterConfig::default());
    let a = h.submit(&READ, "operator", T);
    let b = h.submit(&WRITE, "operator", T);
    let (token, _, _) = h.opens.pop().unwrap();
    let channel = ChannelId::new(2).unwrap();
    h.r.handle_opened(h.now, token, Ok(channel));
    h.r.handle_refused(h.now, channel, ErrorCode::UnknownTarget);
    h.pump();
    assert_eq!(h.done[&a], Err(Failure::Refused(ErrorCode::UnknownTarget)));
    assert_eq!(h.done[&b], Err(Failure::Refused(ErrorCode::UnknownTarget)));
    assert_eq!(h.r.channel_count(), 0);
}

#[test]
fn a_full_session_is_a_channel_limit_not_a_busy_device() {
    let mut h = Harness::new(RequesterConfig::default());
    let a = h.submit(&READ, "operator", T);
    let (token, _, _) = h.opens.pop().unwrap();
    h.r.handle_opened(h.now, token, Err(OpenError::TooManyChannels));
    h.pump();
    assert_eq!(h.done[&a], Err(Failure::ChannelLimit));
}

#[test]
fn an_open_that_takes_too_long_is_abandoned() {
    let mut h = Harness::new(RequesterConfig {
        open_timeout: Duration::from_secs(1),
        ..RequesterConfig::default()
    });
    let a = h.submit(&READ, "operator", Duration::from_secs(5));
    let (token, _, _) = h.opens.pop().unwrap();
    let channel = ChannelId::new(2).unwrap();
    h.r.handle_opened(h.now, token, Ok(channel));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.resets, [(channel, ErrorCode::Cancel)]);
    assert_eq!(h.done[&a], Err(Failure::Expired));
}

#[test]
fn requests_past_their_deadline_end_once_and_late_answers_are_ignored() {
    let mut h = Harness::new(RequesterConfig::default());
    let read = h.submit(&READ, "operator", T);
    let write = h.submit(&WRITE, "operator", T);
    h.accept_opens();
    h.advance(T);
    assert!(h.done.is_empty(), "the outcome may still be on its way");
    h.advance(Duration::from_millis(500));
    assert_eq!(h.done[&read], Err(Failure::Timeout));
    assert_eq!(h.done[&write], Err(Failure::OutcomeUnknown));
    for received in h.received.clone() {
        h.answer(&received, Outcome::Answered(&READ_ANSWER));
    }
    assert!(!h.ended_twice);
}

#[test]
fn a_cancelled_request_never_ends_and_frees_its_channel() {
    let mut h = Harness::new(RequesterConfig {
        idle_timeout: Duration::from_secs(1),
        ..RequesterConfig::default()
    });
    let a = h.submit(&READ, "operator", T);
    h.accept_opens();
    h.r.cancel(h.now, a);
    h.pump();
    let received = h.received[0].clone();
    h.answer(&received, Outcome::Answered(&READ_ANSWER));
    assert!(h.done.is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(h.resets.len(), 1, "idle after the cancel");
}

#[test]
fn too_many_requests_are_refused_at_once() {
    let mut h = Harness::new(RequesterConfig {
        max_requests: 2,
        ..RequesterConfig::default()
    });
    h.submit(&READ, "operator", T);
    h.submit(&READ, "operator", T);
    let third = h.submit(&READ, "operator", T);
    assert_eq!(h.done[&third], Err(Failure::Overloaded));
}

#[test]
fn correlation_ids_in_flight_on_a_channel_are_distinct() {
    let mut h = Harness::new(RequesterConfig::default());
    for _ in 0..100 {
        h.submit(&READ, "operator", T);
    }
    h.accept_opens();
    let ids: HashSet<_> = h.received.iter().map(|r| (r.channel, r.correlation)).collect();
    assert_eq!(ids.len(), 100);
}

/// One step of a random interleaving.
#[derive(Debug, Clone)]
enum Step {
    Submit { write: bool, role: u8, timeout_ms: u16 },
    AcceptOpens,
    RefuseOpen,
    Answer { index: usize, kind: u8 },
    Reset { index: usize },
    Cancel { index: usize },
    SessionDown,
    SessionUp,
    GoingAway,
    Advance { ms: u16 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<bool>(), 0..3u8, 1..3000u16).prop_map(|(write, role, timeout_ms)| Step::Submit { write, role, timeout_ms }),
        3 => Just(Step::AcceptOpens),
        1 => Just(Step::RefuseOpen),
        4 => (any::<usize>(), 0..5u8).prop_map(|(index, kind)| Step::Answer { index, kind }),
        1 => any::<usize>().prop_map(|index| Step::Reset { index }),
        1 => any::<usize>().prop_map(|index| Step::Cancel { index }),
        1 => Just(Step::SessionDown),
        1 => Just(Step::SessionUp),
        1 => Just(Step::GoingAway),
        3 => (0..5000u16).prop_map(|ms| Step::Advance { ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every request ends exactly once (or was cancelled), no write is sent
    /// twice, a read at most twice, and no channel outlives its users past
    /// the idle time.
    #[test]
    fn random_interleavings_keep_the_rules(steps in proptest::collection::vec(step(), 1..120)) {
        let idle = Duration::from_secs(3);
        let mut h = Harness::new(RequesterConfig { idle_timeout: idle, open_timeout: Duration::from_secs(4), max_requests: 64 });
        let mut submitted = Vec::new();
        let mut cancelled = HashSet::new();
        for step in steps {
            match step {
                Step::Submit { write, role, timeout_ms } => {
                    let pdu = if write { &WRITE } else { &READ };
                    let id = h.submit(pdu, ["a", "b", "c"][role as usize], Duration::from_millis(u64::from(timeout_ms)));
                    submitted.push(id);
                }
                Step::AcceptOpens => if h.r.is_up() { h.accept_opens() },
                Step::RefuseOpen => if let Some((token, _, _)) = h.opens.pop() {
                    let channel = ChannelId::new(h.next_channel).unwrap();
                    h.next_channel += 2;
                    h.r.handle_opened(h.now, token, Ok(channel));
                    h.r.handle_refused(h.now, channel, ErrorCode::Refused);
                    h.pump();
                },
                Step::Answer { index, kind } => if !h.received.is_empty() {
                    let received = h.received[index % h.received.len()].clone();
                    match kind {
                        0 => h.answer(&received, Outcome::Answered(&READ_ANSWER)),
                        1 => h.answer(&received, Outcome::Answered(&WRITE)),
                        2 => h.answer(&received, Outcome::Busy),
                        3 => h.answer(&received, Outcome::NoAnswer),
                        _ => {
                            h.r.handle_message(h.now, received.channel, received.correlation, Bytes::from_static(&[9]));
                            h.pump();
                        }
                    }
                },
                Step::Reset { index } => if !h.open_channels.is_empty() {
                    let mut open: Vec<_> = h.open_channels.iter().copied().collect();
                    open.sort_by_key(|c| c.value());
                    let channel = open[index % open.len()];
                    h.open_channels.remove(&channel);
                    h.r.handle_gone(h.now, channel);
                    h.pump();
                },
                Step::Cancel { index } => if !submitted.is_empty() {
                    let id = submitted[index % submitted.len()];
                    if !h.done.contains_key(&id) {
                        h.r.cancel(h.now, id);
                        cancelled.insert(id);
                        h.pump();
                    }
                },
                Step::SessionDown => if h.r.is_up() { h.session_down() },
                Step::SessionUp => if !h.r.is_up() { h.session_up() },
                Step::GoingAway => { h.r.session_going_away(h.now); h.pump(); },
                Step::Advance { ms } => h.advance(Duration::from_millis(u64::from(ms))),
            }
            prop_assert!(!h.ended_twice, "a request ended twice");
        }
        // Let every deadline pass: everything ends.
        h.advance(Duration::from_secs(10));
        h.advance(idle);
        prop_assert!(!h.ended_twice);
        for id in &submitted {
            prop_assert!(h.done.contains_key(id) ^ cancelled.contains(id), "{:?} ended {} times", id, u8::from(h.done.contains_key(id)));
        }
        prop_assert_eq!(h.r.request_count(), 0);
        prop_assert_eq!(h.r.channel_count(), 0, "channels outlived their users");
        // No write sent twice (the invariant check counts each request's
        // sends while it lives; a second send of a write would be a retry).
        let retried_writes = h.received.iter().filter(|r| r.pdu == WRITE && r.retry).count();
        prop_assert_eq!(retried_writes, 0, "a write was sent as a retry");
    }
}

#[test]
fn the_requester_says_whether_it_is_up_idle_and_how_many_requests_it_holds() {
    let mut h = Harness::new(RequesterConfig::default());
    assert!(h.r.is_up() && h.r.is_idle());
    assert_eq!(h.r.request_count(), 0);
    let first = h.submit(&READ, "operator", T);
    h.submit(&READ, "operator", T);
    assert_eq!(h.r.request_count(), 2);
    assert!(!h.r.is_idle(), "requests wait");
    h.accept_opens();
    for received in h.received.clone() {
        h.answer(&received, Outcome::Answered(&READ_ANSWER));
    }
    assert_eq!(h.r.request_count(), 0);
    assert!(!h.r.is_idle(), "a channel is held");
    h.session_down();
    assert!(!h.r.is_up());
    assert!(h.r.is_idle());
    // A request that ends at once (no session) is waiting to be taken.
    let id = h.r.submit(
        h.now,
        Submit {
            target: "plc".into(),
            metadata: metadata("operator"),
            unit: UnitId(1),
            pdu: Bytes::from_static(&READ),
            expect: Expectation::new(&Request::decode(&READ).unwrap()),
            changes: false,
            deadline: h.now + T,
        },
    );
    assert!(!h.r.is_idle(), "an outcome waits to be taken");
    assert!(matches!(h.r.poll_done(), Some((done, Err(Failure::NoAgent))) if done == id));
    assert!(h.r.is_idle());
    h.session_up();
    assert!(h.r.is_up());
    let _ = first;
}

#[test]
fn cancelling_one_finished_request_keeps_the_others_outcomes() {
    let mut h = Harness::new(RequesterConfig::default());
    h.session_down();
    let submit = |r: &mut Requester, now| {
        r.submit(
            now,
            Submit {
                target: "plc".into(),
                metadata: metadata("operator"),
                unit: UnitId(1),
                pdu: Bytes::from_static(&READ),
                expect: Expectation::new(&Request::decode(&READ).unwrap()),
                changes: false,
                deadline: now + T,
            },
        )
    };
    let a = submit(&mut h.r, h.now);
    let b = submit(&mut h.r, h.now);
    let c = submit(&mut h.r, h.now);
    h.r.cancel(h.now, b);
    let left: Vec<RequestId> = std::iter::from_fn(|| h.r.poll_done()).map(|(id, _)| id).collect();
    assert_eq!(left, [a, c]);
}

#[test]
fn a_channel_the_session_cannot_name_refuses_its_requests() {
    let mut h = Harness::new(RequesterConfig::default());
    let id = h.submit(&READ, "operator", T);
    let (token, _, _) = h.opens.remove(0);
    h.r.handle_opened(h.now, token, Err(OpenError::TargetTooLong));
    h.pump();
    assert!(
        matches!(h.done[&id], Err(Failure::Refused(ErrorCode::Refused))),
        "{:?}",
        h.done[&id]
    );
}

/// The requester's timer: an open channel in use wakes it for nothing of
/// its own (its requests' deadlines do); an unused one at the end of its
/// idle time; an opening one at the end of its open time.
#[test]
fn the_timer_follows_requests_idle_channels_and_opens() {
    let config = RequesterConfig {
        open_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(500),
        ..RequesterConfig::default()
    };
    let mut h = Harness::new(config);
    let start = h.now;
    h.submit(&READ, "operator", Duration::from_secs(5));
    assert_eq!(
        h.r.poll_timeout(),
        Some(start + Duration::from_millis(300)),
        "the open's limit"
    );
    h.accept_opens();
    let until = h.r.poll_timeout().expect("the request's timer");
    assert!(until >= start + Duration::from_secs(5), "{:?}", until - start);
    let received = h.received[0].clone();
    h.advance(Duration::from_millis(100));
    h.answer(&received, Outcome::Answered(&READ_ANSWER));
    assert_eq!(
        h.r.poll_timeout(),
        Some(h.now + Duration::from_millis(500)),
        "idle from the answer"
    );
}

#[test]
fn an_open_is_abandoned_exactly_at_its_limit() {
    let config = RequesterConfig {
        open_timeout: Duration::from_millis(300),
        ..RequesterConfig::default()
    };
    let mut h = Harness::new(config);
    let id = h.submit(&READ, "operator", Duration::from_secs(5));
    h.advance(Duration::from_millis(299));
    assert_eq!(h.r.channel_count(), 1);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.r.channel_count(), 0);
    assert!(h.done.contains_key(&id), "its request ends with the open");
}

/// A request that reaches an open channel with no time left is not sent.
#[test]
fn a_request_with_no_time_left_is_not_sent() {
    let mut h = Harness::new(RequesterConfig::default());
    let id = h.submit(&READ, "operator", Duration::from_millis(10));
    h.now += Duration::from_millis(10);
    h.accept_opens();
    assert!(h.received.is_empty());
    assert!(matches!(h.done[&id], Err(Failure::Expired)), "{:?}", h.done[&id]);
}

/// A request in flight waits for the agent's answer until its deadline
/// plus half its budget plus 50 ms (at most 500 ms) for the trip back.
#[test]
fn an_answer_is_awaited_for_half_the_budget_past_the_deadline() {
    let mut h = Harness::new(RequesterConfig::default());
    let id = h.submit(&READ, "operator", Duration::from_millis(200));
    h.accept_opens();
    h.advance(Duration::from_millis(200 + 149));
    assert!(!h.done.contains_key(&id));
    h.advance(Duration::from_millis(1));
    assert!(matches!(h.done[&id], Err(Failure::Timeout)), "{:?}", h.done[&id]);

    let id = h.submit(&READ, "operator", Duration::from_secs(2));
    h.advance(Duration::from_millis(2000 + 499));
    assert!(!h.done.contains_key(&id));
    h.advance(Duration::from_millis(1));
    assert!(matches!(h.done[&id], Err(Failure::Timeout)), "{:?}", h.done[&id]);
}

/// A read that may have reached the device before the session broke, and
/// waits for a channel of the next session when its deadline passes, got
/// no answer; one that was never sent merely expired.
#[test]
fn a_retried_read_waiting_for_a_channel_ends_as_unanswered() {
    let mut h = Harness::new(RequesterConfig::default());
    let sent = h.submit(&READ, "operator", T);
    h.accept_opens();
    assert_eq!(h.received.len(), 1);
    h.session_down();
    h.session_up();
    let never_sent = h.submit(&READ, "operator", T);
    assert_eq!(h.opens.len(), 1, "both wait for the new channel");
    h.advance(T);
    assert!(matches!(h.done[&sent], Err(Failure::Timeout)), "{:?}", h.done[&sent]);
    assert!(
        matches!(h.done[&never_sent], Err(Failure::Expired)),
        "{:?}",
        h.done[&never_sent]
    );
    assert_eq!(h.r.stats().retries, 0, "never sent again");
    // Once a channel opens in time, the read goes again, marked a retry.
    let again = h.submit(&READ, "operator", T);
    h.accept_opens();
    h.session_down();
    h.session_up();
    h.accept_opens();
    assert!(h.received.last().is_some_and(|r| r.retry));
    assert_eq!(h.r.stats().retries, 1);
    let _ = again;
}

#[test]
fn every_send_is_counted() {
    let mut h = Harness::new(RequesterConfig::default());
    for _ in 0..3 {
        h.submit(&READ, "operator", T);
    }
    h.accept_opens();
    assert_eq!(h.received.len(), 3);
    assert_eq!(h.r.stats().sends, 3);
    assert_eq!(h.r.stats().retries, 0);
}
