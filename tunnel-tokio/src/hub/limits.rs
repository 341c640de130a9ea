//! Bounds on pre-authentication work, as a machine with time passed in: the
//! hub asks it before each handshake and tells it how each one ends.
//!
//! The rules protect agents as much as the hub:
//! - at most `max_handshakes` handshakes in progress; when full, the oldest
//!   unfinished one makes room once it has had its `grace` (stalled
//!   connections cannot hold the door, and a burst of honest agents does
//!   not cut its own handshakes short); until then the hub accepts nothing
//!   ([`Gate::room`]) and new connections wait in the listen backlog, where
//!   they cost the hub nothing;
//! - at most `per_source` in progress from one address; past it, the
//!   source's own oldest makes room once it has had its grace, and before
//!   that the new connection is closed before TLS (one address cannot fill
//!   the table);
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
    /// How long a handshake runs before a newcomer may end it to make room.
    pub(crate) grace: Duration,
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
    /// Handshakes in progress, oldest first, with their source and start.
    in_progress: BTreeMap<Ticket, (IpAddr, Instant)>,
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

    /// When the table has room for one more handshake: `None` if now,
    /// else the moment its oldest handshake's grace ends (or sooner, when
    /// one finishes). The hub accepts no connection before then.
    pub(crate) fn room(&self, now: Instant) -> Option<Instant> {
        if self.in_progress.len() < self.config.max_handshakes.max(1) {
            return None;
        }
        let ends = self.oldest(None)?.1 + self.config.grace;
        (ends > now).then_some(ends)
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
            match self.oldest(Some(source)) {
                Some((oldest, started)) if self.had_grace(started, now) => evict.push(oldest),
                _ => return Admit::Refuse("too many handshakes from this address at once"),
            }
        }
        if evict.is_empty() && self.in_progress.len() >= self.config.max_handshakes.max(1) {
            match self.oldest(None) {
                Some((oldest, started)) if self.had_grace(started, now) => evict.push(oldest),
                _ => return Admit::Refuse("handshake table full"),
            }
        }
        for ticket in &evict {
            self.finish(*ticket);
        }
        let ticket = Ticket(self.next);
        self.next += 1;
        self.in_progress.insert(ticket, (source, now));
        *self.by_source.entry(source).or_insert(0) += 1;
        Admit::Go { ticket, evict }
    }

    fn had_grace(&self, started: Instant, now: Instant) -> bool {
        now.saturating_duration_since(started) >= self.config.grace
    }

    /// The oldest handshake in progress (from `source`, if given), with
    /// its start.
    fn oldest(&self, source: Option<IpAddr>) -> Option<(Ticket, Instant)> {
        self.in_progress
            .iter()
            .find(|(_, (ip, _))| source.is_none_or(|s| *ip == s))
            .map(|(t, (_, started))| (*t, *started))
    }

    /// TLS named `identity`: may it go on to the tunnel handshake?
    pub(crate) fn identified(&self, now: Instant, identity: &AgentId) -> Result<(), &'static str> {
        if self.identities.is_over(identity, now) {
            return Err("too many failed attempts for this agent");
        }
        Ok(())
    }

    /// Whether the handshake of `ticket` is still in progress (not
    /// finished nor evicted).
    pub(crate) fn is_in_progress(&self, ticket: Ticket) -> bool {
        self.in_progress.contains_key(&ticket)
    }

    /// A handshake ended (authenticated, failed or evicted); unknown
    /// tickets are ignored.
    pub(crate) fn finish(&mut self, ticket: Ticket) {
        if let Some((source, _)) = self.in_progress.remove(&ticket) {
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
            grace: GRACE,
        })
    }

    const GRACE: Duration = Duration::from_millis(250);

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
    fn a_full_table_makes_room_by_ending_the_oldest_once_its_grace_is_over() {
        let mut g = gate();
        let now = Instant::now();
        assert_eq!(g.room(now), None);
        let first = go(g.admit(now, ip(1))).0;
        let later = now + Duration::from_millis(10);
        for n in 2..=4 {
            assert!(go(g.admit(later, ip(n))).1.is_empty());
        }
        // Full of young handshakes: no room until the oldest's grace ends,
        // and a connection that comes anyway is refused, not let in by
        // cutting a young handshake short.
        assert_eq!(g.room(later), Some(now + GRACE));
        assert_eq!(g.room(now + GRACE - Duration::from_millis(1)), Some(now + GRACE));
        assert_eq!(g.admit(later, ip(5)), Admit::Refuse("handshake table full"));
        assert_eq!(g.in_progress(), 4);
        // Its grace over, the oldest makes room.
        assert_eq!(g.room(now + GRACE), None);
        let (_, evicted) = go(g.admit(now + GRACE, ip(5)));
        assert_eq!(evicted, [first]);
        assert_eq!(g.in_progress(), 4);
        // The next oldest started later: its grace ends later.
        assert_eq!(g.room(now + GRACE), Some(later + GRACE));
    }

    #[test]
    fn a_finished_handshake_makes_room_at_once() {
        let mut g = gate();
        let now = Instant::now();
        let tickets: Vec<Ticket> = (1..=4).map(|n| go(g.admit(now, ip(n))).0).collect();
        assert!(g.room(now).is_some());
        g.finish(tickets[2]);
        assert_eq!(g.room(now), None);
        assert!(go(g.admit(now, ip(9))).1.is_empty(), "no one was cut short");
        // Unknown and finished tickets change nothing.
        g.finish(tickets[2]);
        g.finish(Ticket(999));
        assert_eq!(g.in_progress(), 4);
    }

    #[test]
    fn one_source_makes_room_from_its_own_handshakes_once_their_grace_is_over() {
        let mut g = gate();
        let now = Instant::now();
        let other = go(g.admit(now, ip(9))).0;
        let a = go(g.admit(now, ip(1))).0;
        let _b = go(g.admit(now, ip(1))).0;
        // A burst from one address does not cut its own handshakes short.
        assert_eq!(
            g.admit(now + GRACE - Duration::from_millis(1), ip(1)),
            Admit::Refuse("too many handshakes from this address at once")
        );
        assert_eq!(g.room(now), None, "other addresses still get in");
        let (_, evicted) = go(g.admit(now + GRACE, ip(1)));
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
