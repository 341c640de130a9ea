//! The agent's side of the Modbus profile for one session: which channels
//! it accepts, and what becomes of each request before a device sees it.
//! No IO, no clock, no logging: every decision comes back as a value the
//! caller acts on (and audits).
//!
//! Rules (PROTOCOL.md section 12):
//! - a channel is a message channel to a known device with valid metadata;
//! - a request that does not follow the profile, or reuses the correlation
//!   id of a request still in service on its channel, resets the channel;
//! - a PDU that is not a valid request is MALFORMED (01, 02 or 03, as a
//!   device would answer it); a write marked as a retry is MALFORMED (03)
//!   and never reaches the device;
//! - a unit the device does not serve is DENIED (0A); the local policy
//!   decides for the channel's role (deny by default);
//! - at most [`Admission::new`]'s `max_in_service` requests of a session are
//!   in service at once; past it, BUSY.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::time::Duration;

use outpost_modbus_core::access::{Denial, Policy};
use outpost_modbus_core::{ExceptionCode, FunctionCode, Request, UnitId};
use outpost_tunnel_proto::{ChannelId, ChannelKind, ErrorCode};

use crate::binding::{BindingError, ChannelMetadata, Outcome, TunnelRequest};

/// Why a channel was refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelRefusal {
    /// Only message channels carry the profile.
    NotMessages,
    /// No device of that name.
    UnknownDevice,
    /// The metadata does not follow the profile.
    Metadata(BindingError),
}

impl ChannelRefusal {
    /// The REFUSE code the hub is sent.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChannelRefusal::NotMessages => ErrorCode::Refused,
            ChannelRefusal::UnknownDevice => ErrorCode::UnknownTarget,
            ChannelRefusal::Metadata(e) => e.code(),
        }
    }
}

/// A channel the agent accepted: the device it reaches and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant<D> {
    /// The device (whatever the caller names devices by).
    pub device: D,
    /// The role whose rules apply, and the principal behind the requests.
    pub metadata: ChannelMetadata,
}

/// A request that may go to its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted<'a> {
    /// The unit to address.
    pub unit: UnitId,
    /// The request PDU.
    pub pdu: &'a [u8],
    /// How long the hub waits for the outcome, counted from its arrival.
    pub budget: Duration,
    /// The request, decoded (what it does, for the audit).
    pub request: Request<'a>,
}

/// Why a request was answered without reaching the device.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The PDU is not a valid request.
    Malformed(ExceptionCode),
    /// A write marked as a retry: never sent twice.
    RetriedWrite,
    /// The device does not serve the unit.
    Unit,
    /// The local policy refused it for the channel's role.
    Policy(Denial),
    /// Too many requests of this session are in service.
    Busy,
}

impl Refusal {
    /// The outcome the hub is sent.
    pub fn outcome(&self) -> Outcome<'static> {
        match self {
            Refusal::Malformed(code) => Outcome::Malformed(*code),
            Refusal::RetriedWrite => Outcome::Malformed(ExceptionCode::IllegalDataValue),
            Refusal::Unit => Outcome::Denied(ExceptionCode::GatewayPathUnavailable),
            Refusal::Policy(denial) => Outcome::Denied(denial.exception_code()),
            Refusal::Busy => Outcome::Busy,
        }
    }
}

/// What to do with a message that arrived on a channel.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Forward it to the device; call [`Admission::finished`] when its
    /// outcome is sent (or abandoned).
    Forward(Admitted<'a>),
    /// Answer it at once with the refusal's outcome.
    Refuse {
        /// Why.
        refusal: Refusal,
        /// Its unit (for the audit).
        unit: UnitId,
        /// Its function code, if it has one.
        function: Option<FunctionCode>,
        /// The request, when it decodes (for the audit: what it asked for).
        request: Option<Request<'a>>,
    },
    /// Reset the channel: the hub broke the profile.
    Reset(ErrorCode),
    /// A channel this session does not hold (already reset): drop it.
    Ignore,
}

#[derive(Debug)]
struct Held<D> {
    grant: Grant<D>,
    in_service: HashSet<u32>,
}

/// The agent's side of the profile for one session.
#[derive(Debug)]
pub struct Admission<D> {
    channels: HashMap<ChannelId, Held<D>>,
    in_service: usize,
    max_in_service: usize,
}

impl<D: Clone> Admission<D> {
    /// Admission for a new session, with at most `max_in_service` requests
    /// in service at once.
    pub fn new(max_in_service: usize) -> Self {
        Admission {
            channels: HashMap::new(),
            in_service: 0,
            max_in_service,
        }
    }

