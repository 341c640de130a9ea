//! The Modbus profile's sans-IO machines (`outpost_tunnel_tokio::profile`)
//! driven by byte-coded steps: each step is one byte naming what happens,
//! followed by the bytes it needs. Simple enough that the scenario tests'
//! sequences are written as seeds by hand (`seeds.rs`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use outpost_modbus_core::access::Policy;
use outpost_modbus_core::{Expectation, Request, UnitId};
use outpost_tunnel_proto::{ChannelId, ChannelKind, ErrorCode, OpenError};
use outpost_tunnel_tokio::binding::{ChannelMetadata, Outcome, Principal, Role, TunnelRequest};
use outpost_tunnel_tokio::profile::{
    Action, Admission, DeviceQueue, Failure, OpenToken, RequestId, Requester, RequesterConfig, Submit, Ticket, Verdict,
};

/// Reads bytes off the front of the input; zeros when it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u8(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// A length-prefixed byte string.
    fn bytes(&mut self) -> Vec<u8> {
        let len = usize::from(self.u8()).min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        taken.to_vec()
    }
}

const READ: [u8; 5] = [0x03, 0x00, 0x00, 0x00, 0x01];
const WRITE: [u8; 5] = [0x06, 0x00, 0x01, 0x00, 0x07];
const READ_ANSWER: [u8; 4] = [0x03, 0x02, 0x00, 0x2A];

/// The step codes of the `requester` target.
pub(crate) mod step {
    pub(crate) const SUBMIT_READ: u8 = 0;
    pub(crate) const SUBMIT_WRITE: u8 = 1;
    pub(crate) const ACCEPT_OPENS: u8 = 2;
    pub(crate) const REFUSE_OPEN: u8 = 3;
    pub(crate) const FAIL_OPEN: u8 = 4;
    pub(crate) const ANSWER: u8 = 5;
    pub(crate) const ANSWER_BYTES: u8 = 6;
    pub(crate) const RESET: u8 = 7;
    pub(crate) const CANCEL: u8 = 8;
    pub(crate) const SESSION_DOWN: u8 = 9;
    pub(crate) const SESSION_UP: u8 = 10;
    pub(crate) const ADVANCE: u8 = 11;
    pub(crate) const GOING_AWAY: u8 = 12;
    pub(crate) const COUNT: u8 = 13;
}

