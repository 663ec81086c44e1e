//! The stream processor: a Kafka consumer-group member that decodes agent actions, decides them
//! with the matrix, and produces verdicts, escalations and dead letters — at least once.
//!
//! Delivery guarantees, and how they are kept:
//! - Every output of an input record carries a token (partition, offset) to the producer's
//!   delivery callback, which updates the [`tracker::Tracker`]. An input offset is stored for
//!   commit only when every output of it, and of every earlier offset of its partition, is
//!   delivered. A delivery that fails for good stops the process without committing past it.
//! - The producer is idempotent; escalation ids are deterministic, so a re-delivery after a crash
//!   is recognisable.
//! - On revocation, the rebalance callback flushes the producer, commits the revoked partitions'
//!   commit points synchronously, and hands their session state back.
//! - On SIGTERM/SIGINT: stop consuming, drain within `pipeline.shutdown_deadline`, flush, commit,
//!   return.

pub mod process;
pub mod stats;
pub mod tracker;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::kafka;
use crate::matrix::Matrix;
use process::{Input, Outcome, Output, Processor, Stage};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message};
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use stats::Stats;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracker::{slot, token, unslot, untoken, Tracker, UNTRACKED};

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Kafka could not be reached, a client could not be built, or the topics are wrong.
    #[error(transparent)]
    Kafka(#[from] crate::kafka::Error),
    /// An output could not be delivered and librdkafka gave up: nothing past it is committed.
    #[error("delivery failed for good, stopping without committing past it: {0}")]
    Delivery(String),
    /// The shipped schemas could not be loaded.
    #[error(transparent)]
    Codec(#[from] crate::event::CodecError),
    /// Draining did not finish within the deadline; undelivered work will be re-processed.
    #[error("shutdown deadline of {0:?} passed with {1} input record(s) still in flight")]
    DrainTimeout(Duration, usize),
}

/// State shared by the processing loop and librdkafka's callbacks.
struct Shared {
    /// Input records handed to workers and not yet dispatched to the producer.
    queued: std::sync::atomic::AtomicUsize,
    tracker: Mutex<Tracker>,
    notify: tokio::sync::Notify,
    fatal: Mutex<Option<String>>,
    revoked: Mutex<Vec<i32>>,
    stats: Arc<Stats>,
}

impl Shared {
    fn fatal(&self) -> Option<String> {
        self.fatal.lock().expect("lock").clone()
    }
}

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// The producer's delivery callback: one call per output record.
struct DeliveryContext {
    shared: Arc<Shared>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, token: usize) {
        let (partition, offset) = untoken(token);
        let done = {
            let mut t = self.shared.tracker.lock().expect("tracker lock");
            if let Err((e, m)) = result {
                t.failed(partition, offset);
                let mut f = self.shared.fatal.lock().expect("lock");
                if f.is_none() {
                    *f = Some(format!(
                        "to topic {} (input partition {partition} offset {offset}): {e}",
                        m.topic()
                    ));
                }
            }
            t.delivered(partition, offset)
        };
        if let Some(d) = done {
            self.shared.stats.completed(d.event_ms, now_ms());
        }
        self.shared.notify.notify_one();
    }
}

type Out = ThreadedProducer<DeliveryContext>;

/// Work for a worker thread.
enum Job {
    /// An input record of a partition the worker owns.
    Record(rdkafka::message::OwnedMessage),
    /// A partition was revoked: drop its state.
    Forget(i32),
    /// Partitions were assigned: restore their state before their records come.
    Assign(Vec<i32>),
}

/// The consumer's rebalance handling.
struct GroupContext {
    shared: Arc<Shared>,
    producer: Arc<Out>,
    drain: Duration,
    workers: Mutex<Vec<std::sync::mpsc::Sender<Job>>>,
    input_topic: String,
    decisions_topic: String,
}

impl GroupContext {
    fn source(&self, topic: &str) -> u8 {
        source(topic, &self.input_topic)
    }
}

