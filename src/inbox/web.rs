//! The inbox's HTTP side: routes, who is asking, and the answer path (form → checks →
//! `human.decisions` → audit). Pages are rendered by [`super::pages`]; the answer is built by
//! [`super::answer`]. Every response carries a strict Content-Security-Policy (scripts and
//! styles from this site only), so even a value that escaped escaping could not run.

mod read;
mod sign_in;
mod slack;
mod write;

pub use slack::SlackPeople;
pub use write::Refused;

use super::answer::{self, AnswerForm};
use super::board::{Board, Filter, Gone, Lookup};
use super::pages::{Detail, DetailPage, ListItems, ListPage, MessagePage, Row, SignInPage};
use super::publish::Publish;
use super::{auth::Auth, auth::Viewer, InboxMetrics};
use crate::event::{AuditEntry, AuditKind, DecisionKind, HumanDecision, Tier, Via};
use crate::matrix::Matrix;
use askama::Template;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

/// Rows shown by default (the most urgent); `?show=all` shows up to [`LIST_ALL_LIMIT`].
pub const LIST_LIMIT: usize = 500;
/// The most rows one page renders (`?show=all`), however many are open: a page of a hundred
/// thousand rows would cost the server and the browser more than anyone can read.
pub const LIST_ALL_LIMIT: usize = 5_000;
/// How long an answer sent from here hides its escalation while the processor catches up.
const SENT_KEPT_MS: i64 = 60_000;

/// Everything the pages answer from.
pub struct App {
    /// The open escalations.
    pub board: Arc<RwLock<Board>>,
    /// Role views, gates and redirect targets.
    pub matrix: Arc<Matrix>,
    /// Sign-in and form tokens.
    pub auth: Auth,
    /// Decisions and audit entries out.
    pub publish: Arc<dyn Publish>,
    /// The inbox's metrics.
    pub metrics: InboxMetrics,
    /// Rendered at `/metrics`.
    pub registry: prometheus::Registry,
    /// Moves with the board's generation.
    pub changes: watch::Receiver<u64>,
    /// Set once the board has caught up with the changelog.
    pub ready: Arc<AtomicBool>,
    /// Becomes true at shutdown (ends live streams).
    pub stopping: watch::Receiver<bool>,
    /// Slack buttons: the signing secret and Slack user → person.
    pub slack: Option<SlackPeople>,
    /// Rubber-stamp signals of the approvals sent from here.
    pub guard: super::guard::Guard,
    /// The published keys (`[trust]`), served at `/.well-known/jwks.json`.
    pub jwks: String,
    /// Escalations whose receivers were reminded before the deadline (marked in the list).
    pub reminded: Arc<Mutex<std::collections::HashSet<String>>>,
    /// What a connection and a request may take ([`crate::http`]; see [`App::limits_for`]).
    pub limits: crate::http::Limits,
    /// First detail view per (person, escalation), ms.
    views: Mutex<HashMap<(String, String), i64>>,
    /// Live streams (`/live`) open per person.
    streams: Arc<Mutex<HashMap<String, usize>>>,
    /// Answers sent from here: escalation → (who, when), until the board shows the outcome.
    sent: Mutex<HashMap<String, (String, i64)>>,
}

impl App {
    /// An app over `board`.
    #[allow(clippy::too_many_arguments)] // each is a distinct collaborator
    pub fn new(
        board: Arc<RwLock<Board>>,
        matrix: Arc<Matrix>,
        auth: Auth,
        publish: Arc<dyn Publish>,
        registry: prometheus::Registry,
        changes: watch::Receiver<u64>,
        ready: Arc<AtomicBool>,
        stopping: watch::Receiver<bool>,
    ) -> App {
        let metrics = InboxMetrics::register(&registry);
        let roles: Vec<&str> = matrix.roles().iter().map(|r| r.name.as_str()).collect();
        let guard = super::guard::Guard::register(&registry, Default::default(), &roles);
        App {
            board,
            matrix,
            auth,
            publish,
            metrics,
            registry,
            changes,
            ready,
            stopping,
            slack: None,
            guard,
            jwks: crate::trust::jwks([]).to_string(),
            reminded: Arc::default(),
            limits: crate::http::Limits::new(1024, Default::default()),
            views: Mutex::default(),
            streams: Arc::default(),
            sent: Mutex::default(),
        }
    }
}

impl App {
    /// The limits `settings` ask for (connections, hosts).
    pub fn limits_for(mut self, s: &crate::config::InboxSettings) -> App {
        let public = s.public_url.as_deref();
        let names = s.allowed_hosts.iter().map(String::as_str);
        let hosts = crate::http::host::Allowed::new(public, names);
        self.limits = crate::http::Limits::new(s.max_connections, hosts);
        self
    }
}