    /// Decides on a channel the hub asks for. `device` finds a device by name.
    pub fn open(
        &mut self,
        channel: ChannelId,
        kind: ChannelKind,
        target: &[u8],
        metadata: &[u8],
        device: impl FnOnce(&str) -> Option<D>,
    ) -> Result<&Grant<D>, ChannelRefusal> {
        if kind != ChannelKind::Message {
            return Err(ChannelRefusal::NotMessages);
        }
        let name = std::str::from_utf8(target).map_err(|_| ChannelRefusal::UnknownDevice)?;
        let device = device(name).ok_or(ChannelRefusal::UnknownDevice)?;
        let metadata = ChannelMetadata::decode(metadata).map_err(ChannelRefusal::Metadata)?;
        let held = Held {
            grant: Grant { device, metadata },
            in_service: HashSet::new(),
        };
        if let Some(old) = self.channels.insert(channel, held) {
            self.in_service -= old.in_service.len();
        }
        Ok(&self.channels[&channel].grant)
    }

    /// The grant of a channel this session holds.
    pub fn grant(&self, channel: ChannelId) -> Option<&Grant<D>> {
        self.channels.get(&channel).map(|h| &h.grant)
    }

    /// Requests in service now.
    pub fn in_service(&self) -> usize {
        self.in_service
    }

    /// Channels held now.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Decides on a request. `serves` says whether the channel's device
    /// serves a unit.
    pub fn handle_request<'a>(
        &mut self,
        channel: ChannelId,
        correlation: u32,
        payload: &'a [u8],
        policy: &Policy,
        serves: impl FnOnce(&D, UnitId) -> bool,
    ) -> Verdict<'a> {
        let Some(held) = self.channels.get_mut(&channel) else {
            return Verdict::Ignore;
        };
        let request = match TunnelRequest::decode(payload) {
            Ok(r) => r,
            Err(e) => return self.reset(channel, e.code()),
        };
        if held.in_service.contains(&correlation) {
            // Two requests with one id cannot both be answered.
            return self.reset(channel, ErrorCode::ProtocolError);
        }
        let unit = request.unit();
        let refuse = |refusal, decoded: Option<Request<'a>>| Verdict::Refuse {
            refusal,
            unit,
            function: decoded
                .map(|r| r.function())
                .or_else(|| request.pdu().first().map(|f| FunctionCode::from_u8(*f))),
            request: decoded,
        };
        let decoded = match Request::decode(request.pdu()) {
            Ok(d) => d,
            Err(e) => {
                let code = match e.exception_code() {
                    c @ (ExceptionCode::IllegalFunction | ExceptionCode::IllegalDataAddress) => c,
                    _ => ExceptionCode::IllegalDataValue,
                };
                return refuse(Refusal::Malformed(code), None);
            }
        };
        if request.is_retry() && decoded.is_write() {
            return refuse(Refusal::RetriedWrite, Some(decoded));
        }
        if !serves(&held.grant.device, unit) {
            return refuse(Refusal::Unit, Some(decoded));
        }
        if let Err(denial) = policy.check(held.grant.metadata.role.as_str(), unit, &decoded) {
            return refuse(Refusal::Policy(denial), Some(decoded));
        }
        if self.in_service >= self.max_in_service {
            return refuse(Refusal::Busy, Some(decoded));
        }
        held.in_service.insert(correlation);
        self.in_service += 1;
        Verdict::Forward(Admitted {
            unit,
            pdu: request.pdu(),
            budget: request.budget(),
            request: decoded,
        })
    }

    /// A forwarded request's outcome was sent (or its channel is gone).
    pub fn finished(&mut self, channel: ChannelId, correlation: u32) {
        if let Some(held) = self.channels.get_mut(&channel) {
            if held.in_service.remove(&correlation) {
                self.in_service -= 1;
            }
        }
    }

    /// Whether a forwarded request is still wanted (its channel was not reset).
    pub fn is_in_service(&self, channel: ChannelId, correlation: u32) -> bool {
        self.channels
            .get(&channel)
            .is_some_and(|h| h.in_service.contains(&correlation))
    }

    /// A channel is gone: its requests in service are no longer wanted.
    pub fn channel_gone(&mut self, channel: ChannelId) {
        if let Some(held) = self.channels.remove(&channel) {
            self.in_service -= held.in_service.len();
        }
    }

    fn reset<'a>(&mut self, channel: ChannelId, code: ErrorCode) -> Verdict<'a> {
        self.channel_gone(channel);
        Verdict::Reset(code)
    }
}
