//! Notifications of escalations, sent by `handoff inbox`: each escalation and each digest on a
//! role topic is announced to the receivers of `[notify]` whose `roles` and `tiers` take it —
//! a signed JSON webhook or a Slack Block Kit message with answer buttons and a link to the
//! inbox.
//!
//! - [`route`]: the notice and the part of it a receiver takes; [`message`], [`slack`]: the
//!   bodies; [`sign`]: Standard Webhooks signatures; [`retry`]: backoff and `Retry-After` —
//!   all pure;
//! - [`engine`]: one task and queue per receiver, at least once per (notice, receiver),
//!   deduplicated by id, retried until delivered or closed (`abandoned`);
//! - [`ledger`]: every attempt on `topics.notifications`, read back at start-up;
//! - [`source`]: the role topics' consumer, committing only what is settled;
//! - [`run`]: all of it, for the inbox command.

pub mod engine;
pub mod ledger;
pub mod message;
pub mod metrics;
pub mod retry;
pub mod route;
pub mod sign;
pub mod slack;
pub mod source;
pub mod transport;

pub use engine::{Engine, EngineConfig, ReceiverSpec};
pub use route::Notice;

use crate::config::Settings;
use crate::matrix::Matrix;
use crate::problems::Problems;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// "Is this escalation id still open?" — the inbox's view. It must answer `true` for an id
/// it has not seen (yet): `false` means known to be closed, and a notice whose every
/// escalation is closed is abandoned.
pub type IsOpen = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// "Which escalations are due a reminder now (ms)?" — the inbox's view: each not acknowledged,
/// past its tier's share of the time to acknowledge (`[notify.reminders]`), not reminded yet,
/// announced by this replica (the predicate: each replica reminds of what it announced), with
/// the time left before its deadline (ms).
pub type DueReminders =
    Arc<dyn Fn(i64, &dyn Fn(&str) -> bool) -> Vec<(crate::event::Escalation, i64)> + Send + Sync>;

/// How often waiting notices are checked for closed escalations.
const SWEEP: Duration = Duration::from_secs(1);
/// Longest wait at shutdown for the ledger's last entries.
const LEDGER_FLUSH: Duration = Duration::from_secs(5);