/// The routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(read::list))
        .route("/e/{id}", get(read::detail))
        .route("/e/{id}/status", get(read::status))
        .route("/e/{id}/answer", post(write::answer))
        .route(
            "/sign-in",
            get(sign_in::sign_in_page).post(sign_in::sign_in),
        )
        .route("/sign-out", post(sign_in::sign_out))
        .route("/live", get(live))
        .route("/static/inbox.css", get(css))
        .route("/static/inbox.js", get(js))
        .route("/slack/actions", post(slack::actions))
        .route(crate::serve::METRICS_PATH, get(metrics))
        .route(crate::serve::HEALTHZ_PATH, get(|| async { "ok\n" }))
        .route(crate::serve::READYZ_PATH, get(readyz))
        .route(crate::trust::JWKS_PATH, get(jwks))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(app)
}

/// The published keys: what a receipt's or an audit pack's signature is checked against.
async fn jwks(State(app): State<Arc<App>>) -> Response {
    crate::serve::jwks_response(&app.jwks)
}

async fn secure_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn html(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    match body {
        Ok(b) => (status, Html(b)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n").into_response()
        }
    }
}

fn message(app: &App, v: Option<&Viewer>, status: StatusCode, title: &str, text: &str) -> Response {
    let token = v.map(|v| app.auth.form_token(v)).unwrap_or_default();
    let class = if status == StatusCode::CONFLICT {
        "stale"
    } else {
        "error"
    };
    let page = MessagePage {
        who: v.map(|v| v.name.as_str()),
        form_token: &token,
        title,
        text,
        class,
        next: None,
    };
    html(status, page.render())
}

fn not_found(app: &App, v: &Viewer, id: &str) -> Response {
    let id: String = id.chars().take(80).collect();
    app.metrics.refused(
        "not_found",
        format_args!("{} asked for {id:?}, not open for their roles", v.name),
    );
    message(
        app,
        Some(v),
        StatusCode::NOT_FOUND,
        "Not in your inbox",
        "No open escalation with this id waits for one of your roles.",
    )
}

/// The signed-in person, extracted from a request: without one, a redirect to the sign-in page
/// (token sign-in) or 401 (behind a proxy that named nobody known).
pub struct SignedIn(pub Viewer);

impl axum::extract::FromRequestParts<Arc<App>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Arc<App>,
    ) -> Result<Self, Response> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        let now_s = (crate::clock::SystemClock::now() / 1000) as u64;
        match app.auth.who(&parts.headers, peer, now_s) {
            Some(v) => Ok(SignedIn(v)),
            None => Err(match app.auth.mode() {
                crate::config::InboxAuth::Token if app.auth.has_session_cookie(&parts.headers) => {
                    app.metrics.refused(
                        "session",
                        format_args!(
                            "a session cookie from {peer} that is not (or no longer) valid"
                        ),
                    );
                    Redirect::to("/sign-in").into_response()
                }
                crate::config::InboxAuth::Token => Redirect::to("/sign-in").into_response(),
                crate::config::InboxAuth::Proxy => (
                    StatusCode::UNAUTHORIZED,
                    "your proxy did not name a person this inbox knows\n",
                )
                    .into_response(),
            }),
        }
    }
}

/// Live pages one person may keep open at once (tabs, windows); one more is refused with 429,
/// so a stolen session or a runaway script cannot hold the server's streams.
pub const STREAMS_PER_PERSON: usize = 8;

/// One open stream of a person, given back when the stream ends.
struct StreamSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    who: String,
}

impl StreamSlot {
    fn take(open: &Arc<Mutex<HashMap<String, usize>>>, who: &str) -> Option<StreamSlot> {
        let mut m = open.lock().expect("not poisoned");
        let n = m.entry(who.to_string()).or_default();
        if *n >= STREAMS_PER_PERSON {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            open: open.clone(),
            who: who.to_string(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut m = self.open.lock().expect("not poisoned");
        if let Some(n) = m.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.who);
            }
        }
    }
}

async fn live(State(app): State<Arc<App>>, SignedIn(v): SignedIn) -> Response {
    let Some(slot) = StreamSlot::take(&app.streams, &v.name) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            format!("{STREAMS_PER_PERSON} live pages are open for you already; close one\n"),
        )
            .into_response();
    };
    let state = (app.changes.clone(), app.stopping.clone(), slot);
    let stream = futures::stream::unfold(state, |(mut changes, mut stopping, slot)| async move {
        tokio::select! {
            r = changes.changed() => r.ok()?,
            _ = stopping.wait_for(|s| *s) => return None,
        }
        let event = Event::default()
            .event("change")
            .data(changes.borrow().to_string());
        Some((
            Ok::<_, std::convert::Infallible>(event),
            (changes, stopping, slot),
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("static/inbox.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/inbox.js"),
    )
        .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    app.metrics
        .open
        .set(app.board.read().expect("not poisoned").len() as i64);
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&app.registry.gather())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::Acquire) {
        "ready\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "catching up with the changelog\n",
        )
            .into_response()
    }
}
