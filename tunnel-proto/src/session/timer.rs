//! The session's timers: one small table of deadlines, the earliest of which
//! the driver sleeps until.

use std::time::Instant;

/// Each thing the session may need to wake up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The handshake must finish by then.
    Handshake,
    /// Send a PING if nothing has arrived by then.
    KeepAlive,
    /// Give up on the peer if nothing has arrived by then.
    PeerTimeout,
    /// Shut down if still without channels by then.
    Idle,
    /// Close whatever has not drained after GOAWAY by then.
    Drain,
}

impl Timer {
    const COUNT: usize = 5;
    pub(crate) const ALL: [Timer; Timer::COUNT] = [
        Timer::Handshake,
        Timer::KeepAlive,
        Timer::PeerTimeout,
        Timer::Idle,
        Timer::Drain,
    ];
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Timers {
    deadlines: [Option<Instant>; Timer::COUNT],
}

impl Timers {
    /// Sets `timer` to `now + after`; a time too far to represent means never.
    pub(crate) fn set_after(&mut self, timer: Timer, now: Instant, after: std::time::Duration) {
        self.deadlines[timer as usize] = now.checked_add(after);
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    pub(crate) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    pub(crate) fn clear_all(&mut self) {
        self.deadlines = [None; Timer::COUNT];
    }
}
