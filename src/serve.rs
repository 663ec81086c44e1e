//! handoff's HTTP server: `GET /metrics`, `GET /healthz`, `GET /readyz` and, when
//! `[metrics] enable_reload` is on, `POST /-/reload` with its bearer token, on
//! `[metrics] bind`, within [`crate::http`]'s limits. It answers from the moment the listener
//! is bound: until the pipeline has started, `/metrics` is 503, `/readyz` is 503 and
//! `/healthz` is 200 (connecting to a broker that is down is not a reason to restart).

use crate::config::MetricsSettings;
use crate::pipeline::Running;
use crate::reload::{Request, Trigger};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
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
    /// Where reload requests go (none: reloading over HTTP is off).
    pub reloads: Option<mpsc::Sender<Request>>,
    /// The bearer token a reload request must bring (resolved `[metrics] reload_token`).
    pub reload_token: Option<Arc<str>>,
}

impl Endpoints {
    /// Takes `POST /-/reload` into `reloads` when `[metrics] enable_reload` is on (with its
    /// token); otherwise the path answers 404.
    pub fn reloading(mut self, m: &MetricsSettings, reloads: mpsc::Sender<Request>) -> Self {
        if m.enable_reload {
            self.reloads = Some(reloads);
            self.reload_token = m.reload_token.as_deref().map(Arc::from);
        }
        self
    }
}

/// Serves the endpoints on `listener` until the task is dropped.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    e: Endpoints,
    m: &MetricsSettings,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(METRICS_PATH, get(metrics))
        .route(HEALTHZ_PATH, get(healthz))
        .route(READYZ_PATH, get(readyz))
        .route(RELOAD_PATH, post(reload))
        .with_state(e);
    let bind = listener.local_addr()?;
    tracing::info!(%bind, "metrics at http://{bind}/metrics; probes at /healthz and /readyz");
    let hosts = crate::http::host::Allowed::new([], m.allowed_hosts.iter().map(String::as_str));
    let limits = crate::http::Limits::new(m.max_connections, hosts);
    let conns = crate::http::ConnMetrics::unregistered();
    crate::http::serve(listener, app, limits, conns, std::future::pending()).await
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

async fn reload(State(e): State<Endpoints>, headers: HeaderMap) -> Response {
    let Some(tx) = e.reloads else {
        return text(
            StatusCode::NOT_FOUND,
            "reloading over HTTP is off ([metrics] enable_reload); SIGHUP reloads".into(),
        );
    };
    if !bearer_matches(&headers, e.reload_token.as_deref()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a reload needs [metrics] reload_token as a bearer token\n",
        )
            .into_response();
    }
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

/// Whether `Authorization: Bearer …` carries `token` (compared in constant time). No token
/// configured matches nothing.
fn bearer_matches(headers: &HeaderMap, token: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    let Some(token) = token else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
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
