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

pub mod fleet;
pub mod process;
pub mod stats;
pub mod tracker;

use crate::config::Settings;
use crate::error::{Classify, ErrorClass};
use crate::matrix::Matrix;
use process::{Input, Outcome, Output, Processor, Stage};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use stats::Stats;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracker::{token, untoken, Tracker};

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The brokers did not answer.
    #[error("cannot reach Kafka at {bootstrap} within {timeout:?}: {source}")]
    Unreachable {
        /// Bootstrap servers.
        bootstrap: String,
        /// How long we waited.
        timeout: Duration,
        /// The client's error.
        source: KafkaError,
    },
    /// A Kafka client could not be created or used.
    #[error("kafka {what}: {source}")]
    Kafka {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        source: KafkaError,
    },
    /// A topic could not be created.
    #[error("cannot create topic {topic}: {message}")]
    CreateTopic {
        /// Topic.
        topic: String,
        /// Broker's answer.
        message: String,
    },
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

impl Classify for PipelineError {
    fn class(&self) -> ErrorClass {
        match self {
            PipelineError::Unreachable { .. } => ErrorClass::Retry,
            _ => ErrorClass::Fatal,
        }
    }
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
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
}

/// The consumer's rebalance handling.
struct GroupContext {
    shared: Arc<Shared>,
    producer: Arc<Out>,
    drain: Duration,
    workers: Mutex<Vec<std::sync::mpsc::Sender<Job>>>,
    input_topic: String,
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
            if let Some(point) = tracker.commit_point(el.partition()) {
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
            let left = tracker.forget(el.partition());
            revoked.push(el.partition());
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
            let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(partitions = ?parts, "partitions assigned");
        }
    }
}

fn client_config(settings: &Settings, role: &str) -> ClientConfig {
    let k = &settings.kafka;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.bootstrap_servers);
    for (key, v) in &k.common {
        c.set(key, v);
    }
    let extra = if role == "consumer" {
        &k.consumer
    } else {
        &k.producer
    };
    for (key, v) in extra {
        c.set(key, v);
    }
    c
}

/// Checks that the brokers answer, within `pipeline.connect_timeout`.
pub fn check_reachable(settings: &Settings) -> Result<(), PipelineError> {
    let client: rdkafka::producer::BaseProducer = client_config(settings, "producer")
        .create()
        .map_err(|source| PipelineError::Kafka {
            what: "client configuration",
            source,
        })?;
    client
        .client()
        .fetch_metadata(None, settings.pipeline.connect_timeout)
        .map(|_| ())
        .map_err(|source| PipelineError::Unreachable {
            bootstrap: settings.kafka.bootstrap_servers.clone(),
            timeout: settings.pipeline.connect_timeout,
            source,
        })
}

