//! The inbox's pages, forms and query strings from a signed-in person (and from nobody), and
//! Slack's endpoint with a valid signature over any body, against a board with an open
//! escalation: every request gets an answer, never a 500, never a panic.
#![no_main]

use axum::body::Body;
use axum::http::{header, Method, Request};
use handoff::config::{InboxAuth, InboxSettings, Person};
use handoff::inbox::auth::{token_sha256, Auth};
use handoff::inbox::board::Board;
use handoff::inbox::publish::MemoryPublisher;
use handoff::inbox::web::{router, App, SlackPeople};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use hmac::Mac;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock, RwLock};
use tower::ServiceExt;

#[derive(Debug, Arbitrary)]
struct Req {
    route: u8,
    signed_in: bool,
    valid_form: bool,
    text: String,
    body: Vec<u8>,
}

struct World {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    published: Arc<MemoryPublisher>,
    cookie: String,
    form_token: String,
    open_id: String,
}

const SECRET: &str = "fuzz-slack-signing-secret";

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let matrix =
        Arc::new(Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap());
    let settings = InboxSettings {
        auth: InboxAuth::Token,
        slack_signing_secret: Some(SECRET.into()),
        slack_team_id: Some("T0".into()),
        people: vec![Person {
            name: "oli".into(),
            roles: vec!["owner".into()],
            token_sha256: Some(token_sha256("token-of-oli")),
            slack_user: Some("U-OLI".into()),
        }],
        ..InboxSettings::default()
    };
    let (board, open_id) = board_with_one_open(&matrix);
    let published = Arc::new(MemoryPublisher::default());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (_, changes) = tokio::sync::watch::channel(0);
    let (_, stopping) = tokio::sync::watch::channel(false);
    let auth = Auth::new(&settings);
    let mut app = App::new(
        Arc::new(RwLock::new(board)),
        matrix,
        auth.clone(),
        published.clone(),
        prometheus::Registry::new(),
        changes,
        Arc::new(AtomicBool::new(true)),
        stopping,
    );
    app.slack = SlackPeople::of(&settings);
    // Signed in now, for the session's 12 hours (a run is shorter): the pages behind sign-in
    // are what most inputs reach.
    let now_s = (handoff::clock::SystemClock::now() / 1000) as u64;
    let jar = auth.sign_in(auth.jar(&Default::default()), "oli", now_s);
    let set = axum::response::IntoResponse::into_response((jar, ()));
    let set = set.headers()[header::SET_COOKIE].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_string();
    let mut h = axum::http::HeaderMap::new();
    h.insert(header::COOKIE, cookie.parse().unwrap());
    let viewer = auth.who(&h, [127, 0, 0, 1].into(), now_s + 1).unwrap();
    let form_token = auth.form_token(&viewer);
    let router = router(Arc::new(app));
    World { rt, router, published, cookie, form_token, open_id }
});

/// A board fed the changelog of a processor that escalated one low-confidence action.
fn board_with_one_open(matrix: &Arc<Matrix>) -> (Board, String) {
    use handoff::event::{AgentAction, Codec, SchemaKind};
    use handoff::pipeline::process::{Input, Processor};
    let codec = Codec::new(Default::default()).unwrap();
    let action: AgentAction = serde_json::from_str(
        r#"{"action_id":"a1","session_id":"s1","agent_id":"g","timestamp_ms":1798761600000,
        "action_type":"research.search","confidence":0.3,"request":"r","summary":"s",
        "reversible":true,"affects_others":false}"#,
    )
    .unwrap();
    let bytes = codec.encode(SchemaKind::AgentAction, &action).unwrap();
    let headers = handoff::event::wire::version_headers(SchemaKind::AgentAction);
    let mut p = Processor::new(&Default::default(), matrix.clone()).unwrap();
    let mut out = Vec::new();
    let input = Input {
        topic: "agent.actions",
        partition: 0,
        offset: 1,
        key: Some(b"s1"),
        payload: Some(&bytes),
        headers: &headers,
    };
    p.process(input, 1_798_761_600_000, &mut out).unwrap();
    let mut board = Board::new();
    for o in out.iter().filter(|o| o.topic == handoff::output::Topic::Changelog) {
        let session = String::from_utf8(o.key.clone().unwrap()).unwrap();
        let record = handoff::state::SessionRecord::decode(&o.payload).unwrap();
        board.apply(&session, Some(record));
    }
    let id = board.list(&["owner".into()], &Default::default())[0].escalation_id.clone();
    (board, id)
}

fn slack_signature(ts: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fuzz_target!(|r: Req| {
    let w = &*WORLD;
    let id = if r.text.is_empty() { w.open_id.clone() } else { r.text.clone() };
    let enc = |s: &str| handoff::escape::url_component(s);
    let (method, uri) = match r.route % 7 {
        0 => (Method::GET, format!("/?{}", r.text)),
        1 => (Method::GET, format!("/e/{}", enc(&id))),
        2 => (Method::POST, format!("/e/{}/answer", enc(&id))),
        3 => (Method::POST, "/sign-in".to_string()),
        4 => (Method::GET, format!("/sign-in?{}", r.text)),
        5 => (Method::POST, "/slack/actions".to_string()),
        _ => (Method::GET, format!("/e/{}/status", enc(&id))),
    };
    let Ok(mut req) = Request::builder().method(method).uri(&uri).header(header::HOST, "127.0.0.1").body(Body::empty()) else {
        return; // not a URI at all: the HTTP layer refuses it before handoff sees it
    };
    let mut body = r.body.clone();
    if r.route % 7 == 2 && r.valid_form {
        let mut b = format!("form_token={}&", w.form_token).into_bytes();
        b.extend_from_slice(&body);
        body = b;
    }
    let h = req.headers_mut();
    h.insert(header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
    h.insert("sec-fetch-site", "same-origin".parse().unwrap());
    if r.signed_in {
        h.insert(header::COOKIE, w.cookie.parse().unwrap());
    }
    if r.route % 7 == 5 {
        let ts = (handoff::clock::SystemClock::now() / 1000).to_string();
        let sig = slack_signature(&ts, &body);
        h.insert("x-slack-request-timestamp", ts.parse().unwrap());
        h.insert("x-slack-signature", sig.parse().unwrap());
    }
    *req.body_mut() = Body::from(body);
    let router = w.router.clone();
    let status = w.rt.block_on(async move { router.oneshot(req).await.unwrap().status() });
    assert_ne!(status.as_u16(), 500, "{uri}");
    // Nothing kept across runs: memory stays bounded however long the run.
    w.published.decisions.lock().unwrap().clear();
    w.published.audit.lock().unwrap().clear();
});
