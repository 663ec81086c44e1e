//! `handoff inbox`: the reviewers' web inbox, a process of its own beside `run`.
//!
//! ```text
//! handoff.state ──► follow (own thread) ──► board ──► pages (askama) ──► people
//!                                                        │ answers
//!                   human.decisions ◄── publish ◄── web ─┘──► handoff.audit (views, answers)
//! ```
//! - [`board`]: the open escalations, rebuilt from the changelog (pure);
//! - [`follow`]: the changelog reader feeding it;
//! - [`auth`]: tokens, session cookies, proxy sign-in, form tokens;
//! - [`answer`]: an answer form to a `HumanDecision` (pure checks);
//! - [`pages`]: view models and templates; [`web`]: the routes;
//! - [`publish`]: decisions and the audit trail to Kafka;
//! - [`slack`]: buttons pressed in Slack messages.

pub mod answer;
pub mod auth;
pub mod board;
pub mod follow;
pub mod guard;
pub mod pages;
pub mod publish;
pub mod remind;
pub mod web;

use crate::config::Settings;
use crate::matrix::Matrix;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The inbox's own metrics (served at its `/metrics`).
#[derive(Clone)]
pub struct InboxMetrics {
    /// Open escalations on the board.
    pub open: IntGauge,
    /// Detail pages opened.
    pub views: IntCounter,
    /// Answers by decision and result (sent, stale, invalid, forbidden, not_found, failed).
    answers: IntCounterVec,
    /// From a checked answer to its delivery on `human.decisions`.
    pub answer_seconds: Histogram,
    /// Audit entries that could not be delivered.
    pub audit_failures: IntCounter,
    /// Changelog records the inbox could not read.
    pub unreadable: IntCounter,
    /// Reminders sent before the deadline, by role (`[notify.reminders]`).
    reminders: IntCounterVec,
    /// Answers to an escalation after its reminder, by role.
    after_reminder: IntCounterVec,
    /// Requests refused by reason ([`REFUSALS`]): failed sign-ins, probes of ids, Slack requests.
    refused: IntCounterVec,
    /// At most one log line a second for refusals.
    refused_log: std::sync::Arc<crate::logs::LogLimiter>,
}

/// Why the inbox refuses a request, as counted in `handoff_inbox_refused_total{reason}`.
pub const REFUSALS: [&str; 7] = [
    "sign_in",
    "not_found",
    "session",
    "slack_signature",
    "slack_replayed",
    "slack_team",
    "slack_response_url",
];

impl InboxMetrics {
    /// Registers the families once into `registry`.
    pub fn register(registry: &Registry) -> InboxMetrics {
        let m = InboxMetrics {
            open: IntGauge::new(
                "handoff_inbox_open_escalations",
                "Open escalations the inbox shows.",
            )
            .expect("valid"),
            views: IntCounter::new("handoff_inbox_views_total", "Detail pages opened.")
                .expect("valid"),
            answers: IntCounterVec::new(
                Opts::new(
                    "handoff_inbox_answers_total",
                    "Answers, by decision and result.",
                ),
                &["decision", "result"],
            )
            .expect("valid"),
            answer_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "handoff_inbox_answer_seconds",
                    "From a checked answer to its delivery on human.decisions.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ]),
            )
            .expect("valid"),
            audit_failures: IntCounter::new(
                "handoff_inbox_audit_failures_total",
                "Audit entries that could not be delivered.",
            )
            .expect("valid"),
            unreadable: IntCounter::new(
                "handoff_inbox_changelog_unreadable_total",
                "Changelog records the inbox could not read.",
            )
            .expect("valid"),
            reminders: IntCounterVec::new(
                Opts::new(
                    "handoff_inbox_reminders_total",
                    "Escalations nobody acknowledged whose receivers were reminded before the \
                     deadline, by role.",
                ),
                &["role"],
            )
            .expect("valid"),
            after_reminder: IntCounterVec::new(
                Opts::new(
                    "handoff_inbox_answers_after_reminder_total",
                    "Answers sent from the inbox to an escalation after its reminder, by role.",
                ),
                &["role"],
            )
            .expect("valid"),
            refused: IntCounterVec::new(
                Opts::new(
                    "handoff_inbox_refused_total",
                    "Requests refused, by reason: sign_in (a token of nobody), not_found (an id \
                     not open for the person), session (a cookie not signed or revoked), and \
                     Slack requests (signature, replayed, team, response_url).",
                ),
                &["reason"],
            )
            .expect("valid"),
            refused_log: std::sync::Arc::new(crate::logs::LogLimiter::new(1000)),
        };
        for r in REFUSALS {
            m.refused.with_label_values(&[r]);
        }
        crate::metrics::register_process(
            registry,
            vec![
                Box::new(m.open.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(m.views.clone()),
                Box::new(m.answers.clone()),
                Box::new(m.answer_seconds.clone()),
                Box::new(m.audit_failures.clone()),
                Box::new(m.unreadable.clone()),
                Box::new(m.reminders.clone()),
                Box::new(m.after_reminder.clone()),
                Box::new(m.refused.clone()),
            ],
        );
        m
    }

