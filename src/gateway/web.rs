//! The gateway's routes: submit an action, read its verdict (long poll), follow a session's
//! verdicts (server-sent events), probes, metrics and the OpenAPI document. Every `/v1/` route
//! needs an agent's key; an agent submits only as its own agent ids and reads only their
//! verdicts (another agent's action is answered as an unknown one: 404).

use super::api::{self, Accepted, ActionState, Problem};
use super::count::CountLayer;
use super::keys::{Caller, Keys};
use super::submit::Submitter;
use super::window::{Seen, Window};
use super::GatewayMetrics;
use crate::config::Settings;
use crate::event::{Codec, Verdict};
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Everything the routes answer from.
pub struct App {
    /// The recent verdicts and who waits for them.
    pub window: Arc<Mutex<Window>>,
    /// The agents' keys.
    pub keys: Keys,
    /// Where actions go.
    pub submitter: Submitter,
    /// The stream's decoder and validation, with the processor's limits.
    pub codec: Codec,
    /// The gateway's metrics.
    pub metrics: GatewayMetrics,
    /// Their registry.
    pub registry: prometheus::Registry,
    ready: Arc<AtomicBool>,
    stopping: watch::Receiver<bool>,
    waiting: Arc<Semaphore>,
    max_wait: Duration,
    max_body_bytes: usize,
    pub(super) body_timeout: Duration,
    base_url: String,
    jwks: String,
    /// The published keys receipts are checked against.
    pub(super) receipt_keys: std::collections::HashMap<String, ed25519_dalek::VerifyingKey>,
    /// Receipts used.
    pub(super) redemptions: super::used::Redemptions,
    /// What a connection and a request may take ([`crate::http`]).
    pub limits: crate::http::Limits,
}

impl App {
    /// An app for `settings`, ready at once and never stopping (see [`App::ready`] and
    /// [`App::stopping`]).
    pub fn new(
        settings: &Settings,
        window: Arc<Mutex<Window>>,
        submitter: Submitter,
        registry: prometheus::Registry,
        metrics: GatewayMetrics,
    ) -> App {
        let s = &settings.gateway;
        let codec = Codec::new(Default::default())
            .expect("the shipped schemas parse")
            .with_max_record_bytes(settings.input.max_record_bytes);
        App {
            window,
            keys: Keys::new(&s.agents),
            submitter,
            codec,
            metrics,
            registry,
            ready: Arc::new(AtomicBool::new(true)),
            stopping: watch::channel(false).1,
            waiting: Arc::new(Semaphore::new(s.max_waiting)),
            max_wait: s.max_wait,
            max_body_bytes: s.max_body_bytes,
            body_timeout: s.submit_timeout,
            base_url: s.base_url(),
            jwks: settings.trust.jwks().to_string(),
            receipt_keys: crate::trust::read_jwks(&settings.trust.jwks().to_string())
                .expect("the published keys were checked at start-up"),
            redemptions: super::used::Redemptions::in_memory(),
            limits: limits(s),
        }
    }

    /// Redeems receipts against `redemptions` (the topic's ledger; in memory by default).
    pub fn redemptions(mut self, redemptions: super::used::Redemptions) -> App {
        self.redemptions = redemptions;
        self
    }

    /// Ready once `ready` is set (caught up with the verdicts).
    pub fn ready(mut self, ready: Arc<AtomicBool>) -> App {
        self.ready = ready;
        self
    }

    /// Waits and streams end when `stopping` turns true.
    pub fn stopping(mut self, stopping: watch::Receiver<bool>) -> App {
        self.stopping = stopping;
        self
    }
}

/// The gateway's connection limits: an answer may take the longest wait and the longest
/// submission, and a body up to `max_body_bytes`.
fn limits(s: &crate::config::GatewaySettings) -> crate::http::Limits {
    let public = s.public_url.as_deref();
    let hosts = crate::http::host::Allowed::new(public, s.allowed_hosts.iter().map(String::as_str));
    let mut l = crate::http::Limits::new(s.max_connections, hosts);
    l.answer = s.max_wait + s.submit_timeout + Duration::from_secs(10);
    l.body_bytes = s.max_body_bytes;
    l
}

