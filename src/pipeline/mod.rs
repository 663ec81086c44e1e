//! The stream processor: a Kafka consumer-group member that decodes agent actions, decides them
//! with the matrix, and produces verdicts, escalations and dead letters — at least once.
//!
//! - [`consume`]: the consumer thread (poll, hand records to workers, store commit points;
//!   on stop: drain, commit, close within `shutdown_deadline`);
//! - [`rebalance`]: assignment (restore first) and revocation (drain, store, commit, forget);
//! - [`worker`]: the worker threads, each owning its partitions and their state, in order;
//! - [`delivery`]: what they share with the delivery callback, and the typed [`Fatal`] error;
//! - [`tracker`]: which input offsets may be committed.
//!
//! An input offset is stored for commit only when every output of it, and of every earlier
//! offset of its partition, is delivered. A delivery that fails for good stops the process
//! without committing past it.

mod consume;
pub mod delivery;
pub mod health;
pub mod process;
mod rebalance;
pub mod stats;
pub mod steps;
pub mod topics;
pub mod tracker;
mod worker;

pub use consume::Stopped;
pub use delivery::Fatal;
pub use health::Health;
pub use topics::Topics;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::kafka;
use crate::matrix::Rules;
use delivery::{DeliveryContext, OutputProducer, Shared};
use process::{Processor, Stage};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rebalance::GroupContext;
use stats::Stats;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use worker::{Job, Worker, WorkerEnv};

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Kafka could not be reached, a client could not be built, or the topics are wrong.
    #[error(transparent)]
    Kafka(#[from] kafka::Error),
    /// Something failed for good while running: nothing past it was committed.
    #[error("stopped without committing past the failure: {0}")]
    Fatal(Fatal),
    /// The processor could not be built (schemas, the schema registry).
    #[error(transparent)]
    Start(#[from] process::StartError),
    /// The stop did not drain, deliver or commit everything within the deadline.
    #[error(
        "shutdown deadline of {deadline:?} passed: {} input record(s) not committed (they will \
         be processed again){}",
        stopped.in_flight,
        match &stopped.committed {
            Some(Err(e)) => format!("; final commit failed: {e}"),
            _ => String::new(),
        }
    )]
    Unfinished {
        /// `pipeline.shutdown_deadline`.
        deadline: Duration,
        /// What the stop did.
        stopped: Stopped,
    },
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Counters at the end.
    pub stats: stats::Snapshot,
    /// How the stop went.
    pub stopped: Stopped,
}

/// A running pipeline's handle on its statistics.
pub type StatsHandle = Arc<Stats>;

/// What a started pipeline shares: its statistics and its health.
#[derive(Debug, Clone)]
pub struct Running {
    /// Counters and metrics.
    pub stats: StatsHandle,
    /// What `/healthz` and `/readyz` answer.
    pub health: Arc<Health>,
}

/// Runs handoff until `shutdown` resolves or a fatal error. `on_start` receives the statistics
/// handle (the demo displays it).
pub async fn run(
    settings: &Settings,
    rules: Arc<Rules>,
    shutdown: impl Future<Output = ()>,
    on_start: impl FnOnce(Running),
) -> Result<RunReport, PipelineError> {
    run_with_clock(settings, rules, Arc::new(SystemClock), shutdown, on_start).await
}

