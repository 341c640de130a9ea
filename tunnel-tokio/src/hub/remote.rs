//! The hub's Modbus client of a device behind an agent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use outpost_modbus_core::{Expectation, Request, UnitId};
use outpost_tunnel_proto::AgentId;
use tokio::time::Instant;

use super::link::Link;
use super::HubInner;
use crate::binding::{ChannelMetadata, Outcome, Principal, Role, TunnelRequest, MAX_BUDGET};
use crate::modbus::{ClientError, Requests};

/// An agent known to the hub (connected when it was looked up).
#[derive(Debug, Clone)]
pub struct AgentRef {
    pub(super) hub: Arc<HubInner>,
    pub(super) agent: AgentId,
}

impl AgentRef {
    /// The agent's id.
    pub fn id(&self) -> &AgentId {
        &self.agent
    }

    /// A client of the agent's device `target`, acting as `role`: the role
    /// whose rules in the agent's policy decide what it may do.
    pub fn modbus(&self, target: &str, role: Role) -> RemoteClient {
        self.modbus_as(target, role, Principal::default())
    }

    /// [`AgentRef::modbus`], naming who is behind the requests in the
    /// agent's audit log.
    pub fn modbus_as(&self, target: &str, role: Role, principal: Principal) -> RemoteClient {
        RemoteClient {
            hub: Arc::clone(&self.hub),
            agent: self.agent.clone(),
            target: target.to_owned(),
            metadata: ChannelMetadata { role, principal },
            timeout: Duration::from_secs(2),
        }
    }
}

/// A Modbus client of a device behind an agent, with the same requests as
/// the local [`crate::modbus::Client`] (see [`Requests`]).
///
/// Nothing is lost or duplicated: when the tunnel breaks, requests in flight
/// fail at once; a read is retried once after the agent reconnects within
/// its timeout; a request that changes the device is never re-sent, and
/// reports [`ClientError::OutcomeUnknown`] when it may have reached it.
#[derive(Debug, Clone)]
pub struct RemoteClient {
    hub: Arc<HubInner>,
    agent: AgentId,
    target: String,
    metadata: ChannelMetadata,
    timeout: Duration,
}

impl RemoteClient {
    pub(super) fn new(hub: Arc<HubInner>, agent: AgentId, target: &str, metadata: ChannelMetadata) -> Self {
        RemoteClient {
            hub,
            agent,
            target: target.to_owned(),
            metadata,
            timeout: Duration::from_secs(2),
        }
    }

    /// Sets the default timeout of requests (2 s), tunnel and device included.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.clamp(Duration::from_millis(1), MAX_BUDGET);
        self
    }

    async fn send(
        &self,
        unit: UnitId,
        expect: Expectation,
        pdu: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        let deadline = Instant::now() + timeout.min(MAX_BUDGET);
        let changes = Request::decode(&pdu).map(|r| r.is_write()).unwrap_or(true);
        let mut link = self
            .hub
            .link(&self.agent)
            .ok_or_else(|| ClientError::NoAgent(self.agent.to_string()))?;
        // Marked as a retry only when an earlier attempt may have reached
        // the agent (then it is a read: a write is never re-sent).
        let mut maybe_sent = false;
        for attempt in 0..2 {
            let job = Job {
                unit,
                expect,
                pdu: &pdu,
                deadline,
                changes,
            };
            match self.attempt(&link, &job, maybe_sent).await {
                Err(Attempt::Failed(e)) => return Err(e),
                Ok(outcome) => return outcome,
                Err(Attempt::Broken { sent }) => {
                    if changes && sent {
                        return Err(ClientError::OutcomeUnknown);
                    }
                    maybe_sent |= sent;
                    if attempt == 1 {
                        break;
                    }
                    // Wait for the agent to come back, then try once more.
                    match self.hub.wait_for_new_link(&self.agent, &link, deadline).await {
                        Some(next) => link = next,
                        None => break,
                    }
                }
            }
        }
        Err(ClientError::NoAgent(self.agent.to_string()))
    }

    async fn attempt(
        &self,
        link: &Arc<Link>,
        job: &Job<'_>,
        retry: bool,
    ) -> Result<Result<Bytes, ClientError>, Attempt> {
        let Job {
            unit,
            expect,
            pdu,
            deadline,
            changes,
        } = *job;
        let channel = tokio::time::timeout_at(deadline, link.channel(&self.target, &self.metadata))
            .await
            .map_err(|_| Attempt::Failed(ClientError::Expired))?
            .map_err(|e| match e {
                ClientError::NoAgent(_) => Attempt::Broken { sent: false },
                e => Attempt::Failed(e),
            })?;
        let budget = deadline.saturating_duration_since(Instant::now());
        let mut request = TunnelRequest::new(unit, budget, pdu).map_err(|_| Attempt::Failed(ClientError::Expired))?;
        if retry {
            request = request.retried();
        }
        let mut payload = Vec::with_capacity(request.encoded_len());
        request.encode(&mut payload);
        let (correlation, outcome) = link
            .send(channel, Bytes::from(payload), deadline)
            .await
            .map_err(|e| match e {
                ClientError::Expired => Attempt::Failed(e),
                _ => Attempt::Broken { sent: false },
            })?;
        // The agent answers within the budget; allow the trip back.
        let grace = Duration::from_millis(500).min(budget / 2 + Duration::from_millis(50));
        let bytes = match tokio::time::timeout_at(deadline + grace, outcome).await {
            Ok(Ok(Ok(bytes))) => bytes,
            Ok(Ok(Err(_))) | Ok(Err(_)) => return Err(Attempt::Broken { sent: true }),
            Err(_) => {
                link.forget(channel, correlation);
                return Ok(Err(if changes {
                    ClientError::OutcomeUnknown
                } else {
                    ClientError::Timeout
                }));
            }
        };
        Ok(match Outcome::decode(&bytes) {
            Ok(Outcome::Answered(answer)) => match expect.check(answer) {
                Ok(_) => Ok(bytes.slice_ref(answer)),
                Err(e) => Err(ClientError::InvalidResponse(e)),
            },
            Ok(Outcome::Denied(code)) => Err(ClientError::Denied(code)),
            Ok(Outcome::NoAnswer) if changes => Err(ClientError::OutcomeUnknown),
            Ok(Outcome::NoAnswer) => Err(ClientError::Timeout),
            Ok(Outcome::Unreachable) => Err(ClientError::Unreachable),
            Ok(Outcome::Busy) => Err(ClientError::Busy),
            Ok(Outcome::Expired) => Err(ClientError::Expired),
            Ok(Outcome::Malformed(code)) => Err(ClientError::Exception(code)),
            // An outcome that breaks the profile: as good as none.
            Err(_) if changes => Err(ClientError::OutcomeUnknown),
            Err(_) => Err(ClientError::Timeout),
        })
    }
}

/// One request, as each attempt sends it.
#[derive(Clone, Copy)]
struct Job<'a> {
    unit: UnitId,
    expect: Expectation,
    pdu: &'a [u8],
    deadline: Instant,
    /// Whether the request changes the device (may never be re-sent).
    changes: bool,
}

/// Why one attempt ended without an outcome.
enum Attempt {
    /// A final error.
    Failed(ClientError),
    /// The session or channel broke; `sent` says whether the request had left.
    Broken { sent: bool },
}

impl Requests for RemoteClient {
    fn exchange(
        &self,
        unit: UnitId,
        expect: Expectation,
        pdu: Bytes,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Bytes, ClientError>> + Send {
        self.send(unit, expect, pdu, timeout)
    }

    fn default_timeout(&self) -> Duration {
        self.timeout
    }
}