/// The routes: these and `more` (the receipts' redemption, [`super::redeem::routes`]), counted
/// by route.
pub fn router(app: Arc<App>, more: axum::Router<Arc<App>>) -> axum::Router {
    axum::Router::new()
        .route("/v1/actions", post(submit))
        .route("/v1/actions/{action_id}/verdict", get(verdict))
        .route("/v1/sessions/{session_id}/events", get(events))
        .route(api::OPENAPI_PATH, get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(crate::trust::JWKS_PATH, get(jwks))
        .merge(more)
        .fallback(not_found)
        .layer(CountLayer(Arc::new(app.metrics.clone())))
        .with_state(app)
}

pub(super) fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, Problem> {
    app.keys.caller(headers).ok_or_else(|| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a known agent key is needed: Authorization: Bearer KEY",
        )
    })
}

/// `POST /v1/actions`: checked as the stream checks it, then on the topic once acknowledged.
async fn submit(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    match accept(&app, &headers, body).await {
        Ok(r) => r,
        Err(p) => p.into_response(),
    }
}

async fn accept(app: &App, headers: &HeaderMap, body: Body) -> Result<Response, Problem> {
    let who = caller(app, headers)?;
    if let Some(t) = headers.get(header::CONTENT_TYPE) {
        let t = t.to_str().unwrap_or_default();
        if !t.starts_with("application/json") {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {t:?}: an action is application/json"),
            ));
        }
    }
    let bytes = read_body(app, body).await?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_utf8",
            format!("the body is not UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    let mut action = app
        .codec
        .decode_action_json(text)
        .map_err(|e| Problem::invalid_action(&e))?;
    if let Some(call) = &mut action.tool_call {
        call.canonicalize();
    }
    if !who.may_act_as(&action.agent_id) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden_agent",
            format!(
                "field `agent_id` has value {:?}: this key may not submit as that agent",
                action.agent_id
            ),
        ));
    }
    app.submitter.submit(&action).await.map_err(|e| {
        tracing::warn!(error = %e, "gateway: a submission was not acknowledged");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_delivered",
            e.to_string(),
        )
    })?;
    app.window.lock().expect("not poisoned").submitted(
        &action.action_id,
        &action.session_id,
        &action.agent_id,
        Instant::now(),
    );
    let verdict_url = format!("/v1/actions/{}/verdict", path_part(&action.action_id));
    let accepted = Accepted {
        action_id: &action.action_id,
        session_id: &action.session_id,
        events_url: format!("/v1/sessions/{}/events", path_part(&action.session_id)),
        verdict_url: verdict_url.clone(),
    };
    let mut r = api::json(StatusCode::ACCEPTED, &accepted);
    if let Ok(v) = verdict_url.parse() {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// The body, refused past the size limit (413) or when it takes too long to arrive (408).
pub(super) async fn read_body(app: &App, body: Body) -> Result<axum::body::Bytes, Problem> {
    let limit = app.max_body_bytes;
    let read = axum::body::to_bytes(body, limit);
    match tokio::time::timeout(app.body_timeout, read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(_)) => Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than gateway.max_body_bytes ({limit} bytes)"),
        )),
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {}",
                humantime::format_duration(app.body_timeout)
            ),
        )),
    }
}

/// What is left as it is in a path segment: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn path_part(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, SEGMENT).to_string()
}

/// A waiting request: holds its place among `gateway.max_waiting` and the gauge.
struct Waiting {
    gauge: prometheus::IntGauge,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

fn waiting(app: &App) -> Result<Waiting, Problem> {
    let permit = app.waiting.clone().try_acquire_owned().map_err(|_| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_waiting",
            "gateway.max_waiting requests wait already; try again",
        )
    })?;
    app.metrics.waiting.inc();
    Ok(Waiting {
        gauge: app.metrics.waiting.clone(),
        _permit: permit,
    })
}

/// What a long poll waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    Any,
    Final,
}

/// A long poll's parameters: `wait=` (at most `gateway.max_wait`; none reads at once) and
/// `until=`. An extractor, so the query's text is not kept while the request waits.
struct PollParams {
    wait: Duration,
    until: Until,
}

impl FromRequestParts<Arc<App>> for PollParams {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Problem> {
        let bad = |name: &str, value: &str, why: &str| {
            let mut p = Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                format!("parameter `{name}` has value {value:?}: {why}"),
            );
            p.value = Some(format!("{value:?}"));
            p
        };
        let (mut wait, mut until) = (None, None);
        for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()) {
            match &*k {
                "wait" => wait = Some(v),
                "until" => until = Some(v),
                _ => {}
            }
        }
        let wait = match wait.as_deref() {
            None => Duration::ZERO,
            Some(w) => {
                wait_of(w).ok_or_else(|| bad("wait", w, "a duration such as 30s, 500ms or 1m"))?
            }
        };
        let until = match until.as_deref() {
            None | Some("final") => Until::Final,
            Some("any") => Until::Any,
            Some(u) => return Err(bad("until", u, "`final` (default) or `any`")),
        };
        Ok(PollParams {
            wait: wait.min(app.max_wait),
            until,
        })
    }
}

