//! The consumer thread: polls the group member (`BaseConsumer`, on its own thread, so the
//! rebalance callbacks never run on the async runtime), hands records to the workers that own
//! their partitions, stores commit points, and on stop drains, commits and closes — all within
//! `shutdown_deadline`.

use super::delivery::{Fatal, OutputProducer, Shared};
use super::rebalance::GroupContext;
use super::steps::{LocalSteps, Step};
use super::tracker::Slot;
use super::worker::Job;
use crate::clock::SystemClock;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::util::Timeout;
use rdkafka::TopicPartitionList;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records handed to a worker at once, at most, while records keep coming.
const HAND_OVER: usize = 64;
/// A record is held this long at most before it is handed over (a quiet partition's record
/// does not wait for a busy one's batch to fill).
const HOLD_AT_MOST: Duration = Duration::from_millis(1);

/// Records polled and not yet handed over, per worker, each with when it was polled.
struct Batches {
    per_worker: Vec<Vec<(rdkafka::message::OwnedMessage, Instant)>>,
}

impl Batches {
    fn new(workers: usize) -> Batches {
        Batches {
            per_worker: (0..workers)
                .map(|_| Vec::with_capacity(HAND_OVER))
                .collect(),
        }
    }

    /// Records held, all workers together.
    fn held(&self) -> usize {
        self.per_worker.iter().map(Vec::len).sum()
    }

    /// When the oldest record held was polled (each batch is in polling order).
    fn oldest(&self) -> Option<Instant> {
        self.per_worker
            .iter()
            .filter_map(|b| Some(b.first()?.1))
            .min()
    }

    /// Drops the records held of a revoked partition.
    fn drop_slot(&mut self, slot: Slot, ctx: &GroupContext) {
        for batch in &mut self.per_worker {
            batch.retain(|(m, _)| ctx.slot(m.topic(), m.partition()) != slot);
        }
    }
}

/// The group member and what it feeds.
pub struct Consuming {
    pub(super) consumer: Arc<BaseConsumer<GroupContext>>,
    pub(super) shared: Arc<Shared>,
    pub(super) producer: Arc<OutputProducer>,
    pub(super) senders: Vec<Sender<Job>>,
    pub(super) max_in_flight: usize,
    pub(super) store_every: Duration,
}

/// How a stop went: what was drained, delivered and committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// Every record handed to a worker was dispatched.
    pub drained: bool,
    /// Every output was delivered.
    pub flushed: bool,
    /// Input records whose outputs were not all delivered: they will be processed again.
    pub in_flight: usize,
    /// The final commit: `None` when there was nothing to commit, else its result.
    pub committed: Option<Result<(), String>>,
    /// How long the stop took.
    pub took: Duration,
}

impl Stopped {
    /// Everything drained, delivered and committed.
    pub fn clean(&self) -> bool {
        self.drained
            && self.flushed
            && self.in_flight == 0
            && !matches!(self.committed, Some(Err(_)))
    }
}

impl Consuming {
    /// Polls until `stop` is set or a fatal error is recorded (returned). Records are handed to
    /// the workers in batches: while records keep coming, up to [`HAND_OVER`] per worker; as soon
    /// as a poll finds nothing waiting, whatever was gathered.
    pub fn run(&self, stop: &AtomicBool) -> Option<Fatal> {
        self.shared.register_consumer();
        let mut batches = Batches::new(self.senders.len());
        let mut steps = self.shared.stats.steps.local();
        let ended = self.poll_loop(stop, &mut batches, &mut steps);
        self.shared.stats.steps.merge(&mut steps);
        if !self.hand_over_all(&mut batches) {
            return ended.or(Some(Fatal::WorkerStopped));
        }
        ended
    }

