//! `handoff gateway`: the HTTP gateway for agents that do not speak Kafka, a process of its own
//! beside `run` and `inbox`. It never decides: `run` stays the only writer of verdicts.
//!
//! ```text
//! agent ── POST /v1/actions ──► check (the stream's own validation) ──► submit ──► agent.actions
//! agent ◄─ GET …/verdict?wait= ─┐
//! agent ◄─ GET …/events (SSE) ──┴── window ◄── follow (own thread) ◄── agent.verdicts
//! ```
//! - [`keys`]: API keys (stored hashed), each bound to its agent ids;
//! - [`window`]: the recent actions' first and final verdicts, and who waits for them (pure);
//! - [`follow`]: the verdicts reader feeding it;
//! - [`submit`]: actions to Kafka behind `Submit`;
//! - [`redeem`], [`used`]: approval receipts checked and used once (`topics.receipts_used`);
//! - [`web`]: the routes, [`api`]: the answers' JSON.

pub mod api;
mod count;
pub mod follow;
pub mod keys;
pub mod redeem;
pub mod submit;
pub mod used;
pub mod web;
pub mod window;

use crate::config::Settings;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The gateway's own metrics (served at its `/metrics`).
#[derive(Clone)]
pub struct GatewayMetrics {
    /// Requests by route (a fixed set) and status code.
    requests: IntCounterVec,
    /// Requests waiting for a verdict now (long polls and event streams).
    pub waiting: IntGauge,
    /// From this replica's acknowledgement of a submission to its final verdict.
    pub to_final: Histogram,
    /// Actions in the window.
    pub window: IntGauge,
    /// Verdicts the gateway could not read.
    pub unreadable: IntCounter,
}

impl GatewayMetrics {
    /// Registers the families once into `registry`.
    pub fn register(registry: &Registry) -> GatewayMetrics {
        let m = GatewayMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "handoff_gateway_requests_total",
                    "Requests to the gateway, by route and status code.",
                ),
                &["route", "code"],
            )
            .expect("valid"),
            waiting: IntGauge::new(
                "handoff_gateway_waiting_requests",
                "Requests waiting for a verdict (long polls and event streams).",
            )
            .expect("valid"),
            to_final: Histogram::with_opts(
                HistogramOpts::new(
                    "handoff_gateway_final_verdict_seconds",
                    "From a submission's acknowledgement to its final verdict, as this replica saw it.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0,
                ]),
            )
            .expect("valid"),
            window: IntGauge::new(
                "handoff_gateway_window_actions",
                "Actions whose verdicts the gateway keeps to answer from.",
            )
            .expect("valid"),
            unreadable: IntCounter::new(
                "handoff_gateway_verdicts_unreadable_total",
                "Verdict records the gateway could not read.",
            )
            .expect("valid"),
        };
        crate::metrics::register_process(
            registry,
            vec![
                Box::new(m.requests.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(m.waiting.clone()),
                Box::new(m.to_final.clone()),
                Box::new(m.window.clone()),
                Box::new(m.unreadable.clone()),
            ],
        );
        m
    }

    /// Counts a request.
    pub fn request(&self, route: &str, code: u16) {
        self.requests
            .with_label_values(&[route, &code.to_string()])
            .inc();
    }

    /// A request count (tests).
    pub fn requests(&self, route: &str, code: u16) -> u64 {
        self.requests
            .with_label_values(&[route, &code.to_string()])
            .get()
    }
}

/// Why the gateway stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The address cannot be bound.
    #[error("gateway.bind: cannot listen on {addr}: {source}")]
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
    #[error("serving the gateway failed: {0}")]
    Serve(std::io::Error),
}

impl GatewayError {
    /// True when the configuration is at fault (exit 2), not the run.
    pub fn is_usage(&self) -> bool {
        matches!(self, GatewayError::Bind { .. })
    }
}

/// Runs the gateway: binds, starts reading the verdicts, serves until `shutdown`. `on_bound`
/// gets the address served.
pub async fn run(
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), GatewayError> {
    let s = &settings.gateway;
    let listener = TcpListener::bind(&s.bind)
        .await
        .map_err(|source| GatewayError::Bind {
            addr: s.bind.clone(),
            source,
        })?;
    let t = &settings.topics;
    crate::kafka::admin::reachable_with_topics(
        settings,
        &[&t.input, &t.verdicts, &t.receipts_used],
    )
    .await?;
    let registry = Registry::new();
    let metrics = GatewayMetrics::register(&registry);
    let window = Arc::new(Mutex::new(window::Window::new(s.window)));
    let ready = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let submitter = Arc::new(submit::KafkaSubmitter::new(settings)?);
    let feed = follow::Feed {
        window: window.clone(),
        ready: ready.clone(),
        stop: stop.clone(),
        metrics: metrics.clone(),
    };
    let follower = follow::start(settings, feed)?;
    let redemptions = used::Redemptions {
        ledger: Arc::new(Mutex::new(used::Ledger::default())),
        uses: Arc::new(used::KafkaUses::new(settings)?),
        ready: Arc::new(AtomicBool::new(false)),
    };
    let uses_reader = used::follow(
        settings,
        redemptions.ledger.clone(),
        redemptions.ready.clone(),
        stop.clone(),
    )?;
    let (stop_tx, stopping) = watch::channel(false);
    let app = web::App::new(settings, window, submitter.clone(), registry, metrics)
        .ready(ready)
        .stopping(stopping.clone())
        .redemptions(redemptions);
    on_bound(listener.local_addr().map_err(GatewayError::Serve)?);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let served = serve(listener, Arc::new(app), async move {
        let mut stopping = stopping;
        let _ = stopping.wait_for(|s| *s).await;
    })
    .await;
    stop.store(true, Ordering::Release);
    tokio::task::spawn_blocking(move || {
        let _ = follower.join();
        let _ = uses_reader.join();
        submitter.flush(std::time::Duration::from_secs(5));
    })
    .await
    .expect("joining does not panic");
    served.map_err(GatewayError::Serve)
}

/// Serves `app` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    app: Arc<web::App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = app.limits.clone();
    let conns = crate::http::ConnMetrics::register(&app.registry);
    crate::http::serve(
        listener,
        web::router(app, redeem::routes()),
        limits,
        conns,
        shutdown,
    )
    .await
}
