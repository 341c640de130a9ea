//! One agent connection on the hub: TLS, the tunnel handshake, then the
//! session, all in one task. The session's driver hands its events
//! straight to the agent's [`Line`] and takes the line's commands straight
//! from it: no queue and no task between them, so an answer reaches its
//! caller with one hand-off and an idle agent costs one small task.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use outpost_tunnel_proto::{AgentId, Random, Session, SessionError, Start};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;
use tracing::{info, warn};

use super::gatekeeper::Place;
use super::line::Line;
use super::{HubEvent, HubInner};
use crate::counted::Counted;
use crate::driver::{closer, drive_with, Closer, DriverEvent, Ended, Port, Turn};
use crate::tls::{agent_id_from_certificate, channel_binding, provider};

/// One agent connection, until it ends.
///
/// The TLS handshake runs in a boxed future of its own: its state (a TLS
/// stream being accepted) would otherwise size this task for the
/// session's whole life, on a hub that keeps thousands of idle ones.
pub(super) async fn connection(inner: Arc<HubInner>, tcp: TcpStream, peer: SocketAddr, pass: Place) {
    let Some(driving) = Box::pin(handshake(Arc::clone(&inner), tcp, peer, pass)).await else {
        return;
    };
    let (ended, port) = driving.await;
    port.ended(ended);
}

/// TLS, then the start of the tunnel session: the future that drives it,
/// or `None` when TLS failed or named no acceptable agent (reported).
async fn handshake(
    inner: Arc<HubInner>,
    tcp: TcpStream,
    peer: SocketAddr,
    pass: Place,
) -> Option<impl std::future::Future<Output = (Ended, HubPort)> + Send> {
    let _ = tcp.set_nodelay(true);
    let started = tokio::time::Instant::now();
    let deadline = started + inner.handshake_timeout;
    let tls_deadline = deadline.min(started + inner.tls_timeout);
    let acceptor = tokio_rustls::TlsAcceptor::from(inner.tls.read().unwrap_or_else(|p| p.into_inner()).config());
    let tls = match tokio::time::timeout_at(tls_deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            inner.reject_anonymous(peer, format!("TLS: {e}"));
            return None;
        }
        Err(_) => {
            inner.reject_anonymous(peer, "TLS handshake timed out".into());
            return None;
        }
    };
    let (_, conn) = tls.get_ref();
    let Some(cert) = conn.peer_certificates().and_then(|c| c.first()) else {
        inner.reject_anonymous(peer, "no client certificate".into());
        return None;
    };
    let certified = match agent_id_from_certificate(cert) {
        Ok(id) => id,
        Err(e) => {
            inner.reject_anonymous(peer, e.to_string());
            return None;
        }
    };
    // Kept with the session, so a reload can check it against new CRLs.
    let chain: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect();
    if let Err(reason) = inner.gatekeeper.with_gate(|g| g.identified(Instant::now(), &certified)) {
        inner.reject(peer, "identity", format!("{reason} (certificate names {certified})"));
        return None;
    }
    let binding = match channel_binding(conn) {
        Ok(b) => b,
        Err(e) => {
            inner.reject(peer, "tls", e.to_string());
            return None;
        }
    };
    let mut random = [0u8; 32];
    if provider().secure_random.fill(&mut random).is_err() {
        inner.reject(peer, "tls", "no randomness".into());
        return None;
    }
    let mut config = inner.config.clone();
    config.handshake_timeout(deadline.saturating_duration_since(tokio::time::Instant::now()));
    let session = Session::hub(
        config,
        Arc::clone(&inner.credentials.0),
        Start::new(binding, Random(random)).certified_agent(certified.clone()),
        Instant::now(),
    );
    let (closer, close) = closer();
    let io = Counted::new(tls, Arc::clone(&inner.counters.traffic));
    let port = HubPort {
        inner,
        peer,
        certified,
        pass: Some(pass),
        closer,
        chain,
        attached: None,
    };
    Some(drive_with(io, session, port, close))
}

/// The hub's side of one agent's session, as its driver sees it: until
/// the tunnel handshake completes, a pass at the gate; then the agent's
/// line.
pub(super) struct HubPort {
    inner: Arc<HubInner>,
    peer: SocketAddr,
    /// The agent its certificate names.
    certified: AgentId,
    /// The handshake's place at the gate, given back once it completes.
    pass: Option<Place>,
    closer: Closer,
    /// The certificate chain, handed to the line once attached.
    chain: Vec<CertificateDer<'static>>,
    attached: Option<Attached>,
}

/// The line a session carries.
struct Attached {
    agent: AgentId,
    /// Tells the line the session is gone however the port ends (an
    /// aborted task included).
    detach: Detach,
}