/// Why notifications cannot run.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Kafka could not be reached or used.
    #[error(transparent)]
    Kafka(#[from] crate::kafka::Error),
    /// `[notify]` does not fit the matrix.
    #[error("[notify] does not fit the matrix:\n{0}")]
    Config(Problems),
    /// The metrics could not be registered (registered twice?).
    #[error("notification metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The shipped schemas do not load (a build defect).
    #[error(transparent)]
    Codec(#[from] crate::event::CodecError),
    /// The consumer thread could not start or failed.
    #[error("notification consumer thread: {0}")]
    Thread(String),
}

/// The role topics of `matrix` under `settings.topics.role_prefix`.
pub fn role_topics(settings: &Settings, matrix: &Matrix) -> Vec<String> {
    matrix
        .roles()
        .iter()
        .map(|r| settings.topics.role_topic(&r.topic))
        .collect()
}

/// Sends notifications until `shutdown` completes: checks `[notify]` against the matrix,
/// registers the metrics into `registry`, waits for Kafka, creates the role and ledger topics
/// (with `kafka.create_topics`), reads the ledger, starts one task per receiver and the role
/// topics' consumer (group `<group_id>-inbox`, its own thread), then commits what is settled
/// and flushes the ledger at shutdown. `settings` must have its secrets resolved
/// (`Settings::with_secrets`); `is_open` is the inbox's view of open escalations (see
/// [`IsOpen`]), `due` of those due a reminder ([`DueReminders`], checked every second). Without
/// receivers it only waits for `shutdown`.
pub async fn run(
    settings: &Settings,
    matrix: Arc<Matrix>,
    (is_open, due): (IsOpen, DueReminders),
    registry: &prometheus::Registry,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NotifyError> {
    let n = &settings.notify;
    if n.receivers.is_empty() {
        tracing::info!("no notification receivers configured: nothing is sent");
        shutdown.await;
        return Ok(());
    }
    let roles: Vec<&str> = matrix.roles().iter().map(|r| r.name.as_str()).collect();
    let mut problems = Problems::default();
    n.check_roles(&roles, &mut problems);
    if !problems.is_empty() {
        return Err(NotifyError::Config(problems));
    }
    let names: Vec<&str> = n.receivers.iter().map(|r| r.name.as_str()).collect();
    let metrics = metrics::register(registry, &names)?;
    let topics = role_topics(settings, &matrix);
    let s = settings.clone();
    blocking(move || crate::kafka::admin::wait_reachable(&s)).await??;
    if settings.kafka.create_topics {
        let mut all = topics.clone();
        all.push(settings.topics.notifications.clone());
        crate::kafka::admin::ensure_topics(settings, &all).await?;
    }
    let s = settings.clone();
    let history = blocking(move || ledger::restore(&s)).await??;
    let kafka_ledger = Arc::new(ledger::KafkaLedger::new(settings)?);
    let is_open_again = is_open.clone();
    let engine = Arc::new(Engine::start(
        engine_config(settings),
        receiver_specs(settings),
        metrics,
        kafka_ledger.clone(),
        is_open,
        &history,
    ));
    let reminding = tokio::spawn(remind(engine.clone(), due, is_open_again));
    let source = source::Source::new(settings, &topics)?;
    tracing::info!(receivers = ?names, topics = ?topics, "notifications running");
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("notify-source".into())
        .spawn(move || {
            source.run(&engine, &flag);
            drop(engine);
            let _ = done_tx.send(());
        })
        .map_err(|e| NotifyError::Thread(e.to_string()))?;
    tokio::select! {
        () = shutdown => {}
        _ = done_rx => tracing::warn!("notification consumer stopped on its own"),
    }
    reminding.abort();
    stop.store(true, std::sync::atomic::Ordering::Release);
    let joined = blocking(move || thread.join()).await?;
    let flushed = kafka_ledger.clone();
    blocking(move || flushed.flush(LEDGER_FLUSH)).await?;
    joined.map_err(|_| NotifyError::Thread("it panicked".into()))?;
    tracing::info!("notifications stopped");
    Ok(())
}

/// Every [`SWEEP`], offers a reminder of each escalation `due` names among those this engine
/// announced (the engine sends each once per receiver: its id is the escalation's with
/// [`route::REMINDER_SUFFIX`]); once a minute, forgets the announced escalations closed since.
async fn remind(engine: Arc<Engine>, due: DueReminders, is_open: IsOpen) {
    let mut every = tokio::time::interval(SWEEP);
    for tick in 0u64.. {
        every.tick().await;
        let mine = |id: &str| engine.announced(id);
        for (x, left_ms) in due(crate::clock::SystemClock::now(), &mine) {
            engine.offer(&Notice::Reminder(Box::new(x), left_ms), || {});
        }
        if tick % 60 == 59 {
            engine.prune_announced(|id| is_open(id));
        }
    }
}

/// The engine's settings from `[notify]` and `[inbox] public_url`.
pub fn engine_config(settings: &Settings) -> EngineConfig {
    EngineConfig {
        backoff_initial: settings.notify.backoff_initial,
        backoff_max: settings.notify.backoff_max,
        links: message::Links::new(&settings.inbox.base_url()),
        sweep: SWEEP,
    }
}

/// Each receiver of `[notify]` with an HTTP client of its timeout.
pub fn receiver_specs(settings: &Settings) -> Vec<ReceiverSpec> {
    settings
        .notify
        .receivers
        .iter()
        .map(|r| ReceiverSpec {
            settings: r.clone(),
            transport: Arc::new(transport::Http::new(r.timeout)),
        })
        .collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NotifyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NotifyError::Thread(e.to_string()))
}
