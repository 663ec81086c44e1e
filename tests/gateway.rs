//! The gateway's routes, served in-process over a real processor (no broker): submissions are
//! checked as the stream checks records, keys bind agents, long polls and event streams return
//! the first and the final verdict, and hostile bodies get a clear 4xx with nothing submitted.

mod common;

use common::base_event;
use common::gateway::{get, request, submit, Events, Gate};
use handoff::config::GatewaySettings;
use handoff::event::{AgentAction, DecisionKind, HumanDecision, ToolCall};
use std::time::{Duration, Instant};

const NOW: i64 = 1_798_761_600_000;

fn refund(id: &str, agent: &str) -> AgentAction {
    let mut e = base_event();
    e.action_id = id.into();
    e.session_id = format!("sess-{id}");
    e.agent_id = agent.into();
    e.action_type = "refund.issue".into();
    e.status = handoff::event::ActionStatus::Proposed;
    e.confidence = Some(0.95);
    e.amount = Some(40.0);
    e.currency = Some("EUR".into());
    e.tool_call = Some(ToolCall {
        name: "issue_refund".into(),
        arguments: r#"{ "order_id": "o-1", "amount": 40 }"#.into(),
        call_id: Some("call-1".into()),
        framework: Some("plain".into()),
        run_id: None,
        arguments_schema: None,
    });
    e
}

fn research(id: &str, agent: &str) -> AgentAction {
    let mut e = base_event();
    e.action_id = id.into();
    e.session_id = format!("sess-{id}");
    e.agent_id = agent.into();
    e
}

fn json(e: &AgentAction) -> Vec<u8> {
    serde_json::to_vec(e).unwrap()
}

fn submitted(g: &Gate) -> usize {
    g.submitted.actions.lock().unwrap().len()
}

