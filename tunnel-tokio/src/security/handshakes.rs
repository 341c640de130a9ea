//! Pre-authentication bounds of a Modbus/TCP Security listener, shared by
//! the secure gateway and [`super::SecureServer`]: TLS handshakes in
//! progress are capped overall and per source address (the oldest makes
//! room), a handshake has a deadline, and failed handshakes slow their
//! address to one at a time. The rules are the hub's [`Gate`], with time
//! passed in; this file only keeps the tasks it lets in.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::AbortHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::role::{role_from_certificate, CertifiedRole, RoleError};
use super::tls::SecureServerTls;
use crate::hub::gatekeeper::{Gatekeeper, Place};
use crate::hub::limits::{Gate, GateConfig};

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

/// The handshakes of one listener.
#[derive(Debug, Clone)]
pub(crate) struct Handshakes {
    keeper: Arc<Gatekeeper>,
    /// Swapped by a reload; each handshake takes the one current at its
    /// start, and is checked again by a newer one current at its end.
    tls: Arc<RwLock<SecureServerTls>>,
    timeout: Duration,
}

impl Handshakes {
    pub(crate) fn new(tls: SecureServerTls, limits: HandshakeLimits) -> Self {
        let gate = Gate::new(GateConfig {
            max_handshakes: limits.max,
            per_source: limits.per_source,
            failure_limit: limits.failures.0,
            window: limits.failures.1,
            // A full table makes room at once: Modbus clients do not
            // arrive by the thousand after a restart, as agents do.
            grace: Duration::ZERO,
        });
        Handshakes {
            keeper: Gatekeeper::new(gate),
            tls: Arc::new(RwLock::new(tls)),
            timeout: limits.timeout,
        }
    }

    /// Decides on a connection from `peer`: `Err` (why) to close it now,
    /// or its place, with `spawn` called to start its task (see
    /// [`Gatekeeper::admit`]).
    pub(crate) fn admit(
        &self,
        peer: SocketAddr,
        spawn: impl FnOnce(Place) -> AbortHandle,
    ) -> Result<AbortHandle, &'static str> {
        self.keeper.admit(Instant::now(), peer.ip(), spawn).map(|a| a.task)
    }

    /// The TLS settings new handshakes use.
    fn current(&self) -> SecureServerTls {
        self.tls.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// New handshakes use `tls` from now on; one in progress is checked
    /// against it when it ends.
    pub(crate) fn set_tls(&self, tls: SecureServerTls) {
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = tls;
    }

    /// Runs the TLS handshake of the connection holding `place`, within
    /// the deadline, and reads the client's role. The client's chain is
    /// put in `chain` (where a reload looks for it) before it is checked
    /// against settings that changed during the handshake, so a reload
    /// either sees the chain or the handshake sees the reload. The place
    /// is given back either way; a failure counts against the source
    /// address.
    pub(crate) async fn accept<S>(
        &self,
        place: Place,
        stream: S,
        chain: &OnceLock<Vec<CertificateDer<'static>>>,
    ) -> Result<(TlsStream<S>, CertifiedRole), String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let started = self.current();
        let result = match tokio::time::timeout(self.timeout, TlsAcceptor::from(started.config()).accept(stream)).await
        {
            Err(_) => Err("TLS handshake timed out".to_owned()),
            Ok(Err(e)) => Err(tls_failure(&e)),
            Ok(Ok(tls)) => {
                let certs: Vec<CertificateDer<'static>> = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.clone().into_owned())
                    .collect();
                let chain = chain.get_or_init(|| certs);
                let now = self.current();
                // The verifier has checked the chain and the role already,
                // unless the settings changed since.
                let recheck = if Arc::ptr_eq(&now.config(), &started.config()) {
                    Ok(())
                } else {
                    now.verify_client(chain)
                        .map_err(|e| format!("certificate refused by reloaded settings: {e}"))
                };
                recheck
                    .and_then(|()| chain.first().ok_or_else(|| "no client certificate".to_owned()))
                    .and_then(|cert| role_from_certificate(cert).map_err(|e| e.to_string()))
                    .map(|role| (tls, role))
            }
        };
        if result.is_err() {
            place.failed_anonymous(Instant::now());
        } else {
            drop(place);
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
