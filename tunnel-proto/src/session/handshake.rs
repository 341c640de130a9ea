//! The handshake's state and its cryptography.
//!
//! ```text
//! agent                                         hub
//!   HELLO(versions, limits, nonce_a, agent id) -->
//!          <-- CHALLENGE(version, limits, nonce_h, session id)
//!   PROOF(HMAC(secret, "agent" | binding | H(HELLO|CHALLENGE))) -->
//!          <-- CONFIRM(HMAC(secret, "hub" | binding | H(HELLO|CHALLENGE) | PROOF))
//! ```
//!
//! `H` is SHA-256 over the two frames exactly as sent, headers included;
//! `binding` is the TLS exporter value. Proofs are checked in constant time.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::credentials::CredentialStore;
use crate::frame::{Hello, MAC_LEN};
use crate::id::{AgentId, ChannelBinding, Random, Secret, SessionId};

type HmacSha256 = Hmac<Sha256>;

const AGENT_LABEL: &[u8] = b"outpost-tunnel v1 agent proof";
const HUB_LABEL: &[u8] = b"outpost-tunnel v1 hub confirm";
const NONCE_LABEL: &[u8] = b"outpost-tunnel v1 hub nonce";
const SESSION_LABEL: &[u8] = b"outpost-tunnel v1 session id";
/// Used in place of the secret of an unknown or revoked agent, so that the
/// hub does the same work for every proof.
const DUMMY_SECRET: &[u8; 32] = &[0x5a; 32];

/// What an agent needs to authenticate: its id and secret.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    pub(crate) id: AgentId,
    pub(crate) secret: Secret,
}

impl AgentIdentity {
    /// The agent's id and the secret the hub's credential store holds for it.
    pub fn new(id: AgentId, secret: Secret) -> Self {
        AgentIdentity { id, secret }
    }

    /// The agent's id.
    pub fn id(&self) -> &AgentId {
        &self.id
    }
}

/// What the connection under a new session contributes: its TLS channel
/// binding, fresh randomness, and (hub side) the agent id its client
/// certificate names.
#[derive(Debug, Clone)]
pub struct Start {
    /// The TLS exporter value of the connection.
    pub binding: ChannelBinding,
    /// Fresh random bytes for nonces and the session id.
    pub random: Random,
    /// (Hub) the agent id the TLS layer authenticated from the client
    /// certificate; the agent must claim the same id. `None` to skip the check.
    pub certified_agent: Option<AgentId>,
}

impl Start {
    /// A start without a certified agent id.
    pub fn new(binding: ChannelBinding, random: Random) -> Self {
        Start {
            binding,
            random,
            certified_agent: None,
        }
    }

    /// Requires the agent to claim `agent` (hub side).
    pub fn certified_agent(mut self, agent: AgentId) -> Self {
        self.certified_agent = Some(agent);
        self
    }
}

pub(crate) enum Handshake {
    /// Agent: HELLO sent, waiting for CHALLENGE.
    AgentHello {
        identity: AgentIdentity,
        hello: Hello,
        transcript: Sha256,
    },
    /// Agent: PROOF sent, waiting for CONFIRM.
    AgentProof {
        identity: AgentIdentity,
        transcript: [u8; 32],
        proof: [u8; MAC_LEN],
        session: SessionId,
        version: u16,
    },
    /// Hub: waiting for HELLO.
    HubHello {
        store: Arc<dyn CredentialStore>,
        random: Random,
    },
    /// Hub: CHALLENGE sent, waiting for PROOF.
    HubProof {
        store: Arc<dyn CredentialStore>,
        agent: AgentId,
        transcript: [u8; 32],
        session: SessionId,
        version: u16,
    },
}

pub(crate) fn transcript(parts: &[&[u8]]) -> Sha256 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h
}

pub(crate) fn finish(h: Sha256) -> [u8; 32] {
    h.finalize().into()
}

fn keyed(secret: &[u8], label: &[u8], binding: &ChannelBinding, transcript: &[u8; 32]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(label);
    mac.update(&[binding.as_bytes().len() as u8]);
    mac.update(binding.as_bytes());
    mac.update(transcript);
    mac
}

