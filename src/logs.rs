//! Logging that stays readable under a flood: at most one line per interval, with a count of
//! the lines held back. Used wherever bad input can arrive at record rate (dead letters, the
//! schema registry, the notifier's role topics).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Lets one log line through per interval and counts the ones held back, so a flood of bad
/// input is visible at info level without a line per record.
#[derive(Debug)]
pub struct LogLimiter {
    every_ms: i64,
    /// When the last line went out (ms).
    last_ms: AtomicI64,
    /// Lines held back since.
    held: AtomicU64,
}

impl LogLimiter {
    /// At most one line per `every_ms`.
    pub fn new(every_ms: i64) -> Self {
        LogLimiter {
            every_ms,
            last_ms: AtomicI64::new(i64::MIN / 2),
            held: AtomicU64::new(0),
        }
    }

    /// `Some(held back since the last line)` when a line may go out at `now_ms`. Lock-free:
    /// workers flooded with bad input do not queue on it.
    pub fn allow(&self, now_ms: i64) -> Option<u64> {
        let last = self.last_ms.load(Relaxed);
        let due = now_ms - last >= self.every_ms;
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.held.swap(0, Relaxed));
        }
        self.held.fetch_add(1, Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_limiter_lets_one_line_a_second_through_and_counts_the_rest() {
        let l = LogLimiter::new(1000);
        assert_eq!(l.allow(10_000), Some(0));
        assert_eq!(l.allow(10_001), None);
        assert_eq!(l.allow(10_999), None);
        assert_eq!(l.allow(11_000), Some(2));
        assert_eq!(l.allow(11_500), None);
    }
}