    /// Counts an answer.
    pub fn answer(&self, decision: &str, result: &str) {
        self.answers.with_label_values(&[decision, result]).inc();
    }

    /// Counts a refused request and logs it (at most a line a second, with how many were held
    /// back): `reason` is one of [`REFUSALS`], `detail` says what (never a secret).
    pub fn refused(&self, reason: &'static str, detail: std::fmt::Arguments<'_>) {
        debug_assert!(REFUSALS.contains(&reason), "{reason}");
        self.refused.with_label_values(&[reason]).inc();
        if let Some(held) = self.refused_log.allow(crate::clock::SystemClock::now()) {
            tracing::warn!(reason, held_back = held, "inbox request refused: {detail}");
        }
    }

    /// A refusal count (tests).
    pub fn refusals(&self, reason: &str) -> u64 {
        self.refused.with_label_values(&[reason]).get()
    }

    /// An answer count (tests).
    pub fn answers(&self, decision: &str, result: &str) -> u64 {
        self.answers.with_label_values(&[decision, result]).get()
    }

    /// The reminder counter of `role`.
    pub fn reminders(&self, role: &str) -> IntCounter {
        self.reminders.with_label_values(&[role])
    }

    /// The counter of answers after a reminder, of `role`.
    pub fn after_reminder(&self, role: &str) -> IntCounter {
        self.after_reminder.with_label_values(&[role])
    }
}

/// Why the inbox stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The address cannot be bound.
    #[error("inbox.bind: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Kafka.
    #[error(transparent)]
    Kafka(#[from] crate::kafka::Error),
    /// Serving failed.
    #[error("serving the inbox failed: {0}")]
    Serve(std::io::Error),
    /// Notifications failed.
    #[error("notifications stopped: {0}")]
    Notify(crate::notify::NotifyError),
}

impl InboxError {
    /// True when the configuration is at fault (exit 2), not the run.
    pub fn is_usage(&self) -> bool {
        matches!(self, InboxError::Bind { .. })
    }
}

/// Serves `app` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    app: Arc<web::App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = app.limits.clone();
    let conns = crate::http::ConnMetrics::register(&app.registry);
    crate::http::serve(listener, web::router(app), limits, conns, shutdown).await
}

/// Runs the inbox: binds, catches up with the changelog, serves until `shutdown`. `on_bound`
/// gets the address served.
pub async fn run(
    settings: &Settings,
    matrix: Arc<Matrix>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), InboxError> {
    let s = &settings.inbox;
    let listener = TcpListener::bind(&s.bind)
        .await
        .map_err(|source| InboxError::Bind {
            addr: s.bind.clone(),
            source,
        })?;
    let t = &settings.topics;
    let topics = [&t.changelog, &t.decisions, &t.audit, &t.notifications];
    crate::kafka::admin::reachable_with_topics(settings, &topics.map(String::as_str)).await?;
    let registry = Registry::new();
    let board = Arc::new(RwLock::new(board::Board::new()));
    let (changes_tx, changes) = watch::channel(0);
    let (stop_tx, stopping) = watch::channel(false);
    let ready = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = Arc::new(publish::KafkaPublisher::new(settings)?);
    let mut app = web::App::new(
        board.clone(),
        matrix,
        auth::Auth::new(s),
        publisher.clone(),
        registry,
        changes,
        ready.clone(),
        stopping,
    )
    .limits_for(s);
    app.slack = web::SlackPeople::of(s);
    app.jwks = settings.trust.jwks().to_string();
    app.guard.set_min_review(s.min_review);
    let feed = follow::Feed {
        board,
        changes: changes_tx,
        ready,
        stop: stop.clone(),
        unreadable: app.metrics.unreadable.clone(),
    };
    let follower = follow::start(settings, feed)?;
    on_bound(listener.local_addr().map_err(InboxError::Serve)?);
    let app = Arc::new(app);
    let stop_tx = Arc::new(stop_tx);
    {
        let tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
    }
    let mut notifier = tokio::spawn(notifier(settings, &app, stop_tx.subscribe()));
    let mut stopping = stop_tx.subscribe();
    let server = serve(listener, app, async move {
        let _ = stopping.wait_for(|s| *s).await;
    });
    tokio::pin!(server);
    // Both end on the same stop; the notifier flushes its ledger first. A notifier that fails
    // (Kafka) stops the inbox: restarted, it resumes from its ledger.
    let result = tokio::select! {
        served = &mut server => {
            let notified = notifier.await.expect("the notifier does not panic");
            served.map_err(InboxError::Serve).and(notified.map_err(InboxError::Notify))
        }
        notified = &mut notifier => {
            let _ = stop_tx.send(true);
            let served = server.await;
            let notified = notified.expect("the notifier does not panic");
            notified.map_err(InboxError::Notify).and(served.map_err(InboxError::Serve))
        }
    };
    stop.store(true, Ordering::Release);
    drain(follower, publisher).await;
    result
}