/// The agent's proof.
pub(crate) fn agent_proof(secret: &Secret, binding: &ChannelBinding, transcript: &[u8; 32]) -> [u8; MAC_LEN] {
    keyed(secret.expose(), AGENT_LABEL, binding, transcript)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks an agent's proof in constant time; with `None` (unknown or
/// revoked agent) does the same work and fails.
pub(crate) fn verify_agent_proof(
    secret: Option<&Secret>,
    binding: &ChannelBinding,
    transcript: &[u8; 32],
    proof: &[u8; MAC_LEN],
) -> bool {
    let key = secret.map_or(&DUMMY_SECRET[..], Secret::expose);
    let ok = keyed(key, AGENT_LABEL, binding, transcript).verify_slice(proof).is_ok();
    ok && secret.is_some()
}

fn hub_mac(secret: &Secret, binding: &ChannelBinding, transcript: &[u8; 32], proof: &[u8; MAC_LEN]) -> HmacSha256 {
    let mut mac = keyed(secret.expose(), HUB_LABEL, binding, transcript);
    mac.update(proof);
    mac
}

/// The hub's confirmation.
pub(crate) fn hub_confirm(
    secret: &Secret,
    binding: &ChannelBinding,
    transcript: &[u8; 32],
    proof: &[u8; MAC_LEN],
) -> [u8; MAC_LEN] {
    hub_mac(secret, binding, transcript, proof)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks the hub's confirmation in constant time.
pub(crate) fn verify_hub_confirm(
    secret: &Secret,
    binding: &ChannelBinding,
    transcript: &[u8; 32],
    proof: &[u8; MAC_LEN],
    confirm: &[u8; MAC_LEN],
) -> bool {
    hub_mac(secret, binding, transcript, proof)
        .verify_slice(confirm)
        .is_ok()
}

/// The hub's nonce and session id, derived from the caller's randomness
/// under distinct labels.
pub(crate) fn hub_nonce_and_session(random: &Random) -> ([u8; 32], SessionId) {
    let nonce: [u8; 32] = transcript(&[NONCE_LABEL, &random.0]).finalize().into();
    let sid: [u8; 32] = transcript(&[SESSION_LABEL, &random.0]).finalize().into();
    let mut session = [0; 16];
    session.copy_from_slice(&sid[..16]);
    (nonce, SessionId(session))
}

/// The highest version in both lists.
pub(crate) fn choose_version(ours: &[u16], theirs: &[u16]) -> Option<u16> {
    theirs.iter().copied().filter(|v| ours.contains(v)).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_depend_on_secret_binding_and_transcript() {
        let s1 = Secret::new(&[1; 32]).unwrap();
        let s2 = Secret::new(&[2; 32]).unwrap();
        let b1 = ChannelBinding::new(&[7; 32]).unwrap();
        let b2 = ChannelBinding::new(&[8; 32]).unwrap();
        let t1 = [3; 32];
        let t2 = [4; 32];
        let p = agent_proof(&s1, &b1, &t1);
        assert!(verify_agent_proof(Some(&s1), &b1, &t1, &p));
        assert!(!verify_agent_proof(Some(&s2), &b1, &t1, &p));
        assert!(!verify_agent_proof(Some(&s1), &b2, &t1, &p));
        assert!(!verify_agent_proof(Some(&s1), &b1, &t2, &p));
        assert!(!verify_agent_proof(None, &b1, &t1, &p));
        let c = hub_confirm(&s1, &b1, &t1, &p);
        assert_ne!(c, p, "the two directions use different labels");
        assert!(verify_hub_confirm(&s1, &b1, &t1, &p, &c));
        assert!(!verify_hub_confirm(&s2, &b1, &t1, &p, &c));
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let out: [u8; 32] = mac.finalize().into_bytes().into();
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn highest_common_version_wins() {
        assert_eq!(choose_version(&[1, 2], &[2, 1, 3]), Some(2));
        assert_eq!(choose_version(&[1], &[2, 3]), None);
    }
}