/// Target `requester`: the hub's side of the profile against a fake agent
/// session. Every request ends at most once and, once all deadlines pass,
/// exactly once (unless cancelled); no write is ever sent as a retry; no
/// channel outlives its users past the idle time; the requester's own
/// bookkeeping holds after every step.
pub fn requester(data: &[u8]) {
    let mut input = Input(data);
    let idle = Duration::from_secs(3);
    let config = RequesterConfig {
        idle_timeout: idle,
        open_timeout: Duration::from_secs(4),
        max_requests: 32,
    };
    let mut r = Requester::new(config);
    let mut now = Instant::now();
    r.session_up(now);
    let mut next_channel = 2u32;
    let mut opens: Vec<OpenToken> = Vec::new();
    let mut open_channels: Vec<ChannelId> = Vec::new();
    let mut sent: Vec<(ChannelId, u32, bool, bool)> = Vec::new();
    let mut done: HashMap<RequestId, Result<Bytes, Failure>> = HashMap::new();
    let mut submitted: Vec<(RequestId, bool)> = Vec::new();
    let mut cancelled: HashSet<RequestId> = HashSet::new();
    let mut steps = 0;
    while let Some(code) = input.byte() {
        steps += 1;
        if steps > 400 {
            break;
        }
        match code % step::COUNT {
            c @ (step::SUBMIT_READ | step::SUBMIT_WRITE) => {
                let pdu: &[u8] = if c == step::SUBMIT_WRITE { &WRITE } else { &READ };
                let role = ["a", "b", "c"][usize::from(input.u8() % 3)];
                let timeout = Duration::from_millis(u64::from(input.u16() % 4000));
                let request = Request::decode(pdu).expect("a valid request");
                let id = r.submit(
                    now,
                    Submit {
                        target: "plc".into(),
                        metadata: ChannelMetadata {
                            role: Role::new(role).expect("a valid role"),
                            principal: Principal::default(),
                        },
                        unit: UnitId(1),
                        pdu: Bytes::from_static(pdu),
                        expect: Expectation::new(&request),
                        changes: request.is_write(),
                        deadline: now + timeout,
                    },
                );
                submitted.push((id, request.is_write()));
            }
            step::ACCEPT_OPENS => {
                if r.is_up() {
                    for token in opens.drain(..) {
                        let channel = ChannelId::new(next_channel).expect("a channel id");
                        next_channel += 2;
                        r.handle_opened(now, token, Ok(channel));
                        open_channels.push(channel);
                        r.handle_accepted(now, channel);
                    }
                }
            }
            step::REFUSE_OPEN => {
                if let Some(token) = opens.pop() {
                    let channel = ChannelId::new(next_channel).expect("a channel id");
                    next_channel += 2;
                    r.handle_opened(now, token, Ok(channel));
                    r.handle_refused(now, channel, ErrorCode::from_u32(u32::from(input.u8())));
                }
            }
            step::FAIL_OPEN => {
                if let Some(token) = opens.pop() {
                    let error = match input.u8() % 3 {
                        0 => OpenError::TooManyChannels,
                        1 => OpenError::GoingAway,
                        _ => OpenError::Closed,
                    };
                    r.handle_opened(now, token, Err(error));
                }
            }
            c @ (step::ANSWER | step::ANSWER_BYTES) => {
                if !sent.is_empty() {
                    let (channel, correlation, _, _) = sent[usize::from(input.u8()) % sent.len()];
                    let payload = if c == step::ANSWER_BYTES {
                        input.bytes()
                    } else {
                        let mut wire = Vec::new();
                        match input.u8() % 6 {
                            0 => Outcome::Answered(&READ_ANSWER).encode(&mut wire),
                            1 => Outcome::Answered(&WRITE).encode(&mut wire),
                            2 => Outcome::Busy.encode(&mut wire),
                            3 => Outcome::NoAnswer.encode(&mut wire),
                            4 => Outcome::Unreachable.encode(&mut wire),
                            _ => Outcome::Expired.encode(&mut wire),
                        }
                        wire
                    };
                    r.handle_message(now, channel, correlation, Bytes::from(payload));
                }
            }
            step::RESET => {
                if !open_channels.is_empty() {
                    let channel = open_channels.remove(usize::from(input.u8()) % open_channels.len());
                    r.handle_gone(now, channel);
                }
            }
            step::CANCEL => {
                if !submitted.is_empty() {
                    let (id, _) = submitted[usize::from(input.u8()) % submitted.len()];
                    if !done.contains_key(&id) {
                        r.cancel(now, id);
                        cancelled.insert(id);
                    }
                }
            }
            step::SESSION_DOWN => {
                if r.is_up() {
                    r.session_down(now);
                    opens.clear();
                    open_channels.clear();
                }
            }
            step::SESSION_UP => {
                if !r.is_up() {
                    r.session_up(now);
                }
            }
            step::GOING_AWAY => r.session_going_away(now),
            _ => {
                now += Duration::from_millis(u64::from(input.u16() % 5000));
                r.handle_timeout(now);
            }
        }
        drain(&mut r, &mut opens, &mut open_channels, &mut sent, &mut done);
        r.check_invariants();
    }
    now += Duration::from_secs(10);
    r.handle_timeout(now);
    now += idle;
    r.handle_timeout(now);
    drain(&mut r, &mut opens, &mut open_channels, &mut sent, &mut done);
    for (id, _) in &submitted {
        assert!(
            done.contains_key(id) ^ cancelled.contains(id),
            "{id:?} ended {} times",
            u8::from(done.contains_key(id))
        );
    }
    assert_eq!(r.request_count(), 0);
    assert_eq!(r.channel_count(), 0, "channels outlived their users");
    assert!(
        !sent.iter().any(|&(_, _, write, retry)| write && retry),
        "a write was sent as a retry"
    );
}

