//! The audit trail: every security decision as a `tracing` event on target
//! `outpost::audit`, with a stable set of fields an auditor (or a SIEM)
//! can rely on.
//!
//! Every audit event has a field `event` naming what happened:
//!
//! | `event` | level | where | fields besides `event` |
//! |---|---|---|---|
//! | `agent.rejected` | warn | hub | `peer`, `reason` |
//! | `agent.authenticated` | info | hub | `agent`, `peer` |
//! | `agent.superseded` | warn | hub | `agent`, `old_peer`, `new_peer` |
//! | `agent.session_ended` | info | hub | `agent`, `peer`, `reason` |
//! | `agent.revoked` | warn | hub | `agent`, `peer`, `reason` |
//! | `hub.reloaded` | info | hub | `closed` |
//! | `credentials.reloaded` | info | hub | `path` |
//! | `gateway.listening` | info | hub | `address`, `role`, `security` |
//! | `gateway.accepted` | info | hub (secure gateway) | `gateway`, `peer`, `role`, `subject` |
//! | `gateway.rejected` | warn | hub (secure gateway) | `gateway`, `peer`, `reason` (TLS, or the certificate's role) |
//! | `gateway.revoked` | warn | hub (secure gateway) | `gateway`, `peer`, `reason` (a reload found its certificate no longer verifies) |
//! | `gateway.reloaded` | info | hub (secure gateway) | `gateway`, `closed` |
//! | `gateway.refused` | warn | hub | `gateway`, `peer`, `role`, `unit`, `function`, `exception`, `reason` |
//! | `request.denied` | warn | hub (gateway policy), secure server | `peer`, `role`, `principal`, `unit`, `function`, `start`, `quantity`, `rule`, `exception` |
//! | `secure.listening` | info | secure server | `address` |
//! | `secure.accepted` | info | secure server | `peer`, `role`, `subject` |
//! | `secure.rejected` | warn | secure server | `peer`, `reason` |
//! | `session.established` | info | agent | `agent`, `hub` |
//! | `policy.loaded` | info | agent | `agent`, `devices`, `roles` |
//! | `channel.refused` | warn | agent | `agent`, `channel`, `device`, `reason` |
//! | `channel.reset` | warn | agent | `agent`, `channel`, `device`, `code` |
//! | `request.allowed` | info | agent | `agent`, `role`, `principal`, `device`, `unit`, `function`, `start`, `quantity`, `kind` (`write`, `device_control`, `broadcast`) |
//! | `request.denied` | warn | agent | `agent`, `hub`, `role`, `principal`, `device`, `unit`, `function`, `start`, `quantity`, `rule` |
//! | `request.refused` | warn | agent | `agent`, `role`, `principal`, `device`, `unit`, `function`, `reason` |
//! | `limit` | warn | both | `limit`, `peer` or `agent`, and what hit it |
//! | `summary` | warn | both | `source`, `kind`, `suppressed`, `window_s` |
//!
//! `function` is the function code as a number (0 when a request did not
//! decode as far as its function). Reads that are allowed are not audit
//! events (they are counted).
//! Repeated refusals from one source are summarised: the first
//! [`BURST`] in a minute are logged one by one, the rest counted and
//! reported in one `summary` event when the minute is over, so a client
//! sending junk cannot flood the trail.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use outpost_modbus_core::Request;

/// Refusals from one source logged one by one per window.
pub const BURST: u32 = 5;
/// The summary window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Sources remembered at most; past it the oldest windows are summarised early.
const MAX_SOURCES: usize = 10_000;

/// A source's refusals that were counted, not logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Suppressed {
    pub(crate) source: String,
    pub(crate) count: u32,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    seen: u32,
}

/// Decides which refusals are logged and which are summarised. Time is
/// passed in.
#[derive(Debug, Default)]
pub(crate) struct Summarizer {
    sources: HashMap<String, Window>,
}

impl Summarizer {
    /// A refusal from `source`: whether to log it one by one, and the
    /// summaries of windows that have ended (to log now).
    pub(crate) fn note(&mut self, now: Instant, source: &str) -> (bool, Vec<Suppressed>) {
        let mut done = Vec::new();
        self.sources.retain(|s, w| {
            let open = now.duration_since(w.start) < WINDOW;
            if !open && w.seen > BURST {
                done.push(Suppressed {
                    source: s.clone(),
                    count: w.seen - BURST,
                });
            }
            open
        });
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(source) {
            if let Some(oldest) = self.sources.iter().min_by_key(|(_, w)| w.start).map(|(s, _)| s.clone()) {
                if let Some(w) = self.sources.remove(&oldest) {
                    if w.seen > BURST {
                        done.push(Suppressed {
                            source: oldest,
                            count: w.seen - BURST,
                        });
                    }
                }
            }
        }
        let window = self
            .sources
            .entry(source.to_owned())
            .or_insert(Window { start: now, seen: 0 });
        window.seen = window.seen.saturating_add(1);
        (window.seen <= BURST, done)
    }
}

/// A summarizer shared by tasks, logging its summaries as `summary` events.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    summarizer: std::sync::Mutex<Summarizer>,
}

impl Trail {
    /// Whether to log this refusal from `source` one by one; summaries of
    /// ended windows are logged here.
    pub(crate) fn admit(&self, kind: &'static str, source: &str) -> bool {
        let (log, done) = self
            .summarizer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note(Instant::now(), source);
        for s in done {
            tracing::warn!(
                target: "outpost::audit",
                event = "summary",
                source = %s.source,
                kind,
                suppressed = s.count,
                window_s = WINDOW.as_secs(),
                "more refusals from one source than were logged one by one"
            );
        }
        log
    }
}

/// The addresses a request touches in a table (the written ones for a
/// read-write), if it touches one.
pub(crate) fn touched_span(request: &Request<'_>) -> Option<(u16, u16)> {
    Some(match request {
        Request::ReadCoils(r) | Request::ReadDiscreteInputs(r) => (r.start(), r.quantity()),
        Request::ReadHoldingRegisters(r) | Request::ReadInputRegisters(r) => (r.start(), r.quantity()),
        Request::ReadFifoQueue { address } => (*address, 1),
        Request::WriteSingleCoil { address, .. }
        | Request::WriteSingleRegister { address, .. }
        | Request::MaskWriteRegister { address, .. } => (*address, 1),
        Request::WriteMultipleCoils(w) => (w.start(), w.quantity()),
        Request::WriteMultipleRegisters(w) => (w.start(), w.quantity()),
        Request::ReadWriteMultipleRegisters(rw) => (rw.write.start(), rw.write.quantity()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_logged_the_rest_summarised_when_the_window_ends() {
        let mut s = Summarizer::default();
        let t0 = Instant::now();
        let logged = (0..100).filter(|_| s.note(t0, "10.0.0.9").0).count();
        assert_eq!(logged, BURST as usize);
        // Another source is not held back by the first.
        assert!(s.note(t0, "10.0.0.7").0);
        let (log, done) = s.note(t0 + WINDOW, "10.0.0.7");
        assert!(log, "a new window");
        assert_eq!(
            done,
            [Suppressed {
                source: "10.0.0.9".into(),
                count: 100 - BURST
            }]
        );
    }

    #[test]
    fn memory_is_bounded() {
        let mut s = Summarizer::default();
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES + 10) {
            let _ = s.note(t0, &i.to_string());
        }
        assert!(s.sources.len() <= MAX_SOURCES);
    }
}
