//! What the consumer thread, the workers and librdkafka's delivery callback share: records
//! queued at workers, the offset tracker, and the first fatal error.

use super::stats::Stats;
use super::steps::Step;
use super::tracker::{Slot, Token, Tracker};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Why the pipeline must stop. The first one recorded wins; nothing past it is committed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fatal {
    /// librdkafka gave up delivering an output.
    #[error("delivery failed for good to topic {topic} (input: {input}): {error}")]
    Delivery {
        /// Output topic.
        topic: String,
        /// The input record it belonged to, in words.
        input: String,
        /// librdkafka's error.
        error: String,
    },
    /// The producer refused to queue an output.
    #[error("cannot queue a record for topic {topic}: {error}")]
    Queue {
        /// Output topic.
        topic: String,
        /// Why.
        error: String,
    },
    /// A partition's state could not be restored: deciding without it would be wrong.
    #[error("cannot restore state of partitions {partitions:?} from {topic}: {error}")]
    Restore {
        /// Partitions.
        partitions: Vec<i32>,
        /// Changelog topic.
        topic: String,
        /// Why.
        error: String,
    },
    /// A stage could not encode an output (a defect).
    #[error("{0}")]
    Stage(String),
    /// A worker thread is gone.
    #[error("a worker thread stopped")]
    WorkerStopped,
}

/// State shared by the consumer thread, the workers and the delivery callback.
pub struct Shared {
    /// Input records handed to workers and not yet dispatched to the producer.
    pub queued: AtomicUsize,
    /// Outputs in flight per input offset.
    pub tracker: Mutex<Tracker>,
    /// Per worker: its outputs that belong to no input (deadlines, digests) not yet delivered.
    untracked: Box<[AtomicUsize]>,
    /// The tracker's count of inputs in flight, read without its lock.
    tracked: Arc<AtomicUsize>,
    fatal: Mutex<Option<Fatal>>,
    /// Set with `fatal`: a lock-free check for the per-record paths.
    failed: std::sync::atomic::AtomicBool,
    /// The consumer thread, woken when room is made while it waits.
    consumer: std::sync::OnceLock<Thread>,
    /// Counters and metrics.
    pub stats: Arc<Stats>,
    /// What the probes answer.
    pub health: Arc<super::health::Health>,
    /// The origin of [`Shared::now_us`].
    epoch: Instant,
}

impl Shared {
    /// Nothing queued, nothing in flight, for `workers` workers.
    pub fn new(stats: Arc<Stats>, health: Arc<super::health::Health>, workers: usize) -> Shared {
        let tracker = Tracker::new();
        Shared {
            untracked: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            queued: AtomicUsize::new(0),
            tracked: tracker.in_flight_counter(),
            tracker: Mutex::new(tracker),
            fatal: Mutex::new(None),
            failed: std::sync::atomic::AtomicBool::new(false),
            consumer: std::sync::OnceLock::new(),
            stats,
            health,
            epoch: Instant::now(),
        }
    }

    /// The first fatal error, if any.
    pub fn fatal(&self) -> Option<Fatal> {
        if !self.failed() {
            return None;
        }
        self.fatal.lock().expect("fatal lock").clone()
    }

    /// True once a fatal error is recorded (no lock).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Records a fatal error (the first one is kept) and wakes the consumer thread.
    pub fn fail(&self, f: Fatal) {
        {
            let mut slot = self.fatal.lock().expect("fatal lock");
            if slot.is_none() {
                tracing::error!(error = %f, "fatal: stopping without committing past it");
                self.health.failed(f.to_string());
                *slot = Some(f);
                self.failed.store(true, Ordering::Release);
            }
        }
        self.wake();
    }

    /// Microseconds on a monotonic clock, wrapping every 71 minutes: the tracker's send times
    /// (a difference of two readings is right for spans shorter than that).
    pub fn now_us(&self) -> u32 {
        self.micros_at(Instant::now())
    }