/// Waits until the workers have dispatched every record handed to them, or `deadline` passes.
fn wait_queued(shared: &Shared, deadline: Duration) -> bool {
    let start = Instant::now();
    while shared.queued.load(std::sync::atomic::Ordering::Acquire) > 0 {
        if start.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(topic) = statistics.topics.get(&self.input_topic) else {
            return;
        };
        let lag = &self.shared.stats.metrics.consumer_lag;
        for (id, p) in &topic.partitions {
            // librdkafka reports -1 for partitions it does not consume (and the internal "UA").
            if *id >= 0 && p.consumer_lag >= 0 {
                lag.with_label_values(&[&id.to_string()])
                    .set(p.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        // Drain: the workers dispatch what they hold, then every output is delivered (or the
        // deadline passes).
        if !wait_queued(&self.shared, self.drain) {
            tracing::warn!("revocation: workers did not empty their queues in time");
        }
        if let Err(e) = self.producer.flush(Timeout::After(self.drain)) {
            tracing::warn!(error = %e, "revocation: producer flush did not finish; undelivered work will be re-processed");
        }
        let mut commit = TopicPartitionList::new();
        let mut tracker = self.shared.tracker.lock().expect("tracker lock");
        for el in tpl.elements() {
            if let Some(point) = tracker.commit_point(slot(self.source(el.topic()), el.partition()))
            {
                let _ =
                    commit.add_partition_offset(el.topic(), el.partition(), Offset::Offset(point));
            }
        }
        if commit.count() > 0 {
            if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                tracing::warn!(error = %e, "revocation: commit failed; the next owner re-processes from the last commit");
            }
        }
        let mut revoked = self.shared.revoked.lock().expect("lock");
        let workers = self.workers.lock().expect("lock");
        for el in tpl.elements() {
            let key = slot(self.source(el.topic()), el.partition());
            let left = tracker.forget(key);
            revoked.push(key);
            if el.topic() != self.input_topic {
                continue;
            }
            let _ = self
                .shared
                .stats
                .metrics
                .consumer_lag
                .remove_label_values(&[&el.partition().to_string()]);
            if !workers.is_empty() {
                let w = el.partition() as usize % workers.len();
                let _ = workers[w].send(Job::Forget(el.partition()));
            }
            tracing::info!(
                partition = el.partition(),
                undelivered = left,
                "partition revoked: drained and committed"
            );
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let of = |topic: &str| -> Vec<i32> {
                tpl.elements()
                    .iter()
                    .filter(|e| e.topic() == topic)
                    .map(|e| e.partition())
                    .collect()
            };
            let parts = of(&self.input_topic);
            let decisions = of(&self.decisions_topic);
            if parts != decisions {
                tracing::warn!(input = ?parts, decisions = ?decisions, "input and decision partitions differ: decisions for another member's partitions are ignored there (use the range assignor)");
            }
            tracing::info!(partitions = ?parts, "partitions assigned");
            // Sent from inside the consumer's poll, so each worker restores before it sees any
            // record of these partitions.
            let workers = self.workers.lock().expect("lock");
            if !workers.is_empty() {
                let mut by_worker: Vec<Vec<i32>> = vec![Vec::new(); workers.len()];
                for p in parts {
                    by_worker[p as usize % workers.len()].push(p);
                }
                for (w, ps) in by_worker.into_iter().enumerate() {
                    if !ps.is_empty() {
                        let _ = workers[w].send(Job::Assign(ps));
                    }
                }
            }
        }
    }
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Counters at the end.
    pub stats: stats::Snapshot,
}

/// A running pipeline's handle on its statistics.
pub type StatsHandle = Arc<Stats>;

/// Runs handoff until `shutdown` resolves or a fatal error. `on_start` receives the statistics
/// handle (the demo displays it).
pub async fn run(
    settings: &Settings,
    matrix: Arc<Matrix>,
    shutdown: impl Future<Output = ()>,
    on_start: impl FnOnce(StatsHandle),
) -> Result<RunReport, PipelineError> {
    run_with_clock(settings, matrix, Arc::new(SystemClock), shutdown, on_start).await
}

/// [`run`] with time from `clock` (a virtual clock in drills and tests).
pub async fn run_with_clock(
    settings: &Settings,
    matrix: Arc<Matrix>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
    on_start: impl FnOnce(StatsHandle),
) -> Result<RunReport, PipelineError> {
    // Parse the schemas once up front so a defect surfaces here, not in a worker. The workers'
    // processors share its rate limits and digests.
    let digests = Processor::new(settings, matrix.clone())?.digests();
    let s = settings.clone();
    run_stage(
        settings,
        move || {
            Processor::new(&s, matrix.clone())
                .expect("checked above")
                .with_digests(digests.clone())
        },
        clock,
        shutdown,
        on_start,
    )
    .await
}

/// Runs any [`Stage`] with handoff's Kafka machinery: consumer group, delivery tracking,
/// offsets stored after delivery, revocation and shutdown handling.
pub async fn run_stage<S: Stage + 'static>(
    settings: &Settings,
    make_stage: impl Fn() -> S,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
    on_start: impl FnOnce(StatsHandle),
) -> Result<RunReport, PipelineError> {
    let deadline = settings.pipeline.shutdown_deadline;
    {
        let s = settings.clone();
        tokio::task::spawn_blocking(move || crate::kafka::admin::wait_reachable(&s))
            .await
            .expect("the reachability check does not panic")?;
    }
    let processor = make_stage();
    if settings.kafka.create_topics {
        let mut topics = vec![
            settings.topics.input.clone(),
            settings.topics.decisions.clone(),
        ];
        topics.extend(processor.topics().iter().cloned());
        crate::kafka::admin::ensure_topics(settings, &topics).await?;
    }
    let changelog = processor.changelog().map(|i| processor.topics()[i].clone());
    crate::kafka::admin::check_copartitioned(settings, changelog.as_deref())?;
    let stats = Arc::new(Stats::new(
        processor.role_names(),
        &processor.families(),
        &processor.label(),
    ));
    let shared = Arc::new(Shared {
        queued: std::sync::atomic::AtomicUsize::new(0),
        tracker: Mutex::new(Tracker::new()),
        notify: tokio::sync::Notify::new(),
        fatal: Mutex::new(None),
        revoked: Mutex::new(Vec::new()),
        stats: stats.clone(),
    });

    let producer: Arc<Out> = Arc::new(
        kafka::client_config(&settings.kafka, kafka::Role::Producer)
            .create_with_context(DeliveryContext {
                shared: shared.clone(),
            })
            .map_err(kafka::Error::client("producer"))?,
    );
    let cc = kafka::client_config(&settings.kafka, kafka::Role::Member);
    let consumer: StreamConsumer<GroupContext> = cc
        .create_with_context(GroupContext {
            shared: shared.clone(),
            producer: producer.clone(),
            drain: deadline,
            workers: Mutex::new(Vec::new()),
            input_topic: settings.topics.input.clone(),
            decisions_topic: settings.topics.decisions.clone(),
        })
        .map_err(kafka::Error::client("consumer"))?;
    consumer
        .subscribe(&[&settings.topics.input, &settings.topics.decisions])
        .map_err(kafka::Error::client("subscribe"))?;
    tracing::info!(
        input = %settings.topics.input,
        group = %settings.kafka.group_id,
        stage = %processor.label(),
        "handoff is running"
    );
    on_start(stats.clone());

    let topics: Vec<String> = processor.topics().to_vec();
    let label = processor.label();
    drop(processor);
    // Workers: each owns the partitions `p % workers == i`, in order, with its own stage.
    let n_workers = settings.pipeline.workers.max(1);
    let mut senders = Vec::with_capacity(n_workers);
    let mut handles = Vec::with_capacity(n_workers);
    for i in 0..n_workers {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        senders.push(tx);
        let mut stage = make_stage();
        stage.attach(stats.clone());
        let (shared, producer, topics) = (shared.clone(), producer.clone(), topics.clone());
        let env = WorkerEnv {
            restore: changelog.clone().map(|topic| kafka::changelog::Reader {
                kafka: settings.kafka.clone(),
                topic,
                timeout: settings.pipeline.shutdown_deadline,
            }),
            tick: settings.pipeline.timer_tick,
            flush_deadline: deadline,
            clock: clock.clone(),
            input_topic: settings.topics.input.clone(),
        };
        handles.push(
            std::thread::Builder::new()
                .name(format!("handoff-worker-{i}"))
                .spawn(move || worker(stage, rx, &shared, &producer, &topics, &env))
                .expect("a worker thread"),
        );
    }
    *consumer.context().workers.lock().expect("lock") = senders.clone();
    tracing::debug!(workers = n_workers, stage = %label, "workers started");

    let max_in_flight = settings.pipeline.max_in_flight;
    let mut store_tick = tokio::time::interval(settings.pipeline.offset_store_interval);
    store_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stored: std::collections::HashMap<i32, i64> = Default::default();
    tokio::pin!(shutdown);
    let mut failure: Option<PipelineError> = None;
    let mut progress_tick = tokio::time::interval(Duration::from_secs(10));
    progress_tick.tick().await;
    let mut last_consumed = 0u64;

    loop {
        if let Some(f) = shared.fatal() {
            failure = Some(PipelineError::Delivery(f));
            break;
        }
        for p in shared.revoked.lock().expect("lock").drain(..) {
            stored.remove(&p);
        }
        let busy = shared.tracker.lock().expect("lock").in_flight()
            + shared.queued.load(std::sync::atomic::Ordering::Acquire)
            >= max_in_flight;
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            _ = store_tick.tick() => {
                store_offsets(&consumer, &shared, (&settings.topics.input, &settings.topics.decisions), &mut stored);
                let in_flight = shared.tracker.lock().expect("lock").in_flight()
                    + shared.queued.load(std::sync::atomic::Ordering::Acquire);
                stats.metrics.in_flight.set(in_flight as i64);
            }
            _ = progress_tick.tick() => {
                let s = stats.snapshot();
                if s.consumed != last_consumed {
                    tracing::info!(
                        consumed = s.consumed,
                        per_second = (s.consumed - last_consumed) / 10,
                        dead_letters = s.dead_letters,
                        in_flight = shared.tracker.lock().expect("lock").in_flight(),
                        e2e_p99_ms = s.e2e_ms[1],
                        "progress"
                    );
                    last_consumed = s.consumed;
                }
            }
            _ = shared.notify.notified(), if busy => {}
            m = consumer.recv(), if !busy => match m {
                Ok(msg) => {
                    stats.consumed();
                    let w = msg.partition().max(0) as usize % n_workers;
                    shared.queued.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    if senders[w].send(Job::Record(msg.detach())).is_err() {
                        shared.queued.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                        failure = Some(PipelineError::Delivery("a worker thread stopped".into()));
                        break;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "consumer error"),
            },
        }
    }

    // Drain, flush, commit.
    let started = Instant::now();
    let drained = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || wait_queued(&shared, deadline))
            .await
            .unwrap_or(false)
    };
    let flushed = producer.flush(Timeout::After(deadline.saturating_sub(started.elapsed())));
    store_offsets(
        &consumer,
        &shared,
        (&settings.topics.input, &settings.topics.decisions),
        &mut stored,
    );
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing new to commit is reported as an error by librdkafka; it is not one here.
        if !matches!(e, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) {
            tracing::warn!(error = %e, "final commit failed");
        }
    }
    let left = shared.tracker.lock().expect("lock").in_flight();
    tracing::info!(
        drained_in_ms = started.elapsed().as_millis() as u64,
        in_flight = left,
        "stopped"
    );
    if let Some(f) = failure.or_else(|| shared.fatal().map(PipelineError::Delivery)) {
        return Err(f);
    }
    // Workers stop when their queues close.
    consumer.context().workers.lock().expect("lock").clear();
    drop(senders);
    for h in handles {
        let _ = h.join();
    }
    if !drained || flushed.is_err() || left > 0 {
        return Err(PipelineError::DrainTimeout(deadline, left));
    }
    Ok(RunReport {
        stats: stats.snapshot(),
    })
}

