//! The inbox's HTTP side: routes, who is asking, and the answer path (form → checks →
//! `human.decisions` → audit). Pages are rendered by [`super::pages`]; the answer is built by
//! [`super::answer`]. Every response carries a strict Content-Security-Policy (scripts and
//! styles from this site only), so even a value that escaped escaping could not run.

use super::answer::{self, AnswerForm};
use super::board::{Board, Filter, Gone, Lookup};
use super::pages::{Detail, DetailPage, ListItems, ListPage, MessagePage, Row, SignInPage};
use super::publish::{AuditEntry, AuditKind, Publish, Via};
use super::{auth::Auth, auth::Viewer, InboxMetrics};
use crate::event::{DecisionKind, HumanDecision, Tier};
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

/// Rows shown by default (the most urgent); `?show=all` shows every one.
pub const LIST_LIMIT: usize = 500;
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
    pub slack: Option<super::slack::SlackPeople>,
    /// First detail view per (person, escalation), ms.
    views: Mutex<HashMap<(String, String), i64>>,
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
            views: Mutex::default(),
            sent: Mutex::default(),
        }
    }
}

/// The routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(list))
        .route("/e/{id}", get(detail))
        .route("/e/{id}/status", get(status))
        .route("/e/{id}/answer", post(answer))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/live", get(live))
        .route("/static/inbox.css", get(css))
        .route("/static/inbox.js", get(js))
        .route("/slack/actions", post(super::slack::actions))
        .route(crate::serve::METRICS_PATH, get(metrics))
        .route(crate::serve::HEALTHZ_PATH, get(|| async { "ok\n" }))
        .route(crate::serve::READYZ_PATH, get(readyz))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(app)
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

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
    };
    html(status, page.render())
}

fn not_found(app: &App, v: &Viewer) -> Response {
    message(
        app,
        Some(v),
        StatusCode::NOT_FOUND,
        "Not in your inbox",
        "No open escalation with this id waits for one of your roles.",
    )
}

/// The viewer, or a redirect to the sign-in page.
fn viewer(app: &App, headers: &HeaderMap, peer: SocketAddr) -> Result<Viewer, Response> {
    let now_s = (now_ms() / 1000) as u64;
    app.auth
        .who(headers, peer.ip(), now_s)
        .ok_or_else(|| match app.auth.mode() {
            crate::config::InboxAuth::Token => Redirect::to("/sign-in").into_response(),
            crate::config::InboxAuth::Proxy => (
                StatusCode::UNAUTHORIZED,
                "your proxy did not name a person this inbox knows\n",
            )
                .into_response(),
        })
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    role: String,
    #[serde(default)]
    tier: String,
    #[serde(default)]
    action_type: String,
    #[serde(default)]
    show: String,
    #[serde(default)]
    fragment: String,
    #[serde(default)]
    done: String,
}

async fn list(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let v = match viewer(&app, &headers, peer) {
        Ok(v) => v,
        Err(r) => return r,
    };
    render_list(&app, &v, &q)
}

fn render_list(app: &App, v: &Viewer, q: &ListQuery) -> Response {
    let filter = Filter {
        role: (!q.role.is_empty()).then(|| q.role.clone()),
        tier: match q.tier.as_str() {
            "warm" => Some(Tier::Warm),
            "immediate" => Some(Tier::Immediate),
            _ => None,
        },
        action_type: (!q.action_type.is_empty()).then(|| q.action_type.clone()),
    };
    let now = now_ms();
    let sent = app.recently_sent(now);
    let board = app.board.read().expect("not poisoned");
    let items: Vec<_> = board
        .list(&v.roles, &filter)
        .into_iter()
        .filter(|i| !sent.contains(&i.escalation_id))
        .collect();
    let total = items.len();
    let limit = if q.show == "all" {
        usize::MAX
    } else {
        LIST_LIMIT
    };
    let rows: Vec<Row> = items.iter().take(limit).map(|i| Row::of(i, now)).collect();
    let all_link = list_link(q);
    if q.fragment == "1" {
        let shown = rows.len();
        return html(
            StatusCode::OK,
            ListItems {
                total,
                shown,
                all_link,
                rows,
            }
            .render(),
        );
    }
    let token = app.auth.form_token(v);
    let flash = match q.done.as_str() {
        "" => String::new(),
        d => format!("Your answer ({d}) was sent."),
    };
    let page = ListPage {
        who: Some(&v.name),
        form_token: &token,
        flash: &flash,
        roles: &v.roles,
        action_types: board.action_types(&v.roles),
        filter_role: &q.role,
        filter_tier: &q.tier,
        filter_type: &q.action_type,
        total,
        shown: rows.len(),
        all_link,
        rows,
    };
    html(StatusCode::OK, page.render())
}