/// Takes the requester's output; panics if a request ends twice or a
/// message goes to a channel that is not open.
fn drain(
    r: &mut Requester,
    opens: &mut Vec<OpenToken>,
    open_channels: &mut Vec<ChannelId>,
    sent: &mut Vec<(ChannelId, u32, bool, bool)>,
    done: &mut HashMap<RequestId, Result<Bytes, Failure>>,
) {
    while let Some(action) = r.poll_action() {
        match action {
            Action::Open { token, .. } => opens.push(token),
            Action::Send {
                channel,
                correlation,
                payload,
            } => {
                assert!(open_channels.contains(&channel), "a send on a channel not open");
                let request = TunnelRequest::decode(&payload).expect("the requester sends valid requests");
                sent.push((channel, correlation, request.pdu() == WRITE, request.is_retry()));
            }
            Action::Reset { channel, .. } => open_channels.retain(|c| *c != channel),
            _ => {}
        }
    }
    while let Some((id, result)) = r.poll_done() {
        assert!(done.insert(id, result).is_none(), "{id:?} ended twice");
    }
}

/// Target `admission`: the agent's side of the profile fed channel opens
/// and arbitrary requests. What it forwards decodes as a Modbus request,
/// is allowed by the policy for the channel's role, addresses a unit the
/// device serves, and is never a retried write; its count of requests in
/// service matches what was forwarded and not yet finished.
pub fn admission(data: &[u8]) {
    let policy: Policy = toml_policy();
    let mut input = Input(data);
    let mut admission: Admission<u8> = Admission::new(8);
    let mut forwarded: HashSet<(ChannelId, u32)> = HashSet::new();
    let mut steps = 0;
    while let Some(code) = input.byte() {
        steps += 1;
        if steps > 400 {
            break;
        }
        let channel = ChannelId::new(u32::from(input.u8() % 8) * 2 + 2).expect("a channel id");
        match code % 5 {
            0 => {
                // Open, to a known or an unknown device, with valid or arbitrary metadata.
                let kind = if input.u8() % 4 == 0 {
                    ChannelKind::Stream
                } else {
                    ChannelKind::Message
                };
                let target: &[u8] = if input.u8() % 4 == 0 { b"nowhere" } else { b"plc" };
                let metadata = if input.u8() % 3 == 0 {
                    input.bytes()
                } else {
                    let role = ["operator", "viewer", "stranger"][usize::from(input.u8() % 3)];
                    ChannelMetadata {
                        role: Role::new(role).expect("a valid role"),
                        principal: Principal::default(),
                    }
                    .to_vec()
                };
                // A channel opened again replaces the old one (and its
                // requests); a refused open leaves the old one as it was.
                if admission
                    .open(channel, kind, target, &metadata, |name| (name == "plc").then_some(1u8))
                    .is_ok()
                {
                    forwarded.retain(|(c, _)| *c != channel);
                }
            }
            1 | 2 => {
                // A request: well formed with an arbitrary PDU, or arbitrary bytes.
                let correlation = u32::from(input.u8() % 16);
                let payload = if code % 5 == 1 {
                    let unit = UnitId(input.u8() % 3);
                    let retry = input.u8() % 2 == 0;
                    let pdu = input.bytes();
                    match TunnelRequest::new(unit, Duration::from_millis(u64::from(input.u16())), &pdu) {
                        Ok(r) => {
                            let r = if retry { r.retried() } else { r };
                            let mut wire = Vec::new();
                            r.encode(&mut wire);
                            wire
                        }
                        Err(_) => pdu,
                    }
                } else {
                    input.bytes()
                };
                let role = admission.grant(channel).map(|g| g.metadata.role.clone());
                match admission.handle_request(channel, correlation, &payload, &policy, |_, unit| unit.0 == 1) {
                    Verdict::Forward(admitted) => {
                        let request = Request::decode(admitted.pdu).expect("forwarded PDUs decode");
                        let role = role.expect("forwarded on a held channel");
                        assert!(policy.check(role.as_str(), admitted.unit, &request).is_ok());
                        assert_eq!(admitted.unit, UnitId(1));
                        let retry = TunnelRequest::decode(&payload).map(|r| r.is_retry()).unwrap_or(true);
                        assert!(!(retry && request.is_write()), "a retried write was forwarded");
                        assert!(forwarded.insert((channel, correlation)), "a duplicate id was forwarded");
                    }
                    Verdict::Reset(_) => {
                        forwarded.retain(|(c, _)| *c != channel);
                    }
                    Verdict::Refuse { .. } | Verdict::Ignore => {}
                    _ => {}
                }
            }
            3 => {
                let correlation = u32::from(input.u8() % 16);
                admission.finished(channel, correlation);
                forwarded.remove(&(channel, correlation));
            }
            _ => {
                admission.channel_gone(channel);
                forwarded.retain(|(c, _)| *c != channel);
            }
        }
        assert_eq!(admission.in_service(), forwarded.len(), "requests in service");
        assert!(admission.in_service() <= 8);
    }
}

