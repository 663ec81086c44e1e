//! A worker thread: decodes, decides and sends the records of the partitions it owns, in
//! order; on assignment it restores their state first; every `tick` it fires what is due.

use super::delivery::{Fatal, OutputProducer, Shared};
use super::process::{Input, Outcome, Stage};
use super::steps::{LocalSteps, Step};
use super::tracker::{Slot, Token};
use crate::clock::Clock;
use crate::kafka;
use crate::output::Output;
use rdkafka::message::{Header, Headers, Message, OwnedMessage};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Work for a worker thread.
pub enum Job {
    /// Input records of partitions the worker owns, in order, each with when the consumer
    /// polled it.
    Records(Vec<(OwnedMessage, Instant)>),
    /// A partition was revoked: drop its state.
    Forget(i32),
    /// Partitions were assigned: restore their state before their records come.
    Assign(Vec<i32>),
}

/// What a worker needs besides its stage.
pub struct WorkerEnv {
    /// Where partitions' state is restored from (none for stateless stages).
    pub restore: Option<kafka::changelog::Reader>,
    /// How often deadlines and digests are looked at.
    pub tick: Duration,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The agent actions topic (the other input is the decisions).
    pub input_topic: String,
    /// This worker's number (it owns the partitions whose `worker_of` is `index`).
    pub index: usize,
}

/// Records per batch span, at most.
const BATCH: u64 = 1024;

/// What one batch did.
#[derive(Default)]
struct BatchCounts {
    records: u64,
    decided: u64,
    dead_letters: u64,
    decisions: u64,
    outputs: u64,
}

/// One worker thread's loop and buffers.
pub struct Worker<S> {
    stage: S,
    shared: Arc<Shared>,
    producer: Arc<OutputProducer>,
    env: WorkerEnv,
    outputs: Vec<Output>,
    headers: Vec<(String, Vec<u8>)>,
    processing: super::steps::LocalTimer,
    decided: super::stats::Decided,
    steps: LocalSteps,
    /// Outputs sent and their bytes, since the last merge.
    sent: (u64, u64),
}

impl<S: Stage> Worker<S> {
    /// A worker running `stage`.
    pub fn new(
        stage: S,
        shared: Arc<Shared>,
        producer: Arc<OutputProducer>,
        env: WorkerEnv,
    ) -> Self {
        let processing = shared.stats.processing.local();
        let steps = shared.stats.steps.local();
        Worker {
            steps,
            decided: Default::default(),
            sent: (0, 0),
            stage,
            shared,
            producer,
            env,
            outputs: Vec::with_capacity(8),
            headers: Vec::new(),
            processing,
        }
    }

