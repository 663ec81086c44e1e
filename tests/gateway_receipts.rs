//! Receipts redeemed through the gateway (in-process, over a real processor, no broker): the
//! receipt of an approved action runs its tool once, with the approved arguments only, for its
//! own agent only, and not after it expired; each refusal names why.

mod common;

use common::gateway::{request, submit, Answer, Gate};
use common::{answer, base_event};
use handoff::config::Settings;
use handoff::event::{AgentAction, DecisionKind, ToolCall};
use handoff::trust::Signer;
use std::time::Duration;

fn refund(id: &str) -> AgentAction {
    let mut e = base_event();
    e.action_id = id.into();
    e.session_id = format!("sess-{id}");
    e.agent_id = "agent-a".into();
    e.action_type = "refund.issue".into();
    e.amount = Some(40.0);
    e.tool_call = Some(ToolCall {
        name: "issue_refund".into(),
        arguments: r#"{"order_id":"o-1","amount":40}"#.into(),
        call_id: None,
        framework: None,
        run_id: None,
        arguments_schema: None,
    });
    e
}

/// A gateway whose processor signs receipts good for `ttl`.
fn gate(ttl: Duration) -> Gate {
    let key = Signer::generate("processor-1");
    let mut settings = Settings::default();
    settings.trust.signing_key = Some(key.to_pem());
    settings.trust.signing_key_id = Some(key.id().into());
    settings.trust.published_keys = vec![handoff::config::PublishedKey {
        id: key.id().into(),
        public_key: key.public_key(),
    }];
    settings.trust.receipts.expires_after = ttl;
    Gate::with(settings)
}

/// Submits `e`, a person approves it now: its receipt.
fn approved(g: &mut Gate, e: &AgentAction) -> String {
    let now = handoff::clock::SystemClock::now();
    assert_eq!(
        submit(g.port, "key-a", &serde_json::to_vec(e).unwrap()).status,
        202
    );
    g.pump(now);
    let x = g
        .run
        .escalations("escalations.support")
        .into_iter()
        .find(|x| x.action_id == e.action_id)
        .unwrap();
    g.decide(&answer(&x, DecisionKind::Approve, "ana", now), now);
    let r = common::gateway::get(
        g.port,
        &format!("/v1/actions/{}/verdict", e.action_id),
        "key-a",
    );
    r.json()["final"]["receipt"]
        .as_str()
        .expect("a receipt")
        .to_string()
}

fn redeem(g: &Gate, key: &str, body: serde_json::Value) -> Answer {
    let auth = format!("Bearer {key}");
    request(
        g.port,
        "POST",
        "/v1/receipts/redeem",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
}

fn reasons(a: &Answer) -> Vec<String> {
    a.json()["error"]["reasons"]
        .as_array()
        .map(|r| r.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn a_receipt_runs_its_action_once_with_the_approved_arguments_for_its_agent() {
    let mut g = gate(Duration::from_secs(600));
    let receipt = approved(&mut g, &refund("act-1"));
    let body = |args: serde_json::Value| serde_json::json!({"receipt": receipt, "arguments": args, "tool_name": "issue_refund"});
    let changed = redeem(
        &g,
        "key-a",
        body(serde_json::json!({"order_id": "o-1", "amount": 400})),
    );
    assert_eq!(changed.status, 422, "{}", changed.body);
    assert_eq!(reasons(&changed), ["arguments_differ"]);
    let other_agent = redeem(
        &g,
        "key-b",
        body(serde_json::json!({"order_id": "o-1", "amount": 40})),
    );
    assert_eq!(other_agent.status, 403, "{}", other_agent.body);
    let no_tool = redeem(
        &g,
        "key-a",
        serde_json::json!({"receipt": receipt, "arguments": {"order_id": "o-1", "amount": 40}}),
    );
    assert_eq!(no_tool.status, 422, "{}", no_tool.body);
    assert_eq!(no_tool.json()["error"]["code"], "tool_required");
    let no_args = redeem(
        &g,
        "key-a",
        serde_json::json!({"receipt": receipt, "tool_name": "issue_refund"}),
    );
    assert_eq!(no_args.status, 422, "{}", no_args.body);
    assert_eq!(no_args.json()["error"]["code"], "arguments_required");

    // Key order does not matter; the first use counts.
    let ok = redeem(
        &g,
        "key-a",
        body(serde_json::json!({"amount": 40, "order_id": "o-1"})),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let used = ok.json();
    assert_eq!(used["action_id"], "act-1");
    assert_eq!(used["approvers"][0]["sub"], "ana");
    let again = redeem(
        &g,
        "key-a",
        body(serde_json::json!({"amount": 40, "order_id": "o-1"})),
    );
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(reasons(&again), ["already_used"]);
    assert!(
        again.body.contains("runs its action once"),
        "{}",
        again.body
    );
    assert_eq!(g.app.metrics.requests("redeem", 200), 1);
    assert_eq!(g.app.metrics.requests("redeem", 409), 1);

    let forged = redeem(&g, "key-a", serde_json::json!({"receipt": "e30.e30.AAAA"}));
    assert_eq!(forged.status, 422, "{}", forged.body);
    assert_eq!(reasons(&forged), ["bad_receipt"]);
}

#[test]
fn an_expired_receipt_is_refused() {
    let mut g = gate(Duration::from_secs(1));
    let receipt = approved(&mut g, &refund("act-2"));
    std::thread::sleep(Duration::from_millis(2_100));
    let late = redeem(
        &g,
        "key-a",
        serde_json::json!({"receipt": receipt, "arguments": {"order_id": "o-1", "amount": 40}}),
    );
    assert_eq!(late.status, 422, "{}", late.body);
    assert_eq!(reasons(&late), ["expired"]);
}