impl HubPort {
    /// The session is authenticated: it becomes its agent's carrier.
    fn attach(&mut self, agent: AgentId) {
        let inner = &self.inner;
        let peer = self.peer;
        self.pass = None;
        inner.gatekeeper.with_gate(|g| g.authenticated(&agent));
        inner.counters.sessions.fetch_add(1, Relaxed);
        let line = inner.line_or_new(&agent);
        let chain = std::mem::take(&mut self.chain);
        let (generation, superseded) = line.attach(peer, self.closer.clone(), chain);
        info!(target: "outpost::audit", event = "agent.authenticated", %agent, %peer, "agent authenticated; session up");
        inner.emit(HubEvent::Connected {
            agent: agent.clone(),
            peer,
        });
        if let Some(old) = superseded {
            warn!(target: "outpost::audit", event = "agent.superseded", %agent, old_peer = %old.peer, new_peer = %peer, "agent session superseded by a newer one");
            inner.emit(HubEvent::Superseded {
                agent: agent.clone(),
                old_peer: old.peer,
            });
        }
        inner.changed.send_modify(|n| *n += 1);
        self.attached = Some(Attached {
            agent,
            detach: Detach { line, generation },
        });
    }

    /// The session ended: reported, and its line told.
    fn ended(mut self, ended: Ended) {
        let inner = Arc::clone(&self.inner);
        let peer = self.peer;
        let Some(Attached { agent, detach }) = self.attached.take() else {
            self.pass = None;
            let certified = &self.certified;
            let reason = match &ended {
                Ended::Session(SessionError::Rejected(r)) => format!("authentication failed: {r}"),
                other => format!("handshake did not complete: {other}"),
            };
            inner
                .gatekeeper
                .with_gate(|g| g.failed_as(Instant::now(), certified.clone()));
            inner.reject(
                peer,
                "authentication",
                format!("{reason} (certificate names {certified})"),
            );
            return;
        };
        let line = Arc::clone(&detach.line);
        drop(detach);
        forget_if_unused(&inner, &line);
        inner.changed.send_modify(|n| *n += 1);
        let reason = match &ended {
            // The agent's words (untrusted, shown escaped): why it closed.
            Ended::Session(SessionError::Remote { reason: words, .. }) if !words.is_empty() => {
                format!("{ended}: {}", String::from_utf8_lossy(words).escape_debug())
            }
            _ => ended.to_string(),
        };
        info!(target: "outpost::audit", event = "agent.session_ended", %agent, %peer, %reason, "agent session ended");
        inner.emit(HubEvent::Disconnected { agent, reason });
    }
}

impl Port for HubPort {
    fn try_deliver(&mut self, event: &mut Option<DriverEvent>) -> Option<Turn> {
        // The line takes events at once: the requester's state is bounded
        // by its own limits.
        let event = event.take()?;
        match (&self.attached, event) {
            (None, DriverEvent::Established(agent)) => self.attach(agent),
            (Some(attached), event) => {
                let Detach { line, generation } = &attached.detach;
                line.on_event(*generation, event);
            }
            // Nothing comes before the handshake completes.
            (None, _) => {}
        }
        Some(Turn::Delivered)
    }

    fn turn<'a>(
        &'a mut self,
        event: &'a mut Option<DriverEvent>,
        commands: bool,
    ) -> impl std::future::Future<Output = Turn> + Send + 'a {
        std::future::poll_fn(move |cx| {
            if let Some(turn) = self.try_deliver(event) {
                return std::task::Poll::Ready(turn);
            }
            match &self.attached {
                Some(attached) if commands => {
                    let Detach { line, generation } = &attached.detach;
                    line.poll_command(*generation, cx).map(Turn::Command)
                }
                // Before the handshake completes the line has nothing to send.
                _ => std::task::Poll::Pending,
            }
        })
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.attached.as_ref().and_then(|a| a.detach.line.poll_timeout())
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(attached) = &self.attached {
            attached.detach.line.handle_timeout(now);
        }
    }
}

/// Tells a line its session is gone when dropped.
struct Detach {
    line: Arc<Line>,
    generation: u64,
}

impl Drop for Detach {
    fn drop(&mut self) {
        self.line.detach(self.generation);
    }
}

/// Drops a line that no session and no request needs any more.
fn forget_if_unused(inner: &HubInner, line: &Arc<Line>) {
    let mut registry = inner.registry.lock().unwrap_or_else(|p| p.into_inner());
    if line.is_unused() && registry.get(&line.agent).is_some_and(|l| Arc::ptr_eq(l, line)) {
        registry.remove(&line.agent);
        tracing::debug!(agent = %line.agent, "agent forgotten");
    }
}

#[cfg(test)]
mod task_size {
    //! A hub keeps one task for every agent, idle ones included: its
    //! future is sized by the largest state it may be in, so a
    //! handshake's state or a stream kept inline would cost every idle
    //! agent for its whole session.

    /// What `f` returns (a future), in bytes, without making one.
    fn returned<A, B, C, D, R>(_: fn(A, B, C, D) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn an_idle_agent_costs_one_small_task_on_the_hub() {
        let connection = returned(super::connection as fn(_, _, _, _) -> _);
        assert!(connection <= 1280, "the connection task holds {connection} bytes");
    }
}