    /// Runs until the job queue closes.
    pub fn run(mut self, jobs: Receiver<Job>) {
        let mut next_tick = Instant::now() + self.env.tick;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let job = match jobs.recv_timeout(wait) {
                Ok(j) => Some(j),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            self.shared.health.worker_beat(self.env.index);
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + self.env.tick;
                self.tick();
            }
            if let Some(job) = job {
                self.batch(job, &jobs);
            }
        }
    }

    /// Fires what is due; digests leave the sessions' queues only once delivered.
    fn tick(&mut self) {
        self.outputs.clear();
        let now = self.env.clock.now_ms();
        if let Err(e) = self.stage.tick(now, &mut self.outputs) {
            self.shared.fail(Fatal::Stage(e.to_string()));
            return;
        }
        if !self.outputs.is_empty() {
            self.send_all(Token::untracked(self.env.index));
            self.merge_counts();
        }
        if !self.stage.awaits_delivery() {
            return;
        }
        // Digests leave their queues once delivered; a slow broker is waited for, a failed
        // delivery has stopped the pipeline (see `wait_for`).
        let w = self.env.index;
        if self.wait_for(|| self.shared.untracked_in_flight(w) == 0) {
            self.stage.delivered();
        }
    }

    /// Waits until `done`, however long a slow broker takes; false when a delivery failed
    /// meanwhile. Never fatal by itself: a broker that acknowledges slowly slows handoff down
    /// (its queues fill, the consumer stops polling at `max_in_flight`), and only librdkafka
    /// giving up on a record — after `message.timeout.ms` — stops it.
    /// The worker beats while it waits: waiting for Kafka is not being stuck.
    fn wait_for(&self, done: impl Fn() -> bool) -> bool {
        let mut beat = Instant::now();
        loop {
            if done() {
                return true;
            }
            if self.shared.failed() {
                return false;
            }
            if beat.elapsed() > Duration::from_secs(1) {
                self.shared.health.worker_beat(self.env.index);
                beat = Instant::now();
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The jobs waiting now, up to [`BATCH`] records, in one `batch` span (debug level) with
    /// their counts: nothing is logged per batch or per event at info.
    fn batch(&mut self, first: Job, jobs: &Receiver<Job>) {
        let span = tracing::debug_span!(
            "batch",
            records = tracing::field::Empty,
            decided = tracing::field::Empty,
            dead_letters = tracing::field::Empty,
            decisions = tracing::field::Empty,
            outputs = tracing::field::Empty,
        );
        let entered = span.enter();
        let mut counts = BatchCounts::default();
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Forget(p) => self.stage.forget_partition(p),
                Job::Assign(parts) => {
                    self.restore(&parts);
                    self.shared.health.restored();
                }
                Job::Records(records) => {
                    let n = records.len();
                    for (msg, polled) in &records {
                        self.shared.health.took(self.env.index);
                        let taken = Instant::now();
                        let queued = taken.saturating_duration_since(*polled).as_micros() as u64;
                        self.steps.record(Step::WorkerQueue, queued);
                        self.record(msg, taken, &mut counts);
                    }
                    self.shared.queued.fetch_sub(n, Ordering::AcqRel);
                    self.shared.wake();
                }
            }
            next = if counts.records < BATCH {
                jobs.try_recv().ok()
            } else {
                None
            };
        }
        self.merge_counts();
        if counts.records > 0 {
            span.record("records", counts.records)
                .record("decided", counts.decided)
                .record("dead_letters", counts.dead_letters)
                .record("decisions", counts.decisions)
                .record("outputs", counts.outputs);
        }
        drop(entered);
    }

    /// Adds this worker's counts since the last merge to the shared ones (once per batch: no
    /// shared cache line is written per record).
    fn merge_counts(&mut self) {
        let stats = &self.shared.stats;
        stats.processing.merge(&mut self.processing);
        stats.merge_decided(&mut self.decided);
        stats.steps.merge(&mut self.steps);
        let (outputs, bytes) = std::mem::take(&mut self.sent);
        if outputs > 0 {
            stats.produced.fetch_add(outputs, Ordering::Relaxed);
            stats.produced_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Restores the state of newly assigned partitions from the changelog. Without its state
    /// a partition would re-open escalations and forget deadlines: a failure stops the process
    /// rather than decide wrongly.
    /// Restores the state of `parts` before any of their records is decided. A slow or briefly
    /// absent broker is waited for (the read is tried again, the worker beating meanwhile);
    /// any other failure is fatal: deciding without the state would be wrong.
    fn restore(&mut self, parts: &[i32]) {
        let Some(r) = &self.env.restore else { return };
        let mut pause = Duration::from_millis(500);
        loop {
            match r.read(parts) {
                Ok(by_partition) => {
                    for (p, records) in by_partition {
                        self.stage.restore(p, records);
                    }
                    return;
                }
                Err(e) if kafka::changelog::is_transient(&e) && !self.shared.failed() => {
                    tracing::warn!(error = %e, ?parts, retry_in = ?pause, "state restore: the broker is slow or away; trying again");
                    self.shared.health.worker_beat(self.env.index);
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    return self.shared.fail(Fatal::Restore {
                        partitions: parts.to_vec(),
                        topic: r.topic.clone(),
                        error: e.to_string(),
                    })
                }
            }
        }
    }

    /// Records `msg` as not processed: a failed delivery of it pins its partition's commit
    /// point before it for good.
    fn refuse(&self, msg: &OwnedMessage) {
        let slot = self.slot(msg);
        self.shared
            .tracker
            .lock()
            .expect("tracker lock")
            .dispatched(slot, msg.offset(), 1, 0, self.shared.now_us());
        self.shared.pin(Token::new(slot, msg.offset()));
    }

    /// Decides one record (taken from the queue at `started`), counts it, and sends its
    /// outputs. After a fatal error nothing more is decided (a partition whose state could not
    /// be restored would be decided wrongly): the record is refused, so nothing from it on is
    /// committed.
    fn record(&mut self, msg: &OwnedMessage, started: Instant, counts: &mut BatchCounts) {
        if self.shared.failed() {
            self.refuse(msg);
            return;
        }
        self.headers.clear();
        if let Some(h) = msg.headers() {
            for Header { key, value } in h.iter() {
                self.headers.push((
                    key.to_string(),
                    value.map(<[u8]>::to_vec).unwrap_or_default(),
                ));
            }
        }
        self.outputs.clear();
        let input = Input {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key(),
            payload: msg.payload(),
            headers: &self.headers,
        };
        let outcome = match self
            .stage
            .process(input, self.env.clock.now_ms(), &mut self.outputs)
        {
            Ok(o) => o,
            Err(e) => {
                self.refuse(msg);
                self.shared.fail(Fatal::Stage(e.to_string()));
                return;
            }
        };
        let processed = Instant::now();
        let took = processed.saturating_duration_since(started).as_micros() as u64;
        self.steps.record(Step::Processing, took);
        counts.records += 1;
        counts.outputs += self.outputs.len() as u64;
        self.count(&outcome, msg, took, counts);
        let slot = self.slot(msg);
        // Latency is measured from the record's Kafka timestamp when it has one (the moment
        // it was produced), else from the event's own time.
        let event_ms = match (msg.timestamp().to_millis(), &outcome) {
            (_, Outcome::HumanDecision) => 0,
            (Some(ts), _) if ts > 0 => ts,
            (_, Outcome::Decided { event_ms, .. }) => *event_ms,
            _ => 0,
        };
        self.shared
            .tracker
            .lock()
            .expect("tracker lock")
            .dispatched(
                slot,
                msg.offset(),
                self.outputs.len() as u32,
                event_ms,
                self.shared.micros_at(processed),
            );
        self.send_all(Token::new(slot, msg.offset()));
    }

    /// The tracker's slot of a record.
    fn slot(&self, msg: &OwnedMessage) -> Slot {
        Slot::of(msg.topic(), &self.env.input_topic, msg.partition())
    }

    fn count(
        &mut self,
        outcome: &Outcome,
        msg: &OwnedMessage,
        took_us: u64,
        counts: &mut BatchCounts,
    ) {
        let stats = &self.shared.stats;
        match outcome {
            Outcome::Decided {
                level,
                family,
                triggers,
                ..
            } => {
                counts.decided += 1;
                self.decided.record(*level, *family, triggers);
                self.processing.record(took_us);
            }
            Outcome::DeadLetter { reason } => {
                counts.dead_letters += 1;
                stats.dead_letter(reason, msg.partition(), msg.offset());
            }
            Outcome::HumanDecision => counts.decisions += 1,
            Outcome::Canary => {}
        }
    }

    /// Sends the outputs with delivery token `tok`: first the ordinary ones, then — once those
    /// are delivered — the deferred ones (state writes recording effects as done).
    fn send_all(&mut self, tok: Token) {
        self.sent.0 += self.outputs.len() as u64;
        self.sent.1 += self
            .outputs
            .iter()
            .map(|o| o.payload.len() as u64)
            .sum::<u64>();
        let mut outputs = std::mem::take(&mut self.outputs);
        let deferred: Vec<Output> = if outputs.iter().any(|o| o.deferred) {
            let (d, now): (Vec<Output>, Vec<Output>) = outputs.drain(..).partition(|o| o.deferred);
            outputs = now;
            d
        } else {
            Vec::new()
        };
        let had_effects = !outputs.is_empty();
        self.send(&mut outputs, tok);
        self.outputs = outputs;
        if deferred.is_empty() {
            return;
        }
        if had_effects {
            let waiting = Instant::now();
            let delivered = self.effects_delivered(tok, deferred.len());
            let waited = waiting.elapsed().as_micros() as u64;
            self.steps.record(Step::DeferredWait, waited);
            if !delivered {
                return;
            }
        }
        let mut deferred = deferred;
        self.send(&mut deferred, tok);
    }

    fn send(&self, outputs: &mut Vec<Output>, tok: Token) {
        // The stage's topics as of its last record: a rule change adds or removes role topics.
        let topics = self.stage.topics();
        let untracked = tok.worker();
        for o in outputs.drain(..) {
            let topic = topics.name(o.topic, o.drill);
            if let Some(w) = untracked {
                self.shared.untracked_sent(w);
            }
            // A full queue is waited for as long as the broker takes (back-pressure), until a
            // delivery fails.
            let queued = kafka::record::queue(
                kafka::record::to_record(topic, &o, tok.into_raw()),
                |r| self.producer.send(r).err(),
                || {
                    std::thread::sleep(Duration::from_millis(1));
                    self.shared.health.worker_beat(self.env.index);
                    !self.shared.failed()
                },
            );
            if let Err(e) = queued {
                if let Some(w) = untracked {
                    self.shared.untracked_done(w);
                }
                self.shared.not_queued(
                    tok,
                    Fatal::Queue {
                        topic: topic.to_string(),
                        error: e.to_string(),
                    },
                );
            }
        }
    }

    /// Waits until the effects sent before a state write are delivered: for an input record,
    /// only its own outputs (its tracker entry counts down to the `deferred` ones); for timer
    /// outputs, this worker's untracked ones. False when a delivery failed meanwhile: the state
    /// write is then not sent, and the input's commit point is pinned.
    fn effects_delivered(&self, tok: Token, deferred: usize) -> bool {
        let delivered = match (tok.input(), tok.worker()) {
            (Some((slot, offset)), _) => self.wait_for(|| {
                let left = self
                    .shared
                    .tracker
                    .lock()
                    .expect("tracker lock")
                    .remaining(slot, offset);
                left.is_none_or(|n| n as usize <= deferred)
            }),
            (None, Some(w)) => self.wait_for(|| self.shared.untracked_in_flight(w) == 0),
            (None, None) => unreachable!("a token is an input's or a worker's"),
        };
        if !delivered {
            self.shared.pin(tok);
        }
        // An effect that failed must not be recorded as done.
        delivered && !self.shared.failed()
    }
}