/// The caller whose key the request bears; 401 without a known one.
impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Problem> {
        caller(app, &parts.headers)
    }
}

/// `wait=`: whole seconds, or a number with `ms`, `s` or `m` (the OpenAPI document's pattern).
fn wait_of(w: &str) -> Option<Duration> {
    let digits = w.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = w[..digits].parse().ok()?;
    match &w[digits..] {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.saturating_mul(60))),
        _ => None,
    }
}

/// `GET /v1/actions/{id}/verdict?wait=30s&until=final|any`: what is known of the action, once
/// what was asked for is known or the wait is over.
async fn verdict(
    State(app): State<Arc<App>>,
    who: Caller,
    Path(action_id): Path<String>,
    PollParams { wait, until }: PollParams,
) -> Response {
    let answer = async {
        let _place = if wait.is_zero() {
            None
        } else {
            Some(waiting(&app)?)
        };
        let seen = wait_for(&app, &who, &action_id, wait, until).await;
        Ok::<_, Problem>(match seen {
            Some(seen) => api::json(StatusCode::OK, &ActionState::of(&action_id, &seen)),
            None => Problem::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no verdict for this action: not decided yet, not this key's agent's, or older \
                 than the gateway's window",
            )
            .into_response(),
        })
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

async fn wait_for(
    app: &App,
    who: &Caller,
    action_id: &str,
    wait: Duration,
    until: Until,
) -> Option<Seen> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut stopping = app.stopping.clone();
    loop {
        let woken = {
            let mut w = app.window.lock().expect("not poisoned");
            let seen = w.seen(action_id, who);
            let done = seen.as_ref().is_some_and(|s| match until {
                Until::Final => s.is_final(),
                Until::Any => s.first.is_some() || s.is_final(),
            });
            if done || tokio::time::Instant::now() >= deadline || *stopping.borrow() {
                return seen;
            }
            w.wait(action_id)
        };
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stopping.changed() => {}
        }
        app.window.lock().expect("not poisoned").given_up(action_id);
    }
}

/// `GET /v1/sessions/{id}/events`: the session's verdicts of this key's agents, those in the
/// window first, then as they come, as server-sent events `verdict` (id `ACTION:first|final|update`).
async fn events(
    State(app): State<Arc<App>>,
    who: Caller,
    Path(session_id): Path<String>,
) -> Response {
    let place = match waiting(&app) {
        Ok(w) => w,
        Err(p) => return p.into_response(),
    };
    let (so_far, rx) = app
        .window
        .lock()
        .expect("not poisoned")
        .follow(&session_id, &who);
    let live = futures::stream::unfold((rx, place), |(mut rx, place)| async move {
        rx.recv().await.map(|v| (v, (rx, place)))
    })
    .filter(move |v| std::future::ready(who.may_act_as(&v.agent_id)));
    let mut stopping = app.stopping.clone();
    let stop = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    let stream = futures::stream::iter(so_far)
        .chain(live)
        .take_until(Box::pin(stop))
        .map(|v| Ok::<_, std::convert::Infallible>(event(&v)));
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn event(v: &Verdict) -> Event {
    let step = if v.is_final {
        "final"
    } else if v.outcome.is_first() {
        "first"
    } else {
        "update"
    };
    Event::default()
        .event("verdict")
        .id(format!("{}:{step}", v.action_id))
        .data(serde_json::to_string(v).expect("verdicts serialize"))
}

async fn openapi(State(app): State<Arc<App>>) -> Response {
    let mut doc: serde_json::Value = serde_json::from_str(api::OPENAPI).expect("valid JSON");
    doc["servers"] = serde_json::json!([{ "url": app.base_url }]);
    api::json(StatusCode::OK, &doc)
}

/// The published keys (`[trust]`): what a receipt's or an audit pack's signature is checked
/// against. No key needed.
async fn jwks(State(app): State<Arc<App>>) -> Response {
    crate::serve::jwks_response(&app.jwks)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::Acquire) {
        "ready\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "catching up with the verdicts\n",
        )
            .into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut out = String::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(e) = encoder.encode_utf8(&app.registry.gather(), &mut out) {
        tracing::warn!(error = %e, "gateway: metrics not encoded");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn not_found() -> Response {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response()
}