#[test]
fn a_submission_is_acknowledged_and_its_verdicts_are_read_by_long_poll() {
    let mut g = Gate::new(GatewaySettings::default());
    let r = submit(g.port, "key-a", &json(&refund("act-1", "agent-a")));
    assert_eq!(r.status, 202, "{}", r.body);
    let body = r.json();
    assert_eq!(body["verdict_url"], "/v1/actions/act-1/verdict");
    assert_eq!(r.header("location"), Some("/v1/actions/act-1/verdict"));
    let sent = g.submitted.actions.lock().unwrap()[0].clone();
    assert_eq!(
        sent.tool_call.unwrap().arguments,
        r#"{"amount":40,"order_id":"o-1"}"#,
        "the arguments are kept canonical (RFC 8785)"
    );

    let r = get(g.port, "/v1/actions/act-1/verdict", "key-a");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["status"],
        "pending",
        "submitted here, not decided yet"
    );

    g.pump(NOW);
    let r = get(g.port, "/v1/actions/act-1/verdict?until=any", "key-a");
    let state = r.json();
    assert_eq!(state["status"], "waiting");
    assert_eq!(state["first"]["outcome"], "await_human");
    assert_eq!(state["first"]["roles"][0], "support");
    assert!(state["final"].is_null());

    // A long poll for the final verdict, answered while it waits.
    let port = g.port;
    let poll = std::thread::spawn(move || {
        let started = Instant::now();
        let r = get(port, "/v1/actions/act-1/verdict?wait=20s", "key-a");
        (r, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    let escalation = g.run.escalations("escalations.support").remove(0);
    let mut d: HumanDecision =
        common::answer(&escalation, DecisionKind::Revise, "ana", NOW + 60_000);
    d.revised_output = None;
    d.revised_arguments = Some(r#"{"order_id":"o-1","amount":25}"#.into());
    g.decide(&d, NOW + 60_000);
    let (r, took) = poll.join().unwrap();
    assert!(
        took < Duration::from_secs(15),
        "woken by the verdict: {took:?}"
    );
    let state = r.json();
    assert_eq!(state["status"], "final", "{state}");
    assert_eq!(state["final"]["outcome"], "revised");
    assert_eq!(state["final"]["decided_by"], "ana");
    assert_eq!(
        state["final"]["revised_arguments"],
        r#"{"amount":25,"order_id":"o-1"}"#
    );
    assert_eq!(state["first"]["outcome"], "await_human");
    assert!(g.app.metrics.requests("submit", 202) == 1);
    assert!(g.app.metrics.requests("verdict", 200) >= 3);
    assert_eq!(get(g.port, "/v1/nothing-here", "key-a").status, 404);
    assert_eq!(g.app.metrics.requests("other", 404), 1, "an unknown route");
}

#[test]
fn a_long_poll_returns_when_the_wait_is_over_and_an_unknown_action_is_404() {
    let g = Gate::new(GatewaySettings::default());
    let started = Instant::now();
    let r = get(
        g.port,
        "/v1/actions/nobody-sent-this/verdict?wait=1s",
        "key-a",
    );
    assert_eq!(r.status, 404);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(r.json()["error"]["code"], "not_found");
    for (q, needle) in [("wait=soon", "`wait`"), ("until=later", "`until`")] {
        let r = get(g.port, &format!("/v1/actions/x/verdict?{q}"), "key-a");
        assert_eq!(r.status, 400, "{q}");
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(needle));
    }
}

#[test]
fn an_agent_key_submits_only_as_its_agents_and_reads_only_their_verdicts() {
    let mut g = Gate::new(GatewaySettings::default());
    let r = submit(g.port, "key-a", &json(&refund("act-b", "agent-b")));
    assert_eq!(r.status, 403);
    let e = r.json();
    assert_eq!(e["error"]["code"], "forbidden_agent");
    assert!(e["error"]["message"].as_str().unwrap().contains("agent-b"));
    for key in ["no-such-key", ""] {
        let r = submit(g.port, key, &json(&refund("act-x", "agent-a")));
        assert_eq!(r.status, 401, "{key:?}");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    assert_eq!(submitted(&g), 0, "nothing reached the topic");

    assert_eq!(
        submit(g.port, "key-a", &json(&research("act-a", "agent-a"))).status,
        202
    );
    g.pump(NOW);
    let mine = get(g.port, "/v1/actions/act-a/verdict", "key-a");
    assert_eq!(mine.json()["final"]["outcome"], "proceed");
    let theirs = get(g.port, "/v1/actions/act-a/verdict", "key-b");
    let unknown = get(g.port, "/v1/actions/act-zzz/verdict", "key-b");
    assert_eq!(theirs.status, 404);
    assert_eq!(
        theirs.body, unknown.body,
        "another agent's action reads as an unknown one"
    );
    assert_eq!(get(g.port, "/v1/actions/act-a/verdict", "bad").status, 401);

    let mut theirs = Events::open(g.port, "/v1/sessions/sess-act-a/events", "key-b");
    assert_eq!(theirs.status, 200);
    let mut mine = Events::open(g.port, "/v1/sessions/sess-act-a/events", "key-a");
    let (id, v) = mine.next().unwrap();
    assert_eq!(id, "act-a:final");
    assert_eq!(v["agent_id"], "agent-a");
    g.stop();
    assert!(
        theirs.next().is_none(),
        "the other agent saw nothing before the stream ended"
    );
}

#[test]
fn a_sessions_events_are_its_first_and_final_verdicts_as_they_come() {
    let mut g = Gate::new(GatewaySettings::default());
    let mut e = refund("act-s1", "agent-a");
    e.session_id = "sess-shared".into();
    e.confidence = None; // as frameworks send it: below the gate, so the owner is asked too
    assert_eq!(submit(g.port, "key-a", &json(&e)).status, 202);
    g.pump(NOW);
    let mut events = Events::open(g.port, "/v1/sessions/sess-shared/events", "key-a");
    let (id, first) = events.next().unwrap();
    assert_eq!(id, "act-s1:first", "the window's verdicts come first");
    assert_eq!(first["outcome"], "await_human");
    assert_eq!(first["triggers"][0], "low_confidence");
    for role in ["owner", "support"] {
        let escalation = g.run.escalations(&format!("escalations.{role}")).remove(0);
        let d = common::answer(&escalation, DecisionKind::Approve, "ana", NOW + 1_000);
        g.decide(&d, NOW + 1_000);
    }
    let (id, last) = events.next().unwrap();
    assert_eq!(id, "act-s1:final");
    assert_eq!(last["outcome"], "approved");
    let mut again = research("act-s2", "agent-a");
    again.session_id = "sess-shared".into();
    submit(g.port, "key-a", &json(&again));
    g.pump(NOW + 2_000);
    assert_eq!(events.next().unwrap().0, "act-s2:final");
    assert_eq!(g.app.metrics.waiting.get(), 1);
    g.stop();
    assert!(events.next().is_none(), "a stop ends the stream");
}

#[test]
fn an_invalid_action_is_refused_with_the_streams_own_error_and_nothing_is_sent() {
    let g = Gate::new(GatewaySettings::default());
    let mut e = refund("act-bad", "agent-a");
    e.confidence = Some(1.5);
    let r = submit(g.port, "key-a", &json(&e));
    assert_eq!(r.status, 422);
    let err = r.json()["error"].clone();
    assert_eq!(err["code"], "invalid_action");
    assert_eq!(err["reason"], "invalid_field", "the dead-letter reason");
    assert_eq!(err["field"], "confidence");
    assert_eq!(err["value"], "1.5");
    let codec = handoff::event::Codec::new(Default::default()).unwrap();
    let stream = codec
        .decode_action_json(&String::from_utf8(json(&e)).unwrap())
        .unwrap_err();
    assert_eq!(
        err["message"],
        stream.to_string(),
        "the same words as a dead letter"
    );

    let mut e = refund("act-bad2", "agent-a");
    e.tool_call.as_mut().unwrap().arguments = "[1, 2]".into();
    let err = submit(g.port, "key-a", &json(&e)).json()["error"].clone();
    assert_eq!(err["field"], "tool_call.arguments");

    let text = String::from_utf8(json(&refund("act-bad3", "agent-a"))).unwrap();
    let r = submit(
        g.port,
        "key-a",
        text.replace("\"reversible\"", "\"reversable\"").as_bytes(),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["reason"], "json_decode");
    assert!(r.body.contains("reversable"), "{}", r.body);
    assert_eq!(submitted(&g), 0);
}

#[test]
fn hostile_bodies_get_a_clear_4xx_and_nothing_reaches_the_topic() {
    let g = Gate::new(GatewaySettings::default());
    let good = String::from_utf8(json(&research("act-h", "agent-a"))).unwrap();
    let nested = good.replace(
        "\"attributes\":{}",
        &format!(
            "\"attributes\":{}{}",
            "[".repeat(50_000),
            "]".repeat(50_000)
        ),
    );
    assert!(nested.len() > 100_000, "the nesting is in the body");
    let huge_number = good.replace("\"confidence\":0.95", "\"confidence\":1e400");
    let huge_integer = good.replace("1798761600000", "179876160000000000000000000000");
    let mut invalid_utf8 = good.clone().into_bytes();
    let at = good.find("Find recent").unwrap();
    invalid_utf8[at] = 0xff;
    let ten_mb = format!("{{\"request\":\"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("deep nesting", nested.into_bytes(), 422, "json_decode"),
        (
            "a number out of range",
            huge_number.into_bytes(),
            422,
            "confidence",
        ),
        (
            "an integer out of range",
            huge_integer.into_bytes(),
            422,
            "timestamp_ms",
        ),
        ("invalid UTF-8", invalid_utf8, 400, "not UTF-8"),
        ("10 MB", ten_mb.into_bytes(), 413, "max_body_bytes"),
        ("not JSON", b"action_id=1".to_vec(), 422, "json_decode"),
        ("empty", Vec::new(), 422, "json_decode"),
    ];
    for (what, body, status, needle) in cases {
        let r = submit(g.port, "key-a", &body);
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert!(r.body.contains(needle), "{what}: {}", r.body);
        assert!(r.body.len() < 2_000, "{what}: the answer stays short");
    }
    // A body without a length, streamed past the limit.
    let chunk = "x".repeat(64 * 1024);
    let chunked: String = (0..40)
        .map(|_| format!("{:x}\r\n{chunk}\r\n", chunk.len()))
        .chain(["0\r\n\r\n".to_string()])
        .collect();
    let r = request(
        g.port,
        "POST",
        "/v1/actions",
        &[
            ("Authorization", "Bearer key-a"),
            ("Transfer-Encoding", "chunked"),
        ],
        chunked.as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", r.body);
    let r = request(
        g.port,
        "POST",
        "/v1/actions",
        &[
            ("Authorization", "Bearer key-a"),
            ("Content-Type", "text/plain"),
        ],
        good.as_bytes(),
    );
    assert_eq!(r.status, 415);
    assert_eq!(submitted(&g), 0, "nothing reached the topic");
    assert_eq!(
        submit(g.port, "key-a", good.as_bytes()).status,
        202,
        "the same body, well formed"
    );
}

#[test]
fn waits_beyond_max_waiting_are_refused_and_a_failed_delivery_is_503() {
    let g = Gate::new(GatewaySettings {
        max_waiting: 1,
        ..GatewaySettings::default()
    });
    let _held = Events::open(g.port, "/v1/sessions/s/events", "key-a");
    let r = get(g.port, "/v1/actions/x/verdict?wait=5s", "key-a");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"]["code"], "too_many_waiting");
    assert_eq!(
        get(g.port, "/v1/actions/x/verdict", "key-a").status,
        404,
        "a read without a wait does not queue"
    );
    *g.submitted.failing.lock().unwrap() = Some("broker away".into());
    let r = submit(g.port, "key-a", &json(&research("act-f", "agent-a")));
    assert_eq!(r.status, 503);
    assert!(r.body.contains("broker away"));
}

#[test]
fn the_openapi_document_is_served_and_describes_the_records_as_the_schemas_do() {
    let g = Gate::new(GatewaySettings::default());
    let r = request(g.port, "GET", "/v1/openapi.json", &[], b"");
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:9880");
    for (component, avsc) in [("AgentAction", "agent_action"), ("Verdict", "verdict")] {
        let path = format!("{}/schemas/{avsc}.avsc", env!("CARGO_MANIFEST_DIR"));
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut fields: Vec<&str> = schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        let mut properties: Vec<&str> = doc["components"]["schemas"][component]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        properties.sort_unstable();
        assert_eq!(properties, fields, "{component}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(request(g.port, "GET", path, &[], b"").status, 200, "{path}");
    }
    let m = request(g.port, "GET", "/metrics", &[], b"").body;
    assert!(
        m.contains("handoff_gateway_requests_total{code=\"200\",route=\"openapi\"} 1"),
        "{m}"
    );
    assert_eq!(request(g.port, "GET", "/v1/nothing", &[], b"").status, 404);
    let m = request(g.port, "GET", "/metrics", &[], b"").body;
    assert!(
        m.contains("route=\"other\""),
        "unmatched paths share one label: {m}"
    );
}

/// Many agents in one process wait over one connection: the gateway speaks HTTP/2 (cleartext,
/// prior knowledge, as gRPC and httpx's `http2=True` do) beside HTTP/1.1 on the same port, and
/// each stream is a wait of its own — counted, held, and answered when its verdict comes.
#[test]
fn many_waits_share_one_http2_connection_and_each_is_answered() {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let mut g = Gate::new(GatewaySettings::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = g.port;
    let (mut sender, streams) = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        (sender, Vec::new())
    });
    let mut streams: Vec<tokio::task::JoinHandle<(u16, serde_json::Value)>> = streams;
    for i in 0..50 {
        let req = hyper::Request::get(format!(
            "http://127.0.0.1:{port}/v1/actions/act-h2-{i}/verdict?wait=30s"
        ))
        .header("authorization", "Bearer key-a")
        .body(Empty::<Bytes>::new())
        .unwrap();
        let sent = sender.send_request(req);
        streams.push(rt.spawn(async move {
            let r = sent.await.unwrap();
            assert_eq!(r.version(), hyper::Version::HTTP_2);
            let status = r.status().as_u16();
            let body = r.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice(&body).unwrap())
        }));
    }
    let gauge = g.app.metrics.waiting.clone();
    let waiting = || gauge.get();
    let started = Instant::now();
    while waiting() < 50 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} waiting",
            waiting()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..50 {
        let r = submit(
            g.port,
            "key-a",
            &json(&research(&format!("act-h2-{i}"), "agent-a")),
        );
        assert_eq!(r.status, 202, "{}", r.body);
    }
    g.pump(NOW);
    for (i, s) in streams.into_iter().enumerate() {
        let (status, v) = rt.block_on(s).unwrap();
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["action_id"], format!("act-h2-{i}"));
        assert_eq!(v["status"], "final", "{v}");
    }
    assert_eq!(waiting(), 0);
}

/// The published keys are served as a JWKS to anyone (no key), and read back as they were
/// configured; the request is counted as `jwks`.
#[test]
fn the_published_keys_are_served_as_a_jwks() {
    use handoff::config::{PublishedKey, Settings, TrustSettings};
    use handoff::trust::Signer;
    let keys = [
        Signer::generate("handoff-2026-12"),
        Signer::generate("handoff-2027-01"),
    ];
    let g = Gate::with(Settings {
        trust: TrustSettings {
            published_keys: keys
                .iter()
                .map(|k| PublishedKey {
                    id: k.id().into(),
                    public_key: k.public_key(),
                })
                .collect(),
            ..TrustSettings::default()
        },
        ..Settings::default()
    });
    let r = request(g.port, "GET", "/.well-known/jwks.json", &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/jwk-set+json"));
    let read = handoff::trust::read_jwks(&r.body).unwrap();
    for k in &keys {
        assert_eq!(
            read[k.id()],
            handoff::trust::public_key(&k.public_key()).unwrap()
        );
    }
    assert_eq!(g.app.metrics.requests("jwks", 200), 1);
}
