//! Bounds on pre-authentication work: failed attempts per source address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sources remembered at most; past it, the oldest windows are forgotten.
const MAX_SOURCES: usize = 10_000;

/// Counts failed attempts per source address in fixed windows; a source
/// over the limit is turned away, before TLS, until its window ends.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    limit: u32,
    window: Duration,
    sources: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        FailureLimiter {
            limit,
            window,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `source` may try now.
    pub(crate) fn allows(&self, source: IpAddr, now: Instant) -> bool {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        match sources.get(&source) {
            Some((start, failures)) => now.duration_since(*start) >= self.window || *failures < self.limit,
            None => true,
        }
    }

    /// Counts a failed attempt from `source`.
    pub(crate) fn record_failure(&self, source: IpAddr, now: Instant) {
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&source) {
            let window = self.window;
            sources.retain(|_, (start, _)| now.duration_since(*start) < window);
            if sources.len() >= MAX_SOURCES {
                // Still full: forget the oldest window.
                if let Some(oldest) = sources.iter().min_by_key(|(_, (start, _))| *start).map(|(ip, _)| *ip) {
                    sources.remove(&oldest);
                }
            }
        }
        let entry = sources.entry(source).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets a source's failures (after it authenticated).
    pub(crate) fn clear(&self, source: IpAddr) {
        self.sources.lock().unwrap_or_else(|p| p.into_inner()).remove(&source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_over_the_limit_waits_for_its_window() {
        let l = FailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.allows(ip, t0));
            l.record_failure(ip, t0);
        }
        assert!(!l.allows(ip, t0 + Duration::from_secs(59)));
        assert!(l.allows(other, t0));
        assert!(l.allows(ip, t0 + Duration::from_secs(60)));
        l.record_failure(ip, t0 + Duration::from_secs(60));
        assert!(l.allows(ip, t0 + Duration::from_secs(60)));
        l.clear(ip);
        assert!(l.sources.lock().unwrap().is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let l = FailureLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 100) {
            l.record_failure(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(l.sources.lock().unwrap().len() <= MAX_SOURCES);
    }
}
