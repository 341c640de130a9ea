//! Bounds on pre-authentication work, as a machine with time passed in: the
//! hub asks it before each handshake and tells it how each one ends.
//!
//! The rules protect agents as much as the hub:
//! - at most `max_handshakes` handshakes in progress; when full, the oldest
//!   unfinished one makes room (stalled connections cannot hold the door);
//! - at most `per_source` in progress from one address; past it, the
//!   source's own oldest makes room (one address cannot fill the table);
//! - failures before TLS names a certified identity count against the
//!   source address; an address over the limit is slowed to one handshake
//!   at a time, never locked out (an agent behind the same NAT still gets
//!   in);
//! - failures once TLS has named an identity count against that identity;
//!   an identity over the limit is turned away right after TLS until its
//!   window ends, and its address is not held responsible.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use outpost_tunnel_proto::AgentId;

/// Keys remembered at most per failure window; past it, the oldest are forgotten.
const MAX_KEYS: usize = 10_000;

/// Counts failures per key in fixed windows.
#[derive(Debug)]
pub(crate) struct FailureWindow<K> {
    limit: u32,
    window: Duration,
    keys: HashMap<K, (Instant, u32)>,
}

impl<K: Hash + Eq + Clone> FailureWindow<K> {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        FailureWindow {
            limit,
            window,
            keys: HashMap::new(),
        }
    }

    /// Whether `key` is over its limit now.
    pub(crate) fn is_over(&self, key: &K, now: Instant) -> bool {
        match self.keys.get(key) {
            Some((start, failures)) => now.duration_since(*start) < self.window && *failures >= self.limit,
            None => false,
        }
    }

    /// Counts a failure of `key`.
    pub(crate) fn record(&mut self, key: K, now: Instant) {
        if self.keys.len() >= MAX_KEYS && !self.keys.contains_key(&key) {
            let window = self.window;
            self.keys.retain(|_, (start, _)| now.duration_since(*start) < window);
            if self.keys.len() >= MAX_KEYS {
                if let Some(oldest) = self
                    .keys
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(k, _)| k.clone())
                {
                    self.keys.remove(&oldest);
                }
            }
        }
        let entry = self.keys.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets `key`'s failures.
    pub(crate) fn clear(&mut self, key: &K) {
        self.keys.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Settings of a [`Gate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GateConfig {
    pub(crate) max_handshakes: usize,
    pub(crate) per_source: usize,
    pub(crate) failure_limit: u32,
    pub(crate) window: Duration,
}

/// Names a handshake in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Ticket(u64);

/// What to do with a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Start its handshake; end the handshakes in `evict` (they made room).
    Go { ticket: Ticket, evict: Vec<Ticket> },
    /// Close it before TLS.
    Refuse(&'static str),
}

/// The hub's bounds on work before authentication.
#[derive(Debug)]
pub(crate) struct Gate {
    config: GateConfig,
    /// Handshakes in progress, oldest first.
    in_progress: BTreeMap<Ticket, IpAddr>,
    by_source: HashMap<IpAddr, usize>,
    addresses: FailureWindow<IpAddr>,
    identities: FailureWindow<AgentId>,
    next: u64,
}

impl Gate {
    pub(crate) fn new(config: GateConfig) -> Self {
        Gate {
            config,
            in_progress: BTreeMap::new(),
            by_source: HashMap::new(),
            addresses: FailureWindow::new(config.failure_limit, config.window),
            identities: FailureWindow::new(config.failure_limit, config.window),
            next: 0,
        }
    }

    /// Handshakes in progress now.
    pub(crate) fn in_progress(&self) -> usize {
        self.in_progress.len()
    }

    /// Decides on a connection from `source`.
    pub(crate) fn admit(&mut self, now: Instant, source: IpAddr) -> Admit {
        let from_source = self.by_source.get(&source).copied().unwrap_or(0);
        let mut evict = Vec::new();
        if self.addresses.is_over(&source, now) {
            // Slowed, not locked out: one handshake at a time.
            if from_source >= 1 {
                return Admit::Refuse("too many failed attempts from this address; one handshake at a time");
            }
        } else if from_source >= self.config.per_source.max(1) {
            if let Some(oldest) = self.oldest(Some(source)) {
                evict.push(oldest);
            }
        }
        if evict.is_empty() && self.in_progress.len() >= self.config.max_handshakes.max(1) {
            if let Some(oldest) = self.oldest(None) {
                evict.push(oldest);
            }
        }
        for ticket in &evict {
            self.finish(*ticket);
        }
        let ticket = Ticket(self.next);
        self.next += 1;
        self.in_progress.insert(ticket, source);
        *self.by_source.entry(source).or_insert(0) += 1;
        Admit::Go { ticket, evict }
    }

    /// The oldest handshake in progress (from `source`, if given).
    fn oldest(&self, source: Option<IpAddr>) -> Option<Ticket> {
        self.in_progress
            .iter()
            .find(|(_, ip)| source.is_none_or(|s| **ip == s))
            .map(|(t, _)| *t)
    }

    /// TLS named `identity`: may it go on to the tunnel handshake?
    pub(crate) fn identified(&self, now: Instant, identity: &AgentId) -> Result<(), &'static str> {
        if self.identities.is_over(identity, now) {
            return Err("too many failed attempts for this agent");
        }
        Ok(())
    }

    /// A handshake ended (authenticated, failed or evicted); unknown
    /// tickets are ignored.
    pub(crate) fn finish(&mut self, ticket: Ticket) {
        if let Some(source) = self.in_progress.remove(&ticket) {
            if let Some(n) = self.by_source.get_mut(&source) {
                *n -= 1;
                if *n == 0 {
                    self.by_source.remove(&source);
                }
            }
        }
    }

    /// A handshake failed before TLS named an identity.
    pub(crate) fn failed_anonymous(&mut self, now: Instant, source: IpAddr) {
        self.addresses.record(source, now);
    }

    /// A handshake failed after TLS named `identity`.
    pub(crate) fn failed_as(&mut self, now: Instant, identity: AgentId) {
        self.identities.record(identity, now);
    }

    /// `identity` authenticated: its failures are forgotten.
    pub(crate) fn authenticated(&mut self, identity: &AgentId) {
        self.identities.clear(identity);
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.addresses.len() + self.identities.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate::new(GateConfig {
            max_handshakes: 4,
            per_source: 2,
            failure_limit: 3,
            window: Duration::from_secs(60),
        })
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    fn go(a: Admit) -> (Ticket, Vec<Ticket>) {
        match a {
            Admit::Go { ticket, evict } => (ticket, evict),
            Admit::Refuse(why) => panic!("refused: {why}"),
        }
    }

    #[test]
    fn a_full_table_makes_room_by_ending_the_oldest() {
        let mut g = gate();
        let now = Instant::now();
        let first = go(g.admit(now, ip(1))).0;
        for n in 2..=4 {
            assert!(go(g.admit(now, ip(n))).1.is_empty());
        }
        let (_, evicted) = go(g.admit(now, ip(5)));
        assert_eq!(evicted, [first]);
        assert_eq!(g.in_progress(), 4);
    }

    #[test]
    fn one_source_makes_room_from_its_own_handshakes() {
        let mut g = gate();
        let now = Instant::now();
        let other = go(g.admit(now, ip(9))).0;
        let a = go(g.admit(now, ip(1))).0;
        let _b = go(g.admit(now, ip(1))).0;
        let (_, evicted) = go(g.admit(now, ip(1)));
        assert_eq!(evicted, [a], "its own oldest, not another source's");
        assert!(!evicted.contains(&other));
    }

    #[test]
    fn an_address_over_its_failures_is_slowed_not_locked_out() {
        let mut g = gate();
        let now = Instant::now();
        for _ in 0..3 {
            g.failed_anonymous(now, ip(1));
        }
        let first = go(g.admit(now, ip(1))).0;
        assert!(matches!(g.admit(now, ip(1)), Admit::Refuse(_)), "one at a time");
        g.finish(first);
        assert!(matches!(g.admit(now, ip(1)), Admit::Go { .. }), "but never locked out");
        assert!(matches!(g.admit(now, ip(2)), Admit::Go { .. }));
    }

    #[test]
    fn an_identity_over_its_failures_waits_for_its_window_and_its_address_does_not() {
        let mut g = gate();
        let now = Instant::now();
        let bad = AgentId::new("plant-8").unwrap();
        let good = AgentId::new("plant-7").unwrap();
        for _ in 0..3 {
            g.failed_as(now, bad.clone());
        }
        assert!(g.identified(now, &bad).is_err());
        assert!(g.identified(now, &good).is_ok());
        assert!(go(g.admit(now, ip(1))).1.is_empty(), "the address is not blamed");
        let _ = go(g.admit(now, ip(1)));
        assert!(g.identified(now + Duration::from_secs(60), &bad).is_ok());
        g.failed_as(now, good.clone());
        g.authenticated(&good);
        assert_eq!(g.remembered(), 1);
    }

    #[test]
    fn failure_memory_is_bounded() {
        let mut w = FailureWindow::new(1, Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 100) {
            w.record(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(w.len() <= MAX_KEYS);
    }
}