/// [`run`] with time from `clock` (a virtual clock in drills and tests).
pub async fn run_with_clock(
    settings: &Settings,
    rules: Arc<Rules>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
    on_start: impl FnOnce(Running),
) -> Result<RunReport, PipelineError> {
    // Parse the schemas once up front so a defect surfaces here, not in a worker. The workers'
    // processors share its rate limits and digests, and follow `rules` as they change.
    let (matrix, _) = rules.current();
    let first = Processor::new(settings, matrix)?.following(rules);
    let s = settings.clone();
    run_stage(
        settings,
        move || first.sibling(&s),
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
    on_start: impl FnOnce(Running),
) -> Result<RunReport, PipelineError> {
    let probe = make_stage();
    let topics = probe.topics().all();
    let changelog = probe
        .changelog()
        .map(|t| probe.topics().name(t, false).to_string());
    let label = probe.label();
    let stats = Arc::new(Stats::new(probe.role_names(), &probe.families(), &label));
    drop(probe);
    prepare(settings, &topics, changelog.as_deref()).await?;
    let health = Arc::new(Health::new(
        settings.pipeline.workers.max(1),
        settings.metrics.stuck_after,
    ));
    let workers = settings.pipeline.workers.max(1);
    let shared = Arc::new(Shared::new(stats.clone(), health.clone(), workers));
    let producer: Arc<OutputProducer> = Arc::new(
        kafka::client_config(&settings.kafka, kafka::Role::Producer)
            .create_with_context(DeliveryContext {
                shared: shared.clone(),
            })
            .map_err(kafka::Error::client("producer"))?,
    );
    let consumer = member(settings, &shared, &producer)?;
    tracing::info!(
        input = %settings.topics.input,
        group = %settings.kafka.group_id,
        stage = %label,
        "handoff is running"
    );
    on_start(Running {
        stats: stats.clone(),
        health,
    });
    let env = |index: usize| WorkerEnv {
        restore: changelog.clone().map(|topic| kafka::changelog::Reader {
            kafka: settings.kafka.clone(),
            topic,
            timeout: settings.pipeline.shutdown_deadline,
        }),
        tick: settings.pipeline.timer_tick,
        clock: clock.clone(),
        input_topic: settings.topics.input.clone(),
        index,
    };
    let senders = spawn_workers(workers, |index| {
        let mut stage = make_stage();
        stage.attach(stats.clone());
        Worker::new(stage, shared.clone(), producer.clone(), env(index))
    });
    *consumer.context().workers.lock().expect("workers lock") = senders.clone();
    let consuming = consume::Consuming {
        consumer: Arc::new(consumer),
        shared: shared.clone(),
        producer,
        senders,
        max_in_flight: settings.pipeline.max_in_flight,
        store_every: settings.pipeline.offset_store_interval,
    };
    let (failure, stopped) =
        consume_until(consuming, shutdown, settings.pipeline.shutdown_deadline).await;
    finish(
        failure,
        stopped,
        settings.pipeline.shutdown_deadline,
        &stats,
    )
}

/// Waits until the brokers answer, creates missing topics and checks co-partitioning.
async fn prepare(
    settings: &Settings,
    outputs: &[String],
    changelog: Option<&str>,
) -> Result<(), PipelineError> {
    let s = settings.clone();
    tokio::task::spawn_blocking(move || kafka::admin::wait_reachable(&s))
        .await
        .expect("the reachability check does not panic")?;
    if settings.kafka.create_topics {
        let mut topics = vec![
            settings.topics.input.clone(),
            settings.topics.decisions.clone(),
        ];
        topics.extend(outputs.iter().cloned());
        kafka::admin::ensure_topics(settings, &topics).await?;
    }
    kafka::admin::check_copartitioned(settings, changelog)?;
    Ok(())
}

/// The group member, subscribed to the input and the decisions.
fn member(
    settings: &Settings,
    shared: &Arc<Shared>,
    producer: &Arc<OutputProducer>,
) -> Result<BaseConsumer<GroupContext>, PipelineError> {
    let consumer: BaseConsumer<GroupContext> =
        kafka::client_config(&settings.kafka, kafka::Role::Member)
            .create_with_context(GroupContext {
                shared: shared.clone(),
                producer: producer.clone(),
                drain: settings.pipeline.shutdown_deadline,
                workers: Mutex::new(Vec::new()),
                input_topic: settings.topics.input.clone(),
                decisions_topic: settings.topics.decisions.clone(),
                closing: AtomicBool::new(false),
                revoked: Mutex::new(Vec::new()),
            })
            .map_err(kafka::Error::client("consumer"))?;
    consumer
        .subscribe(&[&settings.topics.input, &settings.topics.decisions])
        .map_err(kafka::Error::client("subscribe"))?;
    Ok(consumer)
}

/// The worker of `workers` that owns `partition`: the one place partitions are spread.
pub(crate) fn worker_of(partition: i32, workers: usize) -> usize {
    partition.max(0) as usize % workers.max(1)
}

/// Starts `n` workers; worker `i` owns the partitions with [`worker_of`] `i`, in order.
fn spawn_workers<S: Stage + 'static>(
    n: usize,
    mut make: impl FnMut(usize) -> Worker<S>,
) -> Vec<std::sync::mpsc::Sender<Job>> {
    (0..n)
        .map(|i| {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            let w = make(i);
            std::thread::Builder::new()
                .name(format!("handoff-worker-{i}"))
                .spawn(move || w.run(rx))
                .expect("a worker thread");
            tx
        })
        .collect()
}

/// Runs the consumer thread until `shutdown` resolves or a fatal error, then stops it within
/// `deadline`. The async side only waits: nothing here blocks the runtime.
async fn consume_until(
    consuming: consume::Consuming,
    shutdown: impl Future<Output = ()>,
    deadline: Duration,
) -> (Option<Fatal>, Stopped) {
    let stop = Arc::new(AtomicBool::new(false));
    let shared = consuming.shared.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("handoff-consumer".into())
        .spawn(move || {
            let failure = consuming.run(&flag);
            let stopped = consuming.stop(deadline);
            let _ = tx.send((failure, stopped));
        })
        .expect("the consumer thread");
    tokio::pin!(rx);
    tokio::select! {
        r = &mut rx => return r.expect("the consumer thread reports"),
        _ = shutdown => {}
    }
    tracing::info!("stop requested: draining");
    shared.health.stopping();
    stop.store(true, Ordering::Release);
    shared.wake();
    rx.await.expect("the consumer thread reports")
}

/// Logs how the stop went, truly, and turns it into the run's result.
fn finish(
    failure: Option<Fatal>,
    stopped: Stopped,
    deadline: Duration,
    stats: &Stats,
) -> Result<RunReport, PipelineError> {
    let committed = match &stopped.committed {
        None => "nothing to commit".to_string(),
        Some(Ok(())) => "committed".to_string(),
        Some(Err(e)) => format!("commit failed: {e}"),
    };
    if stopped.clean() && failure.is_none() {
        tracing::info!(
            took_ms = stopped.took.as_millis() as u64,
            "stopped: drained and {committed}"
        );
    } else {
        tracing::warn!(
            took_ms = stopped.took.as_millis() as u64,
            drained = stopped.drained,
            delivered = stopped.flushed,
            not_committed = stopped.in_flight,
            commit = %committed,
            "stopped, not everything finished: records not committed will be processed again"
        );
    }
    if let Some(f) = failure {
        return Err(PipelineError::Fatal(f));
    }
    if !stopped.clean() {
        return Err(PipelineError::Unfinished { deadline, stopped });
    }
    Ok(RunReport {
        stats: stats.snapshot(),
        stopped,
    })
}