/// At shutdown: waits for the changelog follower to stop and for the last decisions and audit
/// entries to be delivered (logged when they are not).
async fn drain<T: Send + 'static>(
    follower: std::thread::JoinHandle<T>,
    publisher: Arc<publish::KafkaPublisher>,
) {
    let flushed = tokio::task::spawn_blocking(move || {
        let _ = follower.join();
        publisher.flush(std::time::Duration::from_secs(5))
    })
    .await
    .expect("joining does not panic");
    if let Err(e) = flushed {
        tracing::error!(error = %e, "audit entries or decisions not delivered at shutdown");
    }
}

/// The notifications task: announces what the processor hands to roles, until the stop; an
/// escalation the board knows as gone is closed for it (an unknown one is still open).
fn notifier(
    settings: &Settings,
    app: &Arc<web::App>,
    mut stopping: watch::Receiver<bool>,
) -> impl Future<Output = Result<(), crate::notify::NotifyError>> + Send + 'static {
    let is_open = open_for_notices(app.board.clone());
    let due = reminders_due(settings.notify.reminders, app);
    let (settings, matrix, registry) = (settings.clone(), app.matrix.clone(), app.registry.clone());
    async move {
        let stop = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        crate::notify::run(&settings, matrix, (is_open, due), &registry, stop).await
    }
}

/// The board's answer to "is this notice's escalation still open?": an escalation the board knows
/// as gone is closed (an unknown one is still open); a reminder (`….reminder`) is open while its
/// escalation is open and nobody acknowledged it.
pub fn open_for_notices(board: Arc<RwLock<board::Board>>) -> crate::notify::IsOpen {
    Arc::new(move |id: &str| {
        let board = board.read().expect("not poisoned");
        match id.strip_suffix(crate::notify::route::REMINDER_SUFFIX) {
            Some(esc) => match board.get(esc) {
                board::Lookup::Open(i) => !i.acknowledged(),
                board::Lookup::Gone(_) => false,
                board::Lookup::Unknown => true,
            },
            None => !matches!(board.get(id), board::Lookup::Gone(_)),
        }
    })
}

/// The escalations due a reminder at a time among those `mine` says this replica announced,
/// each marked reminded (the inbox shows the mark) and counted as it is handed over. Items in a
/// digest (a role's rate limit) get none: the limit is there to spare the role messages.
pub fn reminders_due(
    shares: crate::config::notify::Reminders,
    app: &Arc<web::App>,
) -> crate::notify::DueReminders {
    let app = app.clone();
    Arc::new(move |now_ms, mine: &dyn Fn(&str) -> bool| {
        if !shares.any() {
            return Vec::new();
        }
        let board = app.board.read().expect("not poisoned");
        let mut reminded = app.reminded.lock().expect("not poisoned");
        reminded.retain(|id| board.is_open(id));
        let items = remind::due(&board, &shares, &reminded, now_ms);
        let mut due = Vec::with_capacity(items.len());
        for i in items
            .into_iter()
            .filter(|i| !i.in_digest && mine(&i.escalation_id))
        {
            reminded.insert(i.escalation_id.clone());
            let Some(x) = remind::escalation_of(&app.matrix, i) else {
                continue;
            };
            app.metrics.reminders(&i.role).inc();
            due.push((x, i.deadline_ms.unwrap_or(now_ms) - now_ms));
        }
        due
    })
}