    fn poll_loop(
        &self,
        stop: &AtomicBool,
        batches: &mut Batches,
        steps: &mut LocalSteps,
    ) -> Option<Fatal> {
        let ctx = self.consumer.context();
        let mut stored: HashMap<Slot, i64> = HashMap::new();
        let mut next_store = Instant::now() + self.store_every;
        let mut progress = Progress::new();
        loop {
            if stop.load(Ordering::Acquire) {
                return None;
            }
            if self.shared.failed() {
                return self.shared.fatal();
            }
            if Instant::now() >= next_store {
                next_store = Instant::now() + self.store_every;
                self.shared.health.consumer_beat();
                self.shared.stats.steps.merge(steps);
                self.store(&mut stored);
                let in_flight = self.shared.in_flight();
                self.shared.stats.metrics.in_flight.set(in_flight as i64);
                progress.log(&self.shared);
            }
            let held = batches.held();
            if self.shared.in_flight() + held >= self.max_in_flight {
                if !self.hand_over_all(batches) {
                    return Some(Fatal::WorkerStopped);
                }
                std::thread::park_timeout(Duration::from_millis(10));
                continue;
            }
            // Do not block while records are held: hand them over first.
            let wait = if held > 0 {
                Duration::ZERO
            } else {
                Duration::from_millis(50)
            };
            let polled = self.consumer.poll(wait);
            // A revocation runs inside the poll: records of revoked partitions still held here
            // are dropped (the next owner reads them again from the commit point).
            for slot in ctx.revoked.lock().expect("revoked lock").drain(..) {
                stored.remove(&slot);
                batches.drop_slot(slot, ctx);
            }
            let handed = match polled {
                Some(Ok(msg)) => self.gather(msg.detach(), batches, steps),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    true
                }
                None => self.hand_over_all(batches),
            };
            if !handed {
                return Some(Fatal::WorkerStopped);
            }
        }
    }

    /// Adds a record to the batch of the worker owning its partition; hands that batch over
    /// when it is full. False when the worker is gone.
    fn gather(
        &self,
        msg: rdkafka::message::OwnedMessage,
        batches: &mut Batches,
        steps: &mut LocalSteps,
    ) -> bool {
        self.shared.stats.consumed();
        let polled = Instant::now();
        if let Some(ts) = msg.timestamp().to_millis().filter(|ts| *ts > 0) {
            let waited_ms = (SystemClock::now() - ts).max(0) as u64;
            steps.record(Step::ConsumerWait, waited_ms * 1000);
        }
        let w = super::worker_of(msg.partition(), self.senders.len());
        batches.per_worker[w].push((msg, polled));
        if batches.oldest().is_some_and(|t| polled - t >= HOLD_AT_MOST) {
            return self.hand_over_all(batches);
        }
        if batches.per_worker[w].len() < HAND_OVER {
            return true;
        }
        self.hand_over(w, batches)
    }

    /// Hands every batch gathered to its worker.
    fn hand_over_all(&self, batches: &mut Batches) -> bool {
        (0..self.senders.len()).all(|w| self.hand_over(w, batches))
    }

    /// Hands worker `w`'s batch over (nothing when it is empty). False when the worker is gone.
    fn hand_over(&self, w: usize, batches: &mut Batches) -> bool {
        if batches.per_worker[w].is_empty() {
            return true;
        }
        let records = std::mem::replace(&mut batches.per_worker[w], Vec::with_capacity(HAND_OVER));
        let n = records.len();
        self.shared.queued.fetch_add(n, Ordering::AcqRel);
        self.shared.health.queued(w, n);
        if self.senders[w].send(Job::Records(records)).is_err() {
            self.shared.queued.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Every partition's commit point, as a list for the consumer.
    fn commit_list(&self, only_changed: Option<&mut HashMap<Slot, i64>>) -> TopicPartitionList {
        let mut points = self
            .shared
            .tracker
            .lock()
            .expect("tracker lock")
            .commit_points();
        if let Some(stored) = only_changed {
            points.retain(|(slot, point)| stored.insert(*slot, *point) != Some(*point));
        }
        self.consumer.context().offsets(points)
    }

    /// Stores the commit points that moved; librdkafka commits stored offsets every second.
    fn store(&self, stored: &mut HashMap<Slot, i64>) {
        let tpl = self.commit_list(Some(stored));
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.store_offsets(&tpl) {
                tracing::debug!(error = %e, "storing offsets (partition no longer assigned?)");
            }
        }
    }

    /// Drains, flushes and commits within `deadline`, then closes the consumer (without waiting
    /// past the deadline for it).
    pub fn stop(self, deadline: Duration) -> Stopped {
        let started = Instant::now();
        let left = || deadline.saturating_sub(started.elapsed());
        let drained = self.shared.wait_queued(deadline);
        let flushed = self.producer.flush(Timeout::After(left())).is_ok();
        let committed = self.commit_within(left());
        let in_flight = self.shared.in_flight();
        let ctx = self.consumer.context();
        ctx.closing.store(true, Ordering::Release);
        // The workers stop once their queues close (the context's senders and ours).
        ctx.workers.lock().expect("workers lock").clear();
        drop(self.senders);
        close_within(self.consumer, left().max(Duration::from_millis(500)));
        Stopped {
            drained,
            flushed,
            in_flight,
            committed,
            took: started.elapsed(),
        }
    }

    /// Stores and commits every commit point (stored first, so librdkafka's own commit on
    /// close cannot write older offsets after it). The synchronous commit runs on its own
    /// thread, so a broker that does not answer costs at most `within`.
    fn commit_within(&self, within: Duration) -> Option<Result<(), String>> {
        let tpl = self.commit_list(None);
        if tpl.count() == 0 {
            return None;
        }
        let _ = self.consumer.store_offsets(&tpl);
        let (tx, rx) = std::sync::mpsc::channel();
        let consumer = self.consumer.clone();
        let _ = std::thread::Builder::new()
            .name("handoff-commit".into())
            .spawn(move || {
                let _ = tx.send(consumer.commit(&tpl, CommitMode::Sync));
            });
        match rx.recv_timeout(within) {
            Ok(Ok(())) => Some(Ok(())),
            // Offsets already committed: nothing new to commit.
            Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))) => Some(Ok(())),
            Ok(Err(e)) => Some(Err(e.to_string())),
            Err(_) => Some(Err(format!("no answer from the broker within {within:?}"))),
        }
    }
}

/// Closes (drops) the consumer on its own thread, waiting at most `within`: leaving the group
/// needs the broker, which may be away.
fn close_within(consumer: Arc<BaseConsumer<GroupContext>>, within: Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("handoff-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = tx.send(());
        });
    if rx.recv_timeout(within).is_err() {
        tracing::warn!(
            ?within,
            "the consumer did not close in time (broker away?); leaving it"
        );
    }
}

/// The progress line every 10 s while records flow.
struct Progress {
    at: Instant,
    consumed: u64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            at: Instant::now(),
            consumed: 0,
        }
    }

    fn log(&mut self, shared: &Shared) {
        if self.at.elapsed() < Duration::from_secs(10) {
            return;
        }
        let s = shared.stats.snapshot();
        if s.consumed != self.consumed {
            tracing::info!(
                consumed = s.consumed,
                per_second = (s.consumed - self.consumed) / self.at.elapsed().as_secs().max(1),
                dead_letters = s.dead_letters,
                in_flight = shared.in_flight(),
                e2e_p99_ms = s.e2e_ms[1],
                "progress"
            );
            self.consumed = s.consumed;
        }
        self.at = Instant::now();
    }
}