fn list_link(q: &ListQuery) -> String {
    let mut u = String::from("/?show=all");
    for (k, v) in [
        ("role", &q.role),
        ("tier", &q.tier),
        ("action_type", &q.action_type),
    ] {
        if !v.is_empty() {
            u.push_str(&format!("&{k}={}", percent(v)));
        }
    }
    u
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn detail(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let v = match viewer(&app, &headers, peer) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = now_ms();
    let (page, entry) = {
        let board = app.board.read().expect("not poisoned");
        let item = match board.get(&id) {
            Lookup::Open(i) if v.roles.contains(&i.role) => i,
            Lookup::Gone(g) if v.roles.iter().any(|r| r == g.role()) => {
                return message(
                    &app,
                    Some(&v),
                    StatusCode::CONFLICT,
                    "No longer open",
                    &gone_text(g),
                );
            }
            _ => return not_found(&app, &v),
        };
        let Some(p) = Detail::of(&app.matrix, item, now) else {
            return message(
                &app,
                Some(&v),
                StatusCode::CONFLICT,
                "Role no longer in the rules",
                "The matrix in force no longer has this escalation's role; it ends at its deadline.",
            );
        };
        let token = app.auth.form_token(&v);
        let page = DetailPage {
            who: Some(&v.name),
            form_token: &token,
            p,
        }
        .render();
        let entry = audit_entry(AuditKind::Viewed, &v.name, item, now, Via::Web);
        (page, entry)
    };
    app.views
        .lock()
        .expect("not poisoned")
        .entry((v.name.clone(), id))
        .or_insert(now);
    app.metrics.views.inc();
    spawn_audit(&app, entry);
    html(StatusCode::OK, page)
}

fn audit_entry(
    kind: AuditKind,
    person: &str,
    item: &super::board::Item,
    now: i64,
    via: Via,
) -> AuditEntry {
    AuditEntry {
        kind,
        person: person.to_string(),
        role: item.role.clone(),
        escalation_id: item.escalation_id.clone(),
        action_id: item.action_id().to_string(),
        session_id: item.session_id.clone(),
        at_ms: now,
        decision: None,
        first_viewed_at_ms: None,
        via,
        reason: None,
        rule_version: item.action.rule_version.clone(),
    }
}

/// Sends an audit entry; a failure is logged and counted (librdkafka has already retried).
fn spawn_audit(app: &App, entry: AuditEntry) {
    let fut = app.publish.audit(&entry);
    let failures = app.metrics.audit_failures.clone();
    tokio::spawn(async move {
        if let Err(e) = fut.await {
            failures.inc();
            tracing::error!(error = %e, escalation = %entry.escalation_id, "audit entry not delivered");
        }
    });
}

fn gone_text(g: &Gone) -> String {
    match g {
        Gone::Closed { .. } => "It was answered or closed: its action has its verdict (or its \
            role's approval). Nothing more is needed from you."
            .into(),
        Gone::Moved {
            to, escalation_id, ..
        } => format!(
            "It moved on to {to} (escalation {escalation_id}) after a missed deadline or a \
             redirect."
        ),
    }
}

async fn status(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let v = match viewer(&app, &headers, peer) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let board = app.board.read().expect("not poisoned");
    match board.get(&id) {
        Lookup::Open(i) if v.roles.contains(&i.role) => "open".into_response(),
        Lookup::Gone(g) if v.roles.iter().any(|r| r == g.role()) => gone_text(g).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn answer(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Response {
    let v = match viewer(&app, &headers, peer) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(why) = app.auth.check_form(&v, &form.form_token, &headers) {
        app.metrics.answer("none", "forbidden");
        return message(&app, Some(&v), StatusCode::FORBIDDEN, "Not sent", why);
    }
    let now = now_ms();
    let first_view = app
        .views
        .lock()
        .expect("not poisoned")
        .get(&(v.name.clone(), id.clone()))
        .copied();
    let checked = app.check_answer(&v, &id, &form, now, Via::Web);
    let (d, mut entry) = match checked {
        Ok(x) => x,
        Err(r) => return app.refusal(&v, r),
    };
    entry.first_viewed_at_ms = first_view;
    match app.send(d, entry, now).await {
        Ok(kind) => Redirect::to(&format!("/?done={}", kind.as_str())).into_response(),
        Err(e) => message(
            &app,
            Some(&v),
            StatusCode::SERVICE_UNAVAILABLE,
            "Not sent",
            &e,
        ),
    }
}

/// Why an answer is not sent.
pub enum Refused {
    /// Not the viewer's to see.
    NotFound,
    /// Closed or moved on; the audit entry records the refusal.
    Stale(String, Box<AuditEntry>),
    /// A field is wrong.
    Invalid(String),
}

impl App {
    /// Escalations answered from here recently (hidden until the board catches up).
    fn recently_sent(&self, now: i64) -> Vec<String> {
        let mut sent = self.sent.lock().expect("not poisoned");
        sent.retain(|_, (_, at)| now - *at < SENT_KEPT_MS);
        sent.keys().cloned().collect()
    }

    /// Checks an answer by `v` to `id` and builds its decision and audit entry.
    pub fn check_answer(
        &self,
        v: &Viewer,
        id: &str,
        form: &AnswerForm,
        now: i64,
        via: Via,
    ) -> Result<(HumanDecision, AuditEntry), Refused> {
        let board = self.board.read().expect("not poisoned");
        let item = match board.get(id) {
            Lookup::Open(i) if v.roles.contains(&i.role) => i,
            Lookup::Gone(g) if v.roles.iter().any(|r| r == g.role()) => {
                let mut e = gone_entry(v, id, g, now, via);
                e.reason = Some(gone_text(g));
                return Err(Refused::Stale(gone_text(g), Box::new(e)));
            }
            _ => return Err(Refused::NotFound),
        };
        let final_answer = form.decision != "acknowledge";
        if let Some((who, at)) = self.sent.lock().expect("not poisoned").get(id) {
            if final_answer && now - at < SENT_KEPT_MS {
                let why = format!(
                    "{who} already answered it {}s ago; handoff is acting on that answer.",
                    (now - at) / 1000
                );
                let mut e = audit_entry(AuditKind::Refused, &v.name, item, now, via);
                e.reason = Some(why.clone());
                return Err(Refused::Stale(why, Box::new(e)));
            }
        }
        let d =
            answer::decision(&self.matrix, item, form, &v.name, now).map_err(Refused::Invalid)?;
        let mut e = audit_entry(AuditKind::Answered, &v.name, item, now, via);
        e.decision = Some(d.decision);
        Ok((d, e))
    }

    fn refusal(&self, v: &Viewer, r: Refused) -> Response {
        match r {
            Refused::NotFound => {
                self.metrics.answer("none", "not_found");
                not_found(self, v)
            }
            Refused::Stale(text, entry) => {
                self.metrics.answer("none", "stale");
                spawn_audit(self, *entry);
                message(
                    self,
                    Some(v),
                    StatusCode::CONFLICT,
                    "Not sent: no longer open",
                    &text,
                )
            }
            Refused::Invalid(text) => {
                self.metrics.answer("none", "invalid");
                message(
                    self,
                    Some(v),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Not sent",
                    &text,
                )
            }
        }
    }

    /// Sends a checked decision, waits for its delivery, then records it.
    pub async fn send(
        &self,
        d: HumanDecision,
        entry: AuditEntry,
        now: i64,
    ) -> Result<DecisionKind, String> {
        let started = std::time::Instant::now();
        let kind = d.decision;
        let (id, who) = (d.escalation_id.clone(), d.decided_by.clone());
        if let Err(e) = self.publish.decision(&d).await {
            self.metrics.answer(kind.as_str(), "failed");
            return Err(format!("{e}. Try again in a moment."));
        }
        self.metrics
            .answer_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.answer(kind.as_str(), "sent");
        if kind != DecisionKind::Acknowledge {
            self.sent
                .lock()
                .expect("not poisoned")
                .insert(id, (who, now));
        }
        spawn_audit(self, entry);
        Ok(kind)
    }
}

fn gone_entry(v: &Viewer, id: &str, g: &Gone, now: i64, via: Via) -> AuditEntry {
    AuditEntry {
        kind: AuditKind::Refused,
        person: v.name.clone(),
        role: g.role().to_string(),
        escalation_id: id.to_string(),
        action_id: String::new(),
        session_id: String::new(),
        at_ms: now,
        decision: None,
        first_viewed_at_ms: None,
        via,
        reason: None,
        rule_version: String::new(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct SignInQuery {
    #[serde(default)]
    token: String,
}

async fn sign_in_page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    if !q.token.is_empty() {
        return do_sign_in(&app, &headers, &q.token);
    }
    html(
        StatusCode::OK,
        SignInPage {
            who: None,
            form_token: "",
            error: "",
        }
        .render(),
    )
}

async fn sign_in(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(q): Form<SignInQuery>,
) -> Response {
    if let Err(why) = app.auth.same_site(&headers) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    do_sign_in(&app, &headers, &q.token)
}

fn do_sign_in(app: &App, headers: &HeaderMap, token: &str) -> Response {
    match app.auth.person_with_token(token) {
        Some(name) => {
            tracing::info!(person = %name, "signed in");
            let jar = app
                .auth
                .sign_in(app.auth.jar(headers), name, (now_ms() / 1000) as u64);
            (jar, Redirect::to("/")).into_response()
        }
        None => html(
            StatusCode::UNAUTHORIZED,
            SignInPage {
                who: None,
                form_token: "",
                error: "That token belongs to nobody here.",
            }
            .render(),
        ),
    }
}

#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    #[serde(default)]
    form_token: String,
}

async fn sign_out(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let v = match viewer(&app, &headers, peer) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(why) = app.auth.check_form(&v, &f.form_token, &headers) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    (
        app.auth.sign_out(app.auth.jar(&headers)),
        Redirect::to("/sign-in"),
    )
        .into_response()
}

async fn live(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = viewer(&app, &headers, peer) {
        return r;
    }
    let state = (app.changes.clone(), app.stopping.clone());
    let stream = futures::stream::unfold(state, |(mut changes, mut stopping)| async move {
        tokio::select! {
            r = changes.changed() => r.ok()?,
            _ = stopping.wait_for(|s| *s) => return None,
        }
        let event = Event::default()
            .event("change")
            .data(changes.borrow().to_string());
        Some((
            Ok::<_, std::convert::Infallible>(event),
            (changes, stopping),
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
