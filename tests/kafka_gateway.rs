//! The gateway against a real broker, as agents meet it: `handoff run` decides, `handoff
//! gateway` takes actions over HTTP and answers with the verdicts it reads back from
//! `agent.verdicts`; a second replica started later answers the same; a stop with waits and
//! streams open ends them and exits 0.

mod common;

use common::gateway::{gateway_section, get, request, spawn_gateway, submit, wait_ready, Events};
use common::kafka::*;
use handoff::event::{AgentAction, DecisionKind, HumanDecision, ToolCall};
use handoff::sim::broker::free_port;
use std::time::{Duration, Instant};

fn refund(id: &str) -> AgentAction {
    let mut e = common::base_event();
    e.action_id = id.into();
    e.session_id = format!("sess-{id}");
    e.agent_id = "agent-a".into();
    e.action_type = "refund.issue".into();
    e.status = handoff::event::ActionStatus::Proposed;
    e.amount = Some(40.0);
    e.currency = Some("EUR".into());
    e.tool_call = Some(ToolCall {
        name: "issue_refund".into(),
        arguments: r#"{"order_id":"o-7","amount":40}"#.into(),
        call_id: Some("call-7".into()),
        framework: Some("plain".into()),
        run_id: None,
        arguments_schema: None,
    });
    e
}

#[test]
fn agents_submit_over_http_and_read_first_and_final_verdicts_from_any_replica() {
    let _serial = serial();
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let dir = tmpdir("gateway");
    let (port, port2) = (free_port(), free_port());
    let config = config_file(&dir, &bootstrap, "gw", &gateway_section(port));
    let config2 = config_file(&dir, &bootstrap, "gw2", &gateway_section(port2));
    let mut run = spawn(&config, &dir.join("run.log"));
    let mut gw = spawn_gateway(&config, &dir.join("gateway.log"));
    wait_ready(port, Duration::from_secs(60));

    // An action the rules let run alone: its final verdict by long poll.
    let mut quick = common::base_event();
    quick.action_id = "act-quick".into();
    quick.agent_id = "agent-a".into();
    let started = Instant::now();
    let r = submit(port, "key-a", &serde_json::to_vec(&quick).unwrap());
    assert_eq!(r.status, 202, "{}", r.body);
    let r = get(port, "/v1/actions/act-quick/verdict?wait=30s", "key-a");
    assert_eq!(r.json()["final"]["outcome"], "proceed", "{}", r.body);
    eprintln!(
        "submit → final verdict of an auto-executed action: {:?}",
        started.elapsed()
    );

    // One a person must approve: the first verdict now, the final one after the answer.
    let e = refund("act-refund");
    assert_eq!(
        submit(port, "key-a", &serde_json::to_vec(&e).unwrap()).status,
        202
    );
    let r = get(
        port,
        "/v1/actions/act-refund/verdict?wait=30s&until=any",
        "key-a",
    );
    let state = r.json();
    assert_eq!(state["status"], "waiting", "{state}");
    assert_eq!(state["first"]["roles"][0], "support");

    // Nothing hostile or foreign reaches the topic.
    let mut other = refund("act-foreign");
    other.agent_id = "agent-b".into();
    assert_eq!(
        submit(port, "key-a", &serde_json::to_vec(&other).unwrap()).status,
        403
    );
    assert_eq!(submit(port, "key-a", b"{\"action_id\":1e999}").status, 422);
    assert_eq!(submit(port, "key-a", &vec![b'x'; 10 << 20]).status, 413);

    let port_for_poll = port;
    let poll = std::thread::spawn(move || {
        get(
            port_for_poll,
            "/v1/actions/act-refund/verdict?wait=60s",
            "key-a",
        )
    });
    let mut escalations = Reader::new(&bootstrap, "escalations.support");
    escalations.wait_for(1, Duration::from_secs(30));
    let codec = handoff::event::Codec::new(Default::default()).unwrap();
    let x: handoff::event::Escalation = codec
        .decode(
            handoff::event::SchemaKind::Escalation,
            &escalations.records[0].payload,
        )
        .unwrap();
    assert_eq!(x.action_id, "act-refund");
    let mut d: HumanDecision = common::answer(&x, DecisionKind::Revise, "ana", 1);
    d.decided_at_ms = handoff::clock::SystemClock::now();
    d.revised_output = None;
    d.revised_arguments = Some(r#"{"amount":25,"order_id":"o-7"}"#.into());
    send_decisions(&bootstrap, &[d]);
    let r = poll.join().unwrap();
    let state = r.json();
    assert_eq!(state["status"], "final", "{state}");
    assert_eq!(state["final"]["outcome"], "revised");
    assert_eq!(
        state["final"]["revised_arguments"],
        r#"{"amount":25,"order_id":"o-7"}"#
    );
    assert_eq!(
        state["final"]["escalation_ids"][0],
        x.escalation_id.as_str()
    );

    // A second replica, started now, rebuilds the same answers from agent.verdicts.
    let mut gw2 = spawn_gateway(&config2, &dir.join("gateway2.log"));
    wait_ready(port2, Duration::from_secs(60));
    let again = get(port2, "/v1/actions/act-refund/verdict", "key-a").json();
    assert_eq!(again["final"], state["final"]);
    assert_eq!(again["first"], state["first"]);
    assert_eq!(
        get(port2, "/v1/actions/act-refund/verdict", "key-b").status,
        404
    );
    let mut events = Events::open(port2, "/v1/sessions/sess-act-refund/events", "key-a");
    assert_eq!(events.next().unwrap().0, "act-refund:first");
    assert_eq!(events.next().unwrap().0, "act-refund:final");

    let actions: Vec<String> = read_all(&bootstrap, INPUT)
        .iter()
        .map(|r| {
            codec
                .decode_action(&r.payload)
                .map(|a| a.action_id)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    assert_eq!(
        actions,
        ["act-quick", "act-refund"],
        "only what was accepted is on the topic"
    );

    // A stop with a stream and a long poll open ends both and exits 0.
    let hanging = std::thread::spawn(move || {
        get(port2, "/v1/actions/never/verdict?wait=60s", "key-a").status
    });
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&gw2);
    let stopped = Instant::now();
    assert!(wait_exit(&mut gw2, Duration::from_secs(20)).success());
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopped.elapsed()
    );
    assert!(events.next().is_none(), "the stream ended");
    assert_eq!(hanging.join().unwrap(), 404, "the long poll was answered");
    let metrics = request(port, "GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("handoff_gateway_requests_total{code=\"403\",route=\"submit\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("handoff_gateway_final_verdict_seconds_count 2"),
        "{metrics}"
    );
    sigterm(&gw);
    sigterm(&run);
    assert!(wait_exit(&mut gw, Duration::from_secs(20)).success());
    assert!(wait_exit(&mut run, Duration::from_secs(30)).success());
}