/// The tracker's input topic number of a record's topic: 0 for the agent actions, 1 for the
/// human decisions (see [`tracker::slot`]).
fn source(topic: &str, input_topic: &str) -> u8 {
    u8::from(topic != input_topic)
}

/// What a worker needs besides its stage and queue.
struct WorkerEnv {
    restore: Option<kafka::changelog::Reader>,
    tick: Duration,
    flush_deadline: Duration,
    clock: Arc<dyn Clock>,
    input_topic: String,
}

/// A worker: decodes, decides and sends the records of the partitions it owns, in order; on
/// assignment it restores their state first; every `tick` it fires the deadlines due.
fn worker<S: Stage>(
    mut stage: S,
    jobs: std::sync::mpsc::Receiver<Job>,
    shared: &Shared,
    producer: &Out,
    topics: &[String],
    env: &WorkerEnv,
) {
    use std::sync::atomic::Ordering;
    use std::sync::mpsc::RecvTimeoutError;
    let mut outputs: Vec<Output> = Vec::with_capacity(8);
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let mut next_tick = Instant::now() + env.tick;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        let job = match jobs.recv_timeout(wait) {
            Ok(j) => Some(j),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + env.tick;
            outputs.clear();
            stage.tick(env.clock.now_ms(), &mut outputs);
            if !outputs.is_empty() {
                send_all(
                    shared,
                    producer,
                    topics,
                    &mut outputs,
                    UNTRACKED,
                    env.flush_deadline,
                );
            }
            if stage.awaits_delivery() {
                // Digests: their items leave the sessions' queues only once delivered.
                match producer.flush(Timeout::After(env.flush_deadline)) {
                    Ok(()) if shared.fatal().is_none() => stage.delivered(),
                    Ok(()) => {}
                    Err(e) => {
                        shared
                            .fatal
                            .lock()
                            .expect("lock")
                            .get_or_insert(format!("digest delivery did not finish: {e}"));
                    }
                }
            }
        }
        let Some(job) = job else { continue };
        // One span per batch: the jobs waiting now, up to BATCH records, with their counts
        // (at debug level, so nothing is logged per batch or per event at info).
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
        let mut next = Some(job);
        while let Some(job) = next {
            match job {
                Job::Forget(p) => stage.forget_partition(p),
                Job::Assign(parts) => restore(&mut stage, &parts, shared, env),
                Job::Record(msg) => {
                    process_record(
                        &mut stage,
                        &msg,
                        shared,
                        producer,
                        topics,
                        env,
                        &mut outputs,
                        &mut headers,
                        &mut counts,
                    );
                    shared.queued.fetch_sub(1, Ordering::AcqRel);
                    shared.notify.notify_one();
                }
            }
            next = if counts.records < BATCH {
                jobs.try_recv().ok()
            } else {
                None
            };
        }
        if counts.records > 0 {
            span.record("records", counts.records)
                .record("decided", counts.decided)
                .record("dead_letters", counts.dead_letters)
                .record("decisions", counts.decisions)
                .record("outputs", counts.outputs);
        }
        drop(entered);
    }
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

