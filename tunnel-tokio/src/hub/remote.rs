//! The hub's Modbus client of a device behind an agent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use outpost_modbus_core::{Expectation, Request, UnitId};
use outpost_tunnel_proto::AgentId;
use std::time::Instant;

use super::HubInner;
use crate::binding::{ChannelMetadata, Principal, Role, MAX_BUDGET};
use crate::modbus::{ClientError, Requests};
use crate::profile::{Failure, Submit};

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
/// Nothing is lost or duplicated: when the tunnel breaks, a request that
/// changes the device and may have reached it fails at once with
/// [`ClientError::OutcomeUnknown`] and is never re-sent; a read is sent
/// again once, on a new channel or after the agent reconnects within its
/// timeout. Every client of the same agent, device and role (and
/// principal) shares one tunnel channel, opened on the first request and
/// closed when unused for a while.
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
        let result = self.send_once(unit, expect, pdu, timeout).await;
        self.hub.meters.request(&result);
        result
    }

    async fn send_once(
        &self,
        unit: UnitId,
        expect: Expectation,
        pdu: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        let no_agent = || ClientError::NoAgent(self.agent.to_string());
        let line = self.hub.line(&self.agent).ok_or_else(no_agent)?;
        let changes = Request::decode(&pdu).map(|r| r.is_write()).unwrap_or(true);
        let submit = Submit {
            target: self.target.clone(),
            metadata: self.metadata.clone(),
            unit,
            pdu,
            expect,
            changes,
            deadline: Instant::now() + timeout.min(MAX_BUDGET),
        };
        line.request(submit).await.map_err(|failure| match failure {
            Failure::NoAgent => no_agent(),
            failure => ClientError::from(failure),
        })
    }
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