/// Operators read and write holding registers 0-99 of unit 1; viewers
/// read 0-9.
fn toml_policy() -> Policy {
    use outpost_modbus_core::access::{RoleRules, Span};
    use outpost_modbus_core::FunctionClass;
    let mut operator = RoleRules::default();
    operator.units.insert(UnitId(1));
    operator.functions.insert(FunctionClass::Read);
    operator.functions.insert(FunctionClass::Write);
    operator.holding_registers.read.push(Span::new(0, 99).expect("a span"));
    operator.holding_registers.write.push(Span::new(0, 99).expect("a span"));
    let mut viewer = RoleRules::default();
    viewer.units.insert(UnitId(1));
    viewer.functions.insert(FunctionClass::Read);
    viewer.holding_registers.read.push(Span::new(0, 9).expect("a span"));
    Policy::new()
        .with_role("operator", operator)
        .with_role("viewer", viewer)
}

/// Target `device_queue`: the agent's queue in front of a device. At most
/// `in_flight` requests run; requests start in arrival order; each starts
/// or expires at most once; BUSY only when `bound` requests wait; nothing
/// waits past its deadline once time has been handed in.
pub fn device_queue(data: &[u8]) {
    let mut input = Input(data);
    let in_flight = usize::from(input.u8() % 4) + 1;
    let bound = usize::from(input.u8() % 8);
    let mut q = DeviceQueue::new(in_flight, bound);
    let mut now = Instant::now();
    let mut order: Vec<Ticket> = Vec::new();
    let mut deadlines: HashMap<Ticket, Instant> = HashMap::new();
    let mut running: HashSet<Ticket> = HashSet::new();
    let mut ended: HashSet<Ticket> = HashSet::new();
    let mut last_started: Option<Ticket> = None;
    let mut steps = 0;
    while let Some(code) = input.byte() {
        steps += 1;
        if steps > 400 {
            break;
        }
        match code % 4 {
            0 => {
                let waiting = q.waiting();
                let deadline = now + Duration::from_millis(u64::from(input.u16() % 2000));
                match q.enqueue(now, deadline) {
                    Ok(ticket) => {
                        order.push(ticket);
                        deadlines.insert(ticket, deadline);
                    }
                    Err(_) => assert!(waiting >= bound, "BUSY with {waiting} of {bound} waiting"),
                }
            }
            1 if !order.is_empty() => {
                let ticket = order[usize::from(input.u8()) % order.len()];
                q.finish(now, ticket);
                running.remove(&ticket);
                ended.insert(ticket);
            }
            2 => {
                now += Duration::from_millis(u64::from(input.u16() % 3000));
                q.handle_timeout(now);
            }
            _ => {}
        }
        while let Some(ticket) = q.poll_started() {
            assert!(!ended.contains(&ticket), "an ended request started");
            assert!(running.insert(ticket), "started twice");
            assert!(deadlines[&ticket] > now, "started past its deadline");
            if let Some(last) = last_started {
                assert!(ticket > last, "started out of order");
            }
            last_started = Some(ticket);
        }
        while let Some(ticket) = q.poll_expired() {
            assert!(!running.contains(&ticket), "a running request expired");
            assert!(deadlines[&ticket] <= now, "expired before its deadline");
            assert!(ended.insert(ticket), "ended twice");
        }
        assert!(running.len() <= in_flight);
        assert_eq!(q.running(), running.len());
        assert!(q.waiting() <= bound);
        if let Some(t) = q.poll_timeout() {
            assert!(t > now, "a deadline already past is still waiting");
        }
    }
}
