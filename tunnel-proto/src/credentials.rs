//! How the hub finds an agent's secret: a trait the hub's owner implements
//! over its own store (file, database, vault), and an in-memory one.

use std::collections::HashMap;

use crate::id::{AgentId, Secret};

/// What the store knows about an agent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credential {
    /// The agent may connect, proving this secret.
    Active(Secret),
    /// The agent is known but may no longer connect.
    Revoked,
    /// No such agent.
    Unknown,
}

/// Looks up agents' secrets for the hub.
///
/// Called once per handshake, after the agent has sent its proof, so an
/// unknown or revoked agent costs the hub the same work as a known one and
/// learns nothing from the timing or the wire. Implementations must answer
/// quickly (keep an in-memory index; the session waits on the call).
pub trait CredentialStore: Send + Sync {
    /// The credential of `agent`.
    fn lookup(&self, agent: &AgentId) -> Credential;
}

/// A credential store held in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryCredentials {
    agents: HashMap<AgentId, Credential>,
}

impl MemoryCredentials {
    /// An empty store: every agent is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an agent's secret.
    pub fn insert(&mut self, agent: AgentId, secret: Secret) -> &mut Self {
        self.agents.insert(agent, Credential::Active(secret));
        self
    }

    /// Marks an agent revoked: its secret is forgotten and it is refused.
    pub fn revoke(&mut self, agent: AgentId) -> &mut Self {
        self.agents.insert(agent, Credential::Revoked);
        self
    }
}

impl CredentialStore for MemoryCredentials {
    fn lookup(&self, agent: &AgentId) -> Credential {
        self.agents.get(agent).cloned().unwrap_or(Credential::Unknown)
    }
}