/// Creates the missing topics among `topics`.
pub async fn ensure_topics(settings: &Settings, topics: &[String]) -> Result<(), PipelineError> {
    let admin: AdminClient<DefaultClientContext> = client_config(settings, "producer")
        .create()
        .map_err(|source| PipelineError::Kafka {
            what: "admin client",
            source,
        })?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            NewTopic::new(
                t,
                settings.kafka.partitions,
                TopicReplication::Fixed(settings.kafka.replication_factor),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(settings.pipeline.connect_timeout));
    let results = admin
        .create_topics(new.iter(), &opts)
        .await
        .map_err(|source| PipelineError::Kafka {
            what: "create topics",
            source,
        })?;
    for r in results {
        match r {
            Ok(t) => tracing::info!(topic = %t, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(PipelineError::CreateTopic {
                    topic,
                    message: code.to_string(),
                })
            }
        }
    }
    Ok(())
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
    // Parse the schemas once up front so a defect surfaces here, not in a worker.
    Processor::new(settings, matrix.clone())?;
    let s = settings.clone();
    run_stage(
        settings,
        move || Processor::new(&s, matrix.clone()).expect("checked above"),
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
    shutdown: impl Future<Output = ()>,
    on_start: impl FnOnce(StatsHandle),
) -> Result<RunReport, PipelineError> {
    let deadline = settings.pipeline.shutdown_deadline;
    check_reachable(settings)?;
    let processor = make_stage();
    if settings.kafka.create_topics {
        let mut topics = vec![settings.topics.input.clone()];
        topics.extend(processor.topics().iter().cloned());
        ensure_topics(settings, &topics).await?;
    }
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

    let mut pc = client_config(settings, "producer");
    pc.set("enable.idempotence", "true");
    if !settings.kafka.producer.contains_key("linger.ms") {
        pc.set("linger.ms", "5");
    }
    let producer: Arc<Out> = Arc::new(
        pc.create_with_context(DeliveryContext {
            shared: shared.clone(),
        })
        .map_err(|source| PipelineError::Kafka {
            what: "producer",
            source,
        })?,
    );

    let mut cc = client_config(settings, "consumer");
    cc.set("group.id", &settings.kafka.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set(
            "session.timeout.ms",
            settings.kafka.session_timeout.as_millis().to_string(),
        );
    if !settings.kafka.consumer.contains_key("auto.offset.reset") {
        cc.set("auto.offset.reset", "earliest");
    }
    if !settings
        .kafka
        .consumer
        .contains_key("auto.commit.interval.ms")
    {
        // Stored offsets are committed every second: after a crash, at most about a second of
        // work is processed again.
        cc.set("auto.commit.interval.ms", "1000");
    }
    if !settings.kafka.consumer.contains_key("fetch.wait.max.ms") {
        // Some brokers (tansu among them) hold a fetch for its whole maximum wait even when
        // records arrive: keep it short so decisions are not delayed by up to 500 ms.
        cc.set("fetch.wait.max.ms", "20");
    }
    let consumer: StreamConsumer<GroupContext> = cc
        .create_with_context(GroupContext {
            shared: shared.clone(),
            producer: producer.clone(),
            drain: deadline,
            workers: Mutex::new(Vec::new()),
            input_topic: settings.topics.input.clone(),
        })
        .map_err(|source| PipelineError::Kafka {
            what: "consumer",
            source,
        })?;
    consumer
        .subscribe(&[&settings.topics.input])
        .map_err(|source| PipelineError::Kafka {
            what: "subscribe",
            source,
        })?;
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
        let stage = make_stage();
        let (shared, producer, topics) = (shared.clone(), producer.clone(), topics.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("handoff-worker-{i}"))
                .spawn(move || worker(stage, rx, &shared, &producer, &topics))
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
                store_offsets(&consumer, &shared, &settings.topics.input, &mut stored);
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
    store_offsets(&consumer, &shared, &settings.topics.input, &mut stored);
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

/// A worker: decodes, decides and sends the records of the partitions it owns, in order.
fn worker<S: Stage>(
    mut stage: S,
    jobs: std::sync::mpsc::Receiver<Job>,
    shared: &Shared,
    producer: &Out,
    topics: &[String],
) {
    use std::sync::atomic::Ordering;
    let stats = &shared.stats;
    let mut outputs: Vec<Output> = Vec::with_capacity(8);
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    while let Ok(job) = jobs.recv() {
        let msg = match job {
            Job::Forget(p) => {
                stage.forget_partition(p);
                continue;
            }
            Job::Record(m) => m,
        };
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
            headers: &headers,
        };
        let outcome = stage.process(input, now_ms(), &mut outputs);
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
            Outcome::DeadLetter { reason } => {
                stats.dead_letter(reason, msg.partition(), msg.offset())
            }
        }
        // Latency is measured from the record's Kafka timestamp when it has one (the moment it
        // was produced), else from the event's own time.
        let event_ms = match (msg.timestamp().to_millis(), outcome) {
            (Some(ts), _) if ts > 0 => ts,
            (_, Outcome::Decided { event_ms, .. }) => event_ms,
            _ => 0,
        };
        shared.tracker.lock().expect("lock").dispatched(
            msg.partition(),
            msg.offset(),
            outputs.len() as u32,
            event_ms,
        );
        stats
            .produced
            .fetch_add(outputs.len() as u64, Ordering::Relaxed);
        stats.produced_bytes.fetch_add(
            outputs.iter().map(|o| o.payload.len() as u64).sum(),
            Ordering::Relaxed,
        );
        let tok = token(msg.partition(), msg.offset());
        for o in outputs.drain(..) {
            let topic = &topics[o.topic];
            if let Err(e) = send(producer, topic, o, tok) {
                // Not queued, so no delivery callback will come: record it as a failed
                // delivery, which pins the commit point before this offset.
                let mut t = shared.tracker.lock().expect("lock");
                t.failed(msg.partition(), msg.offset());
                t.delivered(msg.partition(), msg.offset());
                shared
                    .fatal
                    .lock()
                    .expect("lock")
                    .get_or_insert(format!("cannot queue a record for {topic}: {e}"));
            }
        }
        shared.queued.fetch_sub(1, Ordering::AcqRel);
        shared.notify.notify_one();
    }
}

fn send(producer: &Out, topic: &str, o: Output, tok: usize) -> Result<(), KafkaError> {
    let mut hs = OwnedHeaders::new_with_capacity(o.headers.len());
    for (k, v) in &o.headers {
        hs = hs.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    let mut record = BaseRecord::with_opaque_to(topic, tok)
        .payload(&o.payload)
        .headers(hs);
    if let Some(k) = &o.key {
        record = record.key(k);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

fn store_offsets(
    consumer: &StreamConsumer<GroupContext>,
    shared: &Shared,
    topic: &str,
    stored: &mut std::collections::HashMap<i32, i64>,
) {
    let points = shared.tracker.lock().expect("lock").commit_points();
    let mut tpl = TopicPartitionList::new();
    for (p, point) in points {
        if stored.get(&p) != Some(&point) {
            let _ = tpl.add_partition_offset(topic, p, Offset::Offset(point));
            stored.insert(p, point);
        }
    }
    if tpl.count() > 0 {
        if let Err(e) = consumer.store_offsets(&tpl) {
            tracing::debug!(error = %e, "storing offsets (partition no longer assigned?)");
        }
    }
}
