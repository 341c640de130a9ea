//! Flow-control arithmetic, in integers, with no clock and no IO.
//!
//! A receiver announces a window; the sender may have at most that many
//! payload bytes unacknowledged. The receiver returns credit with
//! WINDOW_UPDATE once the application has consumed half a window, or when
//! it has consumed everything it holds (so credit never stays stranded below
//! the half-window mark while the sender waits).

/// The sending side of a window: credit the peer has granted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendWindow {
    credit: u64,
    /// The window the peer first announced: the most that can ever be in flight.
    initial: u32,
}

/// Credit can never rise past this: a peer that tries is misbehaving.
const MAX_CREDIT: u64 = u32::MAX as u64;

impl SendWindow {
    pub(crate) fn new(initial: u32) -> Self {
        SendWindow {
            credit: initial.into(),
            initial,
        }
    }

    pub(crate) fn credit(&self) -> u64 {
        self.credit
    }

    pub(crate) fn initial(&self) -> u32 {
        self.initial
    }

    pub(crate) fn reset(&mut self, initial: u32) {
        *self = SendWindow::new(initial);
    }

    /// Spends credit; callers never spend more than [`SendWindow::credit`].
    pub(crate) fn spend(&mut self, n: u64) {
        debug_assert!(n <= self.credit);
        self.credit -= n.min(self.credit);
    }

    /// Gives back credit spent on bytes that will never be sent.
    pub(crate) fn refund(&mut self, n: u64) {
        self.credit = (self.credit + n).min(MAX_CREDIT);
    }

    /// Adds credit from a WINDOW_UPDATE; `Err` if it overflows.
    pub(crate) fn grant(&mut self, increment: u32) -> Result<(), ()> {
        let credit = self.credit + u64::from(increment);
        if credit > MAX_CREDIT {
            return Err(());
        }
        self.credit = credit;
        Ok(())
    }
}

/// The receiving side of a window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecvWindow {
    window: u32,
    /// How many more bytes the peer may send.
    allowed: u64,
    /// Consumed bytes not yet returned to the peer.
    unreturned: u64,
}

impl RecvWindow {
    pub(crate) fn new(window: u32) -> Self {
        RecvWindow {
            window,
            allowed: window.into(),
            unreturned: 0,
        }
    }

    /// Window, credit the peer still has, and consumed bytes not yet returned.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn parts(&self) -> (u64, u64, u64) {
        (self.window.into(), self.allowed, self.unreturned)
    }

    /// Takes `n` received bytes; `Err(allowed)` if the peer had no such credit.
    pub(crate) fn receive(&mut self, n: u64) -> Result<(), u64> {
        if n > self.allowed {
            return Err(self.allowed);
        }
        self.allowed -= n;
        Ok(())
    }

    /// Records `n` bytes consumed; returns the increment to send now, if any.
    pub(crate) fn consume(&mut self, n: u64) -> Option<u32> {
        self.unreturned += n;
        if self.unreturned == 0 || self.unreturned * 2 < u64::from(self.window) {
            return None;
        }
        let inc = self.unreturned.min(MAX_CREDIT) as u32;
        self.unreturned -= u64::from(inc);
        self.allowed += u64::from(inc);
        Some(inc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_returns_at_half_window() {
        let mut w = RecvWindow::new(100);
        assert!(w.receive(60).is_ok());
        assert_eq!(w.consume(30), None);
        assert_eq!(w.consume(20), Some(50));
        assert_eq!(w.consume(10), None);
        assert_eq!(w.consume(0), None);
        let mut one = RecvWindow::new(1);
        assert!(one.receive(1).is_ok());
        assert_eq!(one.consume(1), Some(1));
        assert_eq!(w.receive(91), Err(90));
    }

    #[test]
    fn grants_cannot_overflow() {
        let mut s = SendWindow::new(u32::MAX);
        assert!(s.grant(1).is_err());
        s.spend(10);
        assert!(s.grant(10).is_ok());
        assert_eq!(s.credit(), u64::from(u32::MAX));
    }
}