    /// [`Shared::now_us`] at `at` (a time the caller has read already).
    pub fn micros_at(&self, at: Instant) -> u32 {
        at.saturating_duration_since(self.epoch).as_micros() as u32
    }

    /// Registers the calling thread as the consumer thread.
    pub fn register_consumer(&self) {
        let _ = self.consumer.set(std::thread::current());
    }

    /// Wakes the consumer thread if it waits for room.
    pub fn wake(&self) {
        if let Some(t) = self.consumer.get() {
            t.unpark();
        }
    }

    /// Counts an output of `worker` that belongs to no input, about to be queued.
    pub fn untracked_sent(&self, worker: usize) {
        self.untracked[worker].fetch_add(1, Ordering::AcqRel);
    }

    /// Counts an untracked output of `worker` delivered, failed, or never queued.
    pub fn untracked_done(&self, worker: usize) {
        self.untracked[worker].fetch_sub(1, Ordering::AcqRel);
    }

    /// `worker`'s outputs that belong to no input and are not delivered yet.
    pub fn untracked_in_flight(&self, worker: usize) -> usize {
        self.untracked[worker].load(Ordering::Acquire)
    }

    /// Input records queued at workers or with outputs in flight.
    pub fn in_flight(&self) -> usize {
        self.tracked.load(Ordering::Acquire) + self.queued.load(Ordering::Acquire)
    }

    /// Waits until the workers have dispatched every record handed to them, or `deadline`
    /// passes (false).
    pub fn wait_queued(&self, deadline: Duration) -> bool {
        let start = Instant::now();
        while self.queued.load(Ordering::Acquire) > 0 {
            if start.elapsed() > deadline || self.failed() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Marks an output that was never queued as a failed delivery of its input, which pins the
    /// commit point before that input.
    pub fn not_queued(&self, tok: Token, f: Fatal) {
        self.pin(tok);
        self.fail(f);
    }

    /// Records one output of `tok`'s input as failed and done: its partition's commit point
    /// never passes that input.
    pub fn pin(&self, tok: Token) {
        if let Some((slot, offset)) = tok.input() {
            let mut t = self.tracker.lock().expect("tracker lock");
            t.failed(slot, offset);
            t.delivered(slot, offset);
        }
    }
}

/// The producer's delivery callback: one call per output record.
pub struct DeliveryContext {
    /// Shared state.
    pub shared: Arc<Shared>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, raw: usize) {
        let tok = Token::from_raw(raw);
        if let Some(w) = tok.worker() {
            self.shared.untracked_done(w);
        }
        let input = tok.input();
        if let Err((e, m)) = result {
            let input_words = match input {
                Some((slot, offset)) => describe(slot, offset),
                None => "none: a deadline or digest".into(),
            };
            if let Some((slot, offset)) = input {
                self.shared
                    .tracker
                    .lock()
                    .expect("tracker lock")
                    .failed(slot, offset);
            }
            self.shared.fail(Fatal::Delivery {
                topic: m.topic().to_string(),
                input: input_words,
                error: e.to_string(),
            });
        }
        let Some((slot, offset)) = input else {
            return;
        };
        let done = self
            .shared
            .tracker
            .lock()
            .expect("tracker lock")
            .delivered(slot, offset);
        if let Some(d) = done {
            let acked_us = self.shared.now_us().wrapping_sub(d.sent_us);
            let stats = &self.shared.stats;
            stats.steps.record(Step::ProduceAck, u64::from(acked_us));
            stats.completed(d.event_ms, crate::clock::SystemClock::now());
            self.shared.wake();
        }
    }
}

fn describe(slot: Slot, offset: i64) -> String {
    format!(
        "{:?} partition {} offset {offset}",
        slot.source, slot.partition
    )
}

/// handoff's producer.
pub type OutputProducer = ThreadedProducer<DeliveryContext>;