/// Restores the state of newly assigned partitions from the changelog.
fn restore<S: Stage>(stage: &mut S, parts: &[i32], shared: &Shared, env: &WorkerEnv) {
    let Some(r) = &env.restore else { return };
    match r.read(parts) {
        Ok(by_partition) => {
            for (p, records) in by_partition {
                stage.restore(p, records);
            }
        }
        Err(e) => {
            // Without its state a partition would re-open escalations and forget deadlines:
            // stop rather than decide wrongly.
            shared.fatal.lock().expect("lock").get_or_insert(format!(
                "cannot restore state of partitions {parts:?} from {}: {e}",
                r.topic
            ));
            shared.notify.notify_one();
        }
    }
}

/// Decodes, decides and sends one record.
#[allow(clippy::too_many_arguments)]
fn process_record<S: Stage>(
    stage: &mut S,
    msg: &rdkafka::message::OwnedMessage,
    shared: &Shared,
    producer: &Out,
    topics: &[String],
    env: &WorkerEnv,
    outputs: &mut Vec<Output>,
    headers: &mut Vec<(String, Vec<u8>)>,
    counts: &mut BatchCounts,
) {
    let stats = &shared.stats;
    let started = Instant::now();
    headers.clear();
    if let Some(h) = msg.headers() {
        for Header { key, value } in h.iter() {
            headers.push((
                key.to_string(),
                value.map(<[u8]>::to_vec).unwrap_or_default(),
            ));
        }
    }
    outputs.clear();
    let input = Input {
        topic: msg.topic(),
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key(),
        payload: msg.payload(),
        headers,
    };
    let source = source(msg.topic(), &env.input_topic);
    let outcome = stage.process(input, env.clock.now_ms(), outputs);
    counts.records += 1;
    counts.outputs += outputs.len() as u64;
    match &outcome {
        Outcome::Decided { .. } => counts.decided += 1,
        Outcome::DeadLetter { .. } => counts.dead_letters += 1,
        Outcome::HumanDecision => counts.decisions += 1,
    }
    match &outcome {
        Outcome::Decided {
            level,
            family,
            roles,
            triggers,
            ..
        } => stats.decided(
            *level,
            *family,
            roles,
            triggers,
            started.elapsed().as_micros() as u64,
        ),
        Outcome::DeadLetter { reason } => stats.dead_letter(reason, msg.partition(), msg.offset()),
        Outcome::HumanDecision => {}
    }
    // Latency is measured from the record's Kafka timestamp when it has one (the moment it
    // was produced), else from the event's own time.
    let event_ms = match (msg.timestamp().to_millis(), &outcome) {
        (_, Outcome::HumanDecision) => 0,
        (Some(ts), _) if ts > 0 => ts,
        (_, Outcome::Decided { event_ms, .. }) => *event_ms,
        _ => 0,
    };
    let key = slot(source, msg.partition());
    shared.tracker.lock().expect("lock").dispatched(
        key,
        msg.offset(),
        outputs.len() as u32,
        event_ms,
    );
    let tok = token(key, msg.offset());
    send_all(shared, producer, topics, outputs, tok, env.flush_deadline);
}

