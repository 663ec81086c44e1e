//! What `/healthz` and `/readyz` answer.
//!
//! - **Live** unless the process is stuck: the consumer loop has not come round for
//!   `stuck_after`, or a worker with records waiting for it has not taken one for that long. A
//!   slow or absent broker alone never makes it fail: polling returns, and a worker waiting for
//!   Kafka (room in the producer's queue, a delivery) beats while it waits — librdkafka's
//!   `message.timeout.ms` bounds each wait with a failed delivery — so a restart, which would
//!   not help, is never asked for.
//! - **Ready** once the member has its first assignment and every partition's state is
//!   restored; not ready while restoring, once stopping, or after a fatal error.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// One worker's progress.
#[derive(Debug, Default)]
struct Beat {
    /// Records handed to it and not yet taken.
    queued: AtomicU64,
    /// When it last came round its loop: once per batch or idle wait (ms since start).
    at_ms: AtomicI64,
}

/// Liveness and readiness of one member.
#[derive(Debug)]
pub struct Health {
    origin: Instant,
    stuck_after_ms: i64,
    /// When the consumer loop last stored commit points, every `offset_store_interval` (ms
    /// since start; 0: not started).
    consumer_ms: AtomicI64,
    workers: Vec<Beat>,
    assigned: AtomicBool,
    restoring: AtomicUsize,
    stopping: AtomicBool,
    failed: AtomicBool,
    /// Why it failed.
    failure: std::sync::Mutex<Option<String>>,
}

/// Why a probe fails.
pub type Verdict = Result<&'static str, String>;

impl Health {
    /// Health of a member with `workers` workers.
    pub fn new(workers: usize, stuck_after: Duration) -> Self {
        Health {
            origin: Instant::now(),
            stuck_after_ms: stuck_after.as_millis() as i64,
            consumer_ms: AtomicI64::new(0),
            workers: (0..workers.max(1)).map(|_| Beat::default()).collect(),
            assigned: AtomicBool::new(false),
            restoring: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            failure: std::sync::Mutex::new(None),
        }
    }

    fn now_ms(&self) -> i64 {
        (self.origin.elapsed().as_millis() as i64).max(1)
    }

    /// The consumer loop came round.
    pub fn consumer_beat(&self) {
        self.consumer_ms.store(self.now_ms(), Relaxed);
    }

    /// `n` records were handed to worker `w`.
    pub fn queued(&self, w: usize, n: usize) {
        if let Some(b) = self.workers.get(w) {
            b.queued.fetch_add(n as u64, Relaxed);
        }
    }

    /// Worker `w` took a record handed to it (one at a time: a worker stuck on a record shows
    /// the rest of its batch as waiting).
    pub fn took(&self, w: usize) {
        if let Some(b) = self.workers.get(w) {
            b.queued.fetch_sub(1, Relaxed);
        }
    }

    /// Worker `w` came round its loop (once per batch of records, or per idle wait).
    pub fn worker_beat(&self, w: usize) {
        if let Some(b) = self.workers.get(w) {
            b.at_ms.store(self.now_ms(), Relaxed);
        }
    }

    /// Partitions were assigned; `restores` restore jobs were handed to workers.
    pub fn assigned(&self, restores: usize) {
        self.restoring.fetch_add(restores, Relaxed);
        self.assigned.store(true, Relaxed);
    }

    /// A restore job finished (successfully or not: a failure is fatal).
    pub fn restored(&self) {
        let _ = self
            .restoring
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// The stop began: no longer ready.
    pub fn stopping(&self) {
        self.stopping.store(true, Relaxed);
    }

    /// A fatal error, `why`: no longer ready.
    pub fn failed(&self, why: String) {
        *self.failure.lock().expect("failure lock") = Some(why);
        self.failed.store(true, Relaxed);
    }

    /// Why it failed, once it has.
    pub fn failure(&self) -> Option<String> {
        if !self.failed.load(Relaxed) {
            return None;
        }
        self.failure.lock().expect("failure lock").clone()
    }

    /// `/healthz`: `Ok` unless a loop is stuck (the reason names it).
    pub fn live(&self) -> Verdict {
        self.live_at(self.now_ms())
    }

    fn live_at(&self, now: i64) -> Verdict {
        let consumer = self.consumer_ms.load(Relaxed);
        if consumer > 0 && now - consumer > self.stuck_after_ms {
            return Err(format!(
                "the consumer loop has not come round for {} ms",
                now - consumer
            ));
        }
        for (i, b) in self.workers.iter().enumerate() {
            let queued = b.queued.load(Relaxed);
            let at = b.at_ms.load(Relaxed);
            if queued > 0 && at > 0 && now - at > self.stuck_after_ms {
                return Err(format!(
                    "worker {i} has {queued} record(s) waiting and has not taken one for {} ms",
                    now - at
                ));
            }
        }
        Ok("live")
    }

    /// `/readyz`: `Ok` once assigned and restored, until stopping or failed.
    pub fn ready(&self) -> Verdict {
        if let Some(why) = self.failure() {
            return Err(format!("stopped by a fatal error: {why}"));
        }
        if self.stopping.load(Relaxed) {
            return Err("shutting down".into());
        }
        if !self.assigned.load(Relaxed) {
            return Err("waiting for a partition assignment".into());
        }
        match self.restoring.load(Relaxed) {
            0 => Ok("ready"),
            n => Err(format!("restoring state ({n} restore job(s) left)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> Health {
        Health::new(2, Duration::from_secs(10))
    }

    #[test]
    fn readiness_follows_assignment_restore_stop_and_failure() {
        let h = health();
        assert!(h.ready().unwrap_err().contains("assignment"));
        h.assigned(2);
        assert!(h.ready().unwrap_err().contains("2 restore job(s) left"));
        h.restored();
        assert!(h.ready().is_err());
        h.restored();
        assert_eq!(h.ready(), Ok("ready"));
        h.assigned(1);
        assert!(h.ready().is_err(), "a new assignment restores again");
        h.restored();
        assert_eq!(h.ready(), Ok("ready"));
        h.stopping();
        assert_eq!(h.ready(), Err("shutting down".into()));
        let f = health();
        f.assigned(0);
        assert_eq!(f.failure(), None);
        f.failed("delivery failed".into());
        assert_eq!(
            f.ready(),
            Err("stopped by a fatal error: delivery failed".into())
        );
        assert_eq!(f.failure().as_deref(), Some("delivery failed"));
    }

    #[test]
    fn liveness_fails_only_for_a_stalled_loop_with_work_or_a_stalled_consumer() {
        let h = health();
        assert_eq!(h.live_at(1_000_000), Ok("live"), "not started yet");
        h.consumer_ms.store(1_000, Relaxed);
        h.workers[0].at_ms.store(1_000, Relaxed);
        h.workers[1].at_ms.store(1_000, Relaxed);
        assert_eq!(h.live_at(11_000), Ok("live"));
        // An idle worker with nothing waiting is never stuck, however long it sleeps.
        h.consumer_ms.store(50_000, Relaxed);
        assert_eq!(h.live_at(55_000), Ok("live"));
        // Work waiting for worker 1, which has not moved for 10 s: stuck.
        h.queued(1, 1);
        let e = h.live_at(55_000).unwrap_err();
        assert!(e.contains("worker 1 has 1 record(s) waiting"), "{e}");
        h.took(1);
        h.worker_beat(1);
        assert_eq!(h.live(), Ok("live"));
        // The consumer loop not coming round for longer than stuck_after: stuck.
        let e = h.live_at(61_000).unwrap_err();
        assert!(e.contains("consumer loop"), "{e}");
    }
}
