//! The gateway's JSON and query strings from an agent with a valid key (and from one without):
//! submissions, verdict polls and receipt redemptions. Every request gets an answer that is
//! not a 500, never a panic.
#![no_main]

use axum::body::Body;
use axum::http::{header, Method, Request};
use handoff::config::{GatewayAgent, Settings};
use handoff::gateway::submit::MemorySubmitter;
use handoff::gateway::web::{router, App};
use handoff::gateway::window::Window;
use handoff::gateway::{redeem, GatewayMetrics};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tower::ServiceExt;

#[derive(Debug, Arbitrary)]
struct Req {
    route: u8,
    with_key: bool,
    text: String,
    body: Vec<u8>,
}

struct World {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    submitted: Arc<MemorySubmitter>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let mut settings = Settings::default();
    settings.gateway.agents = vec![GatewayAgent {
        name: "fleet".into(),
        key_sha256: handoff::inbox::auth::token_sha256("key-fleet"),
        agent_ids: vec!["g".into()],
    }];
    // Polls never wait: every input is answered at once.
    settings.gateway.max_wait = Duration::from_millis(1);
    let submitted = Arc::new(MemorySubmitter::default());
    let registry = prometheus::Registry::new();
    let metrics = GatewayMetrics::register(&registry);
    let window = Arc::new(Mutex::new(Window::new(1000)));
    let app = App::new(&settings, window, submitted.clone(), registry, metrics);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let router = router(Arc::new(app), redeem::routes());
    World { rt, router, submitted }
});

fuzz_target!(|r: Req| {
    let w = &*WORLD;
    let enc = |s: &str| handoff::escape::url_component(s);
    let (method, uri) = match r.route % 3 {
        0 => (Method::POST, "/v1/actions".to_string()),
        1 => (Method::GET, format!("/v1/actions/{}/verdict?{}", enc(&r.text), r.text)),
        _ => (Method::POST, "/v1/receipts/redeem".to_string()),
    };
    let Ok(mut req) = Request::builder().method(method).uri(&uri).body(Body::from(r.body.clone())) else {
        return;
    };
    let h = req.headers_mut();
    h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    if r.with_key {
        h.insert(header::AUTHORIZATION, "Bearer key-fleet".parse().unwrap());
    }
    let router = w.router.clone();
    let status = w.rt.block_on(async move { router.oneshot(req).await.unwrap().status() });
    assert_ne!(status.as_u16(), 500, "{uri}");
    w.submitted.actions.lock().unwrap().clear();
});