/// Sends `outputs` with delivery token `tok`: first the ordinary ones, then — once those are
/// delivered — the deferred ones.
fn send_all(
    shared: &Shared,
    producer: &Out,
    topics: &[String],
    outputs: &mut Vec<Output>,
    tok: usize,
    flush_deadline: Duration,
) {
    use std::sync::atomic::Ordering;
    let stats = &shared.stats;
    stats
        .produced
        .fetch_add(outputs.len() as u64, Ordering::Relaxed);
    stats.produced_bytes.fetch_add(
        outputs.iter().map(|o| o.payload.len() as u64).sum(),
        Ordering::Relaxed,
    );
    let deferred: Vec<Output> = if outputs.iter().any(|o| o.deferred) {
        let (d, now): (Vec<Output>, Vec<Output>) = outputs.drain(..).partition(|o| o.deferred);
        *outputs = now;
        d
    } else {
        Vec::new()
    };
    let (key, offset) = untoken(tok);
    let fail = |topic: &str, e: &dyn std::fmt::Display| {
        // Not queued, so no delivery callback will come: record it as a failed delivery,
        // which pins the commit point before this offset.
        if tok != UNTRACKED {
            let mut t = shared.tracker.lock().expect("lock");
            t.failed(key, offset);
            t.delivered(key, offset);
        }
        shared
            .fatal
            .lock()
            .expect("lock")
            .get_or_insert(format!("cannot queue a record for {topic}: {e}"));
    };
    let had_effects = !outputs.is_empty();
    for o in outputs.drain(..) {
        let topic = &topics[o.topic];
        if let Err(e) = send(producer, topic, o, tok) {
            fail(topic, &e);
        }
    }
    if deferred.is_empty() {
        return;
    }
    if had_effects {
        // Wait for the effects to be delivered: for an input record, only its own outputs
        // (its tracker entry counts down to the deferred ones); for timer outputs, a flush.
        let delivered = if tok == UNTRACKED {
            producer
                .flush(Timeout::After(flush_deadline))
                .map_err(|e| e.to_string())
        } else {
            let start = Instant::now();
            loop {
                let left = shared.tracker.lock().expect("lock").remaining(key, offset);
                if left.is_none_or(|n| n as usize <= deferred.len()) {
                    break Ok(());
                }
                if start.elapsed() > flush_deadline {
                    break Err(format!("not delivered within {flush_deadline:?}"));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        };
        if let Err(e) = delivered {
            fail("(the effects before a state write)", &e);
            return;
        }
        if shared.fatal().is_some() {
            // An effect failed: do not record it as done.
            return;
        }
    }
    for o in deferred {
        let topic = &topics[o.topic];
        if let Err(e) = send(producer, topic, o, tok) {
            fail(topic, &e);
        }
    }
}

fn send(
    producer: &Out,
    topic: &str,
    o: Output,
    tok: usize,
) -> Result<(), kafka::record::QueueError> {
    kafka::record::queue(
        kafka::record::to_record(topic, &o, tok),
        |r| producer.send(r),
        || std::thread::sleep(Duration::from_millis(1)),
        None,
    )
}

fn store_offsets(
    consumer: &StreamConsumer<GroupContext>,
    shared: &Shared,
    topics: (&str, &str),
    stored: &mut std::collections::HashMap<i32, i64>,
) {
    let points = shared.tracker.lock().expect("lock").commit_points();
    let mut tpl = TopicPartitionList::new();
    for (key, point) in points {
        if stored.get(&key) != Some(&point) {
            let (source, p) = unslot(key);
            let topic = if source == 0 { topics.0 } else { topics.1 };
            let _ = tpl.add_partition_offset(topic, p, Offset::Offset(point));
            stored.insert(key, point);
        }
    }
    if tpl.count() > 0 {
        if let Err(e) = consumer.store_offsets(&tpl) {
            tracing::debug!(error = %e, "storing offsets (partition no longer assigned?)");
        }
    }
}
