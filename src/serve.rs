//! handoff's HTTP server: `GET /metrics`, `GET /healthz`, `GET /readyz` and `POST /-/reload`,
//! on `[metrics] bind`. It answers from the moment the listener is bound: until the pipeline
//! has started, `/metrics` is 503, `/readyz` is 503 and `/healthz` is 200 (connecting to a
//! broker that is down is not a reason to restart).

use crate::pipeline::Running;
use crate::reload::{Request, Trigger};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// The paths served (the Kubernetes probes' check reads them from here).
pub const METRICS_PATH: &str = "/metrics";
/// Liveness.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Readiness.
pub const READYZ_PATH: &str = "/readyz";
/// Reload the matrix (POST).
pub const RELOAD_PATH: &str = "/-/reload";

/// What the server answers from.
#[derive(Clone, Default)]
pub struct Endpoints {
    /// Set once the pipeline has started.
    pub running: Arc<OnceLock<Running>>,
    /// Where reload requests go (none: reloading is off).
    pub reloads: Option<mpsc::Sender<Request>>,
}

/// Serves the endpoints on `listener` until the task is dropped.
pub async fn serve_on(listener: tokio::net::TcpListener, e: Endpoints) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(METRICS_PATH, get(metrics))
        .route(HEALTHZ_PATH, get(healthz))
        .route(READYZ_PATH, get(readyz))
        .route(RELOAD_PATH, post(reload))
        .with_state(e);
    let bind = listener.local_addr()?;
    tracing::info!(%bind, "metrics at http://{bind}/metrics; probes at /healthz and /readyz");
    axum::serve(listener, app).await
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body + "\n",
    )
        .into_response()
}

async fn metrics(State(e): State<Endpoints>) -> Response {
    match e.running.get() {
        Some(r) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            r.stats.metrics.render(),
        )
            .into_response(),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "starting".into()),
    }
}

fn probe(verdict: Result<&'static str, String>) -> Response {
    match verdict {
        Ok(s) => text(StatusCode::OK, s.into()),
        Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn healthz(State(e): State<Endpoints>) -> Response {
    probe(e.running.get().map_or(Ok("starting"), |r| r.health.live()))
}

async fn readyz(State(e): State<Endpoints>) -> Response {
    probe(
        e.running
            .get()
            .map_or(Err("starting: connecting to Kafka".into()), |r| {
                r.health.ready()
            }),
    )
}

async fn reload(State(e): State<Endpoints>) -> Response {
    let Some(tx) = e.reloads else {
        return text(StatusCode::NOT_FOUND, "reloading is off".into());
    };
    let (reply, rx) = oneshot::channel();
    let request = Request {
        trigger: Trigger::Http,
        reply: Some(reply),
    };
    if tx.send(request).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into());
    }
    match rx.await {
        Ok(Ok(done)) => text(StatusCode::OK, done.to_string()),
        Ok(Err(problems)) => text(StatusCode::UNPROCESSABLE_ENTITY, problems),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()),
    }
}

/// A JWKS document as the gateway and the inbox serve it (at [`crate::trust::JWKS_PATH`]):
/// `application/jwk-set+json`, cacheable for five minutes (a rolled key is published before
/// it signs anything).
pub fn jwks_response(doc: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        doc.to_string(),
    )
        .into_response()
}
