//! Pre-authentication bounds of a Modbus/TCP Security listener, shared by
//! the secure gateway and [`super::SecureServer`]: TLS handshakes in
//! progress are capped overall and per source address (the oldest makes
//! room), a handshake has a deadline, and failed handshakes slow their
//! address to one at a time. The rules are the hub's [`Gate`], with time
//! passed in; this file only keeps the tasks it lets in.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::AbortHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::role::{role_from_certificate, CertifiedRole, RoleError};
use crate::hub::limits::{Admit, Gate, GateConfig, Ticket};

/// Limits on TLS handshakes in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HandshakeLimits {
    /// How long a client has to finish TLS.
    pub(crate) timeout: Duration,
    /// Handshakes in progress at once.
    pub(crate) max: usize,
    /// Handshakes in progress at once from one address.
    pub(crate) per_source: usize,
    /// Failed handshakes per address per window before it is slowed.
    pub(crate) failures: (u32, Duration),
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            timeout: Duration::from_secs(3),
            max: 64,
            per_source: 8,
            failures: (10, Duration::from_secs(60)),
        }
    }
}

#[derive(Debug)]
struct State {
    gate: Gate,
    tasks: HashMap<Ticket, AbortHandle>,
}

/// The handshakes of one listener.
#[derive(Debug, Clone)]
pub(crate) struct Handshakes {
    state: Arc<Mutex<State>>,
    config: Arc<ServerConfig>,
    timeout: Duration,
}

/// A handshake's place, given back when it is dropped.
#[derive(Debug)]
pub(crate) struct Place {
    state: Arc<Mutex<State>>,
    ticket: Ticket,
    source: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.gate.finish(self.ticket);
        state.tasks.remove(&self.ticket);
    }
}

impl Handshakes {
    pub(crate) fn new(config: Arc<ServerConfig>, limits: HandshakeLimits) -> Self {
        let gate = Gate::new(GateConfig {
            max_handshakes: limits.max,
            per_source: limits.per_source,
            failure_limit: limits.failures.0,
            window: limits.failures.1,
        });
        Handshakes {
            state: Arc::new(Mutex::new(State {
                gate,
                tasks: HashMap::new(),
            })),
            config,
            timeout: limits.timeout,
        }
    }

    /// Decides on a connection from `peer`: `Err` (why) to close it now,
    /// or its place, with `spawn` called (under the gate's lock, so an
    /// evicted handshake cannot slip past) to start its task.
    pub(crate) fn admit(
        &self,
        peer: SocketAddr,
        spawn: impl FnOnce(Place) -> AbortHandle,
    ) -> Result<AbortHandle, &'static str> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (ticket, evict) = match state.gate.admit(Instant::now(), peer.ip()) {
            Admit::Go { ticket, evict } => (ticket, evict),
            Admit::Refuse(why) => return Err(why),
        };
        for old in evict {
            if let Some(task) = state.tasks.remove(&old) {
                task.abort();
            }
        }
        let place = Place {
            state: Arc::clone(&self.state),
            ticket,
            source: peer.ip(),
        };
        let task = spawn(place);
        state.tasks.insert(ticket, task.clone());
        Ok(task)
    }

    /// Runs the TLS handshake of the connection holding `place`, within
    /// the deadline, and reads the client's role. The place is given back
    /// either way; a failure counts against the source address.
    pub(crate) async fn accept<S>(&self, place: Place, stream: S) -> Result<(TlsStream<S>, CertifiedRole), String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let result = match tokio::time::timeout(
            self.timeout,
            TlsAcceptor::from(Arc::clone(&self.config)).accept(stream),
        )
        .await
        {
            Err(_) => Err("TLS handshake timed out".to_owned()),
            Ok(Err(e)) => Err(tls_failure(&e)),
            Ok(Ok(tls)) => {
                // The verifier has checked the chain and the role already.
                let role = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .ok_or_else(|| "no client certificate".to_owned())
                    .and_then(|cert| role_from_certificate(cert).map_err(|e| e.to_string()));
                role.map(|role| (tls, role))
            }
        };
        let source = place.source;
        let state = Arc::clone(&place.state);
        drop(place);
        if result.is_err() {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            state.gate.failed_anonymous(Instant::now(), source);
        }
        result
    }
}

/// A failed handshake in words: the role rule it broke, if that is why.
fn tls_failure(e: &std::io::Error) -> String {
    let role = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|tls| match tls {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<RoleError>()
            }
            _ => None,
        });
    match role {
        Some(role) => format!("client certificate refused: {role}"),
        None => format!("TLS: {e}"),
    }
}
