//! Where time comes from. The matrix and the state never read the clock: the pipeline asks a
//! [`Clock`] and passes the time in, so a test or a game-day can run hours of deadlines on a
//! [`VirtualClock`] in seconds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of the current time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl SystemClock {
    /// The wall clock now, ms since the epoch (where no clock is passed in: the inbox and the
    /// notifier live on the wall clock only).
    pub fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemClock::now()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Default, Clone)]
pub struct VirtualClock(Arc<AtomicI64>);

impl VirtualClock {
    /// A clock standing at `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        VirtualClock(Arc::new(AtomicI64::new(start_ms)))
    }

    /// Moves the clock forward by `ms` (never backwards); returns the new time.
    pub fn advance(&self, ms: i64) -> i64 {
        self.0.fetch_add(ms.max(0), Ordering::AcqRel) + ms.max(0)
    }

    /// Sets the clock to `ms` if that is later than now; returns the time after.
    pub fn advance_to(&self, ms: i64) -> i64 {
        self.0.fetch_max(ms, Ordering::AcqRel).max(ms)
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_clock_moves_only_forward_and_clones_share_it() {
        let c = VirtualClock::new(1_000);
        let d = c.clone();
        assert_eq!(c.advance(500), 1_500);
        assert_eq!(d.now_ms(), 1_500);
        assert_eq!(d.advance_to(1_200), 1_500, "never backwards");
        assert_eq!(c.advance(-9), 1_500);
        assert_eq!(d.advance_to(9_000), 9_000);
        assert_eq!(c.now_ms(), 9_000);
    }

    #[test]
    fn the_system_clock_is_near_the_unix_time() {
        let now = SystemClock.now_ms();
        assert!(now > 1_700_000_000_000, "{now}");
    }
}
