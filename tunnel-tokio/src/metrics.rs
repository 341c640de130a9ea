//! Metrics through the [`metrics`] facade: nothing is recorded until the
//! program installs a recorder (the `outpost` command installs a
//! Prometheus exporter when its configuration names a `metrics` address);
//! an embedder may install any other.
//!
//! Counted as they happen (per event; handles are made when a hub or an
//! agent starts, so install the recorder before):
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `outpost_hub_rejected_total` | counter | `reason` (`limit`, `tls`, `identity`, `authentication`) | connections refused before a session |
//! | `outpost_hub_requests_total` | counter | `outcome` (`ok`, `exception`, `denied`, `no_agent`, `unreachable`, `busy`, `timeout`, `outcome_unknown`, `other`) | requests through the hub's API and gateways |
//! | `outpost_agent_requests_total` | counter | `outcome` (`ANSWERED`, `DENIED`, `NO_ANSWER`, `UNREACHABLE`, `BUSY`, `EXPIRED`, `MALFORMED`) | requests the agent received, by how they ended |
//! | `outpost_agent_denials_total` | counter | `rule` (`unit`, `unknown_role`, `function`, `address`, `file`, `fifo`) | requests the agent's policy refused |
//! | `outpost_agent_device_seconds` | histogram | `device` | time from sending a request to the device to its answer |
//!
//! Set from a snapshot when the program asks ([`record_hub`],
//! [`record_agent`], before each scrape): `outpost_hub_agents`,
//! `outpost_hub_channels`, `outpost_hub_handshakes` (gauges),
//! `outpost_hub_connections_total`, `outpost_hub_sessions_total`,
//! `outpost_hub_bytes_in_total`, `outpost_hub_bytes_out_total`,
//! `outpost_hub_cached_reads_total` (reads gateways answered from scanned
//! values); `outpost_agent_connected` (gauge),
//! `outpost_agent_connects_total`, `outpost_agent_sessions_total`,
//! `outpost_agent_bytes_in_total`, `outpost_agent_bytes_out_total`,
//! `outpost_agent_samples_dropped_total` (samples of scan groups dropped
//! because the buffer was full).

use metrics::{counter, gauge, Counter};

use crate::agent::AgentStats;
use crate::hub::HubStats;
use crate::modbus::ClientError;

/// Counters with one label from a fixed set, made once.
#[derive(Debug)]
pub(crate) struct Labelled {
    counters: Vec<(&'static str, Counter)>,
    other: Counter,
}

impl Labelled {
    fn new(name: &'static str, label: &'static str, values: &[&'static str]) -> Self {
        Labelled {
            counters: values.iter().map(|v| (*v, counter!(name, label => *v))).collect(),
            other: counter!(name, label => "other"),
        }
    }

    /// Adds one to the counter of `value` (`other` if it is not in the set).
    pub(crate) fn add(&self, value: &str) {
        match self.counters.iter().find(|(v, _)| *v == value) {
            Some((_, c)) => c.increment(1),
            None => self.other.increment(1),
        }
    }
}

/// The hub's counters.
#[derive(Debug)]
pub(crate) struct HubMeters {
    pub(crate) rejected: Labelled,
    pub(crate) requests: Labelled,
}

impl HubMeters {
    pub(crate) fn new() -> Self {
        HubMeters {
            rejected: Labelled::new(
                "outpost_hub_rejected_total",
                "reason",
                &["limit", "tls", "identity", "authentication"],
            ),
            requests: Labelled::new(
                "outpost_hub_requests_total",
                "outcome",
                &[
                    "ok",
                    "exception",
                    "denied",
                    "no_agent",
                    "unreachable",
                    "busy",
                    "timeout",
                    "outcome_unknown",
                ],
            ),
        }
    }

    /// Counts a request's result.
    pub(crate) fn request<T>(&self, result: &Result<T, ClientError>) {
        self.requests.add(match result {
            Ok(_) => "ok",
            Err(ClientError::Exception(_)) => "exception",
            Err(ClientError::Denied(_)) => "denied",
            Err(ClientError::NoAgent(_)) => "no_agent",
            Err(ClientError::Unreachable | ClientError::Refused(_)) => "unreachable",
            Err(ClientError::Busy | ClientError::Overloaded | ClientError::ChannelLimit) => "busy",
            Err(ClientError::Timeout | ClientError::Expired) => "timeout",
            Err(ClientError::OutcomeUnknown) => "outcome_unknown",
            Err(_) => "other",
        });
    }
}

/// The agent's counters.
#[derive(Debug)]
pub(crate) struct AgentMeters {
    pub(crate) outcomes: Labelled,
    pub(crate) denials: Labelled,
}

impl AgentMeters {
    pub(crate) fn new() -> Self {
        AgentMeters {
            outcomes: Labelled::new(
                "outpost_agent_requests_total",
                "outcome",
                &[
                    "ANSWERED",
                    "DENIED",
                    "NO_ANSWER",
                    "UNREACHABLE",
                    "BUSY",
                    "EXPIRED",
                    "MALFORMED",
                ],
            ),
            denials: Labelled::new(
                "outpost_agent_denials_total",
                "rule",
                &["unit", "unknown_role", "function", "address", "file", "fifo"],
            ),
        }
    }
}

/// Sets the hub's snapshot metrics from `stats`.
pub fn record_hub(stats: &HubStats) {
    gauge!("outpost_hub_agents").set(stats.agents as f64);
    gauge!("outpost_hub_channels").set(stats.channels as f64);
    gauge!("outpost_hub_handshakes").set(stats.handshakes as f64);
    counter!("outpost_hub_connections_total").absolute(stats.connections);
    counter!("outpost_hub_sessions_total").absolute(stats.sessions);
    counter!("outpost_hub_bytes_in_total").absolute(stats.bytes_in);
    counter!("outpost_hub_bytes_out_total").absolute(stats.bytes_out);
    counter!("outpost_hub_cached_reads_total").absolute(stats.cached_reads);
}

/// Sets the agent's snapshot metrics from `stats` and whether it is connected.
pub fn record_agent(stats: &AgentStats, connected: bool) {
    gauge!("outpost_agent_connected").set(if connected { 1.0 } else { 0.0 });
    counter!("outpost_agent_connects_total").absolute(stats.connects);
    counter!("outpost_agent_sessions_total").absolute(stats.sessions);
    counter!("outpost_agent_bytes_in_total").absolute(stats.bytes_in);
    counter!("outpost_agent_bytes_out_total").absolute(stats.bytes_out);
    counter!("outpost_agent_samples_dropped_total").absolute(stats.samples_dropped);
}
