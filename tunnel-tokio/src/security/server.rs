//! A Modbus/TCP Security server over a user's data model: MBAP inside
//! mutually authenticated TLS, every request authorized for the client's
//! certified role before the model sees it.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_modbus_core::access::Denial;
use outpost_modbus_core::server::DataModel;
use outpost_modbus_core::{ExceptionCode, Request, UnitId};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use super::authorize::{Authorize, ClientIdentity};
use super::handshakes::{HandshakeLimits, Handshakes};
use super::tls::SecureServerTls;
use crate::audit::{touched_span, Trail};
use crate::modbus::server::serve_connection;
use crate::tasks::accept_loop;

/// Settings of a [`SecureServer`].
pub struct SecureServerBuilder {
    tls: SecureServerTls,
    authorize: Arc<dyn Authorize>,
    max_connections: usize,
    idle_timeout: Duration,
    limits: HandshakeLimits,
}

impl std::fmt::Debug for SecureServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureServerBuilder")
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl SecureServerBuilder {
    /// Clients connected at once, handshakes included (32); a connection
    /// past it is closed at once.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// A connection silent this long is closed (120 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a client has to finish TLS (3 s).
    pub fn tls_timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }

    /// TLS handshakes in progress at once (64) and from one source address
    /// (8); past either, the oldest unfinished one (of that source) makes
    /// room, so stalled handshakes cannot keep clients out.
    pub fn max_handshakes(mut self, total: usize, per_source: usize) -> Self {
        self.limits.max = total.max(1);
        self.limits.per_source = per_source.max(1);
        self
    }

    /// Failed handshakes allowed per source address per window (10 per
    /// 60 s); past it the address gets one handshake at a time.
    pub fn failure_limit(mut self, failures: u32, window: Duration) -> Self {
        self.limits.failures = (failures.max(1), window);
        self
    }

    /// Accepts clients on `listener` and answers them from `model` until
    /// the returned future is dropped (which also ends every connection).
    pub async fn serve<M>(self, listener: TcpListener, model: Arc<Mutex<M>>) -> io::Result<()>
    where
        M: DataModel + Send + 'static,
    {
        let local = listener.local_addr()?;
        info!(target: "outpost::audit", event = "secure.listening", address = %local, "modbus/tcp security server listening");
        let handshakes = Handshakes::new(self.tls, self.limits);
        let authorize = self.authorize;
        let trail = Arc::new(Trail::default());
        let (max, idle) = (self.max_connections, self.idle_timeout);
        accept_loop(listener, "modbus/tcp security server", |stream, peer, connections| {
            if connections.len() >= max {
                warn!(target: "outpost::audit", event = "limit", limit = "secure_clients", %peer, "modbus/tcp security server full; connection closed");
                return;
            }
            let _ = stream.set_nodelay(true);
            let (handshakes_, model, authorize, trail) =
                (handshakes.clone(), Arc::clone(&model), Arc::clone(&authorize), Arc::clone(&trail));
            let admitted = handshakes.admit(peer, |place| {
                connections.spawn(async move {
                    let chain = std::sync::OnceLock::new();
                    let (tls, certified) = match handshakes_.accept(place, stream, &chain).await {
                        Ok(accepted) => accepted,
                        Err(reason) => {
                            if trail.admit("secure.rejected", &peer.ip().to_string()) {
                                warn!(target: "outpost::audit", event = "secure.rejected", %peer, %reason, "modbus/tcp security client refused");
                            }
                            return;
                        }
                    };
                    let client = ClientIdentity {
                        role: certified.role,
                        subject: certified.subject,
                        peer,
                    };
                    info!(target: "outpost::audit", event = "secure.accepted", %peer, role = %client.role, subject = %client.subject, "modbus/tcp security client connected");
                    let gatekeeper = |unit: UnitId, request: &Request<'_>| {
                        authorize.authorize(&client, unit, request).inspect_err(|denial| audit_denial(&trail, &client, unit, request, denial, ExceptionCode::IllegalFunction))
                    };
                    if let Err(e) = serve_connection(tls, model, idle, Some(&gatekeeper)).await {
                        debug!(%peer, error = %e, "modbus/tcp security connection ended");
                    }
                })
            });
            if let Err(why) = admitted {
                warn!(target: "outpost::audit", event = "limit", limit = "secure_handshakes", %peer, reason = why, "connection closed before TLS");
            }
        })
        .await;
        Ok(())
    }
}

/// The audit event of a request the authorization hook denied.
pub(crate) fn audit_denial(
    trail: &Trail,
    client: &ClientIdentity,
    unit: UnitId,
    request: &Request<'_>,
    rule: &Denial,
    exception: ExceptionCode,
) {
    if !trail.admit("request.denied", &format!("{} as {}", client.subject, client.role)) {
        return;
    }
    let (start, quantity) = touched_span(request).unwrap_or((0, 0));
    warn!(
        target: "outpost::audit",
        event = "request.denied",
        peer = %client.peer,
        role = %client.role,
        principal = %client.subject,
        unit = unit.0,
        function = request.function().value(),
        start,
        quantity,
        %rule,
        exception = exception.value(),
        "request denied"
    );
}

/// A Modbus/TCP Security server (MB-TCP-Security v21): Modbus TCP framing
/// inside TLS 1.2 or 1.3 with AEAD suites, client certificates required
/// (chained to the configured CA, checked against its CRLs) and carrying
/// exactly one role; each request is given to an [`Authorize`] hook with
/// the client's role before the data model sees it, and a refusal is
/// answered with exception 01 and audited. The conventional port is
/// [`super::MBAPS_PORT`].
///
/// ```no_run
/// # async fn demo(tls: outpost_tunnel_tokio::security::SecureServerTls) -> std::io::Result<()> {
/// use std::sync::{Arc, Mutex};
/// use outpost_modbus_core::access::Policy;
/// use outpost_modbus_core::server::DataModel;
/// use outpost_tunnel_tokio::security::SecureServer;
///
/// struct Device;
/// impl DataModel for Device {}
///
/// let policy: Policy = toml::from_str(r#"
///     [roles.viewer]
///     units = "all"
///     functions = ["read"]
///     holding_registers = { read = ["0-99"] }
/// "#).expect("a valid policy");
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// SecureServer::builder(tls, policy).serve(listener, Arc::new(Mutex::new(Device))).await
/// # }
/// ```
#[derive(Debug)]
pub struct SecureServer;

impl SecureServer {
    /// Settings: the server's TLS and the hook that authorizes requests.
    pub fn builder(tls: SecureServerTls, authorize: impl Authorize) -> SecureServerBuilder {
        SecureServerBuilder {
            tls,
            authorize: Arc::new(authorize),
            max_connections: 32,
            idle_timeout: Duration::from_secs(120),
            limits: HandshakeLimits::default(),
        }
    }
}
