//! The whole story, once per framework: an agent on LangGraph, on the OpenAI Agents SDK, and an
//! MCP client through the MCP gate (each a real package with a scripted model, in its own
//! process) proposes a refund; `handoff run` hands it to support; a person opens it in the
//! browser inbox (headless Chromium) and revises the amount from 40 to 25; the agent resumes and
//! its tool runs with 25 — once its adapter redeemed the verdict's approval receipt at the
//! gateway; the verdict, the escalation and the inbox's audit entry all name the same action.
//! The receipt verifies with PyJWT, joserfc and jose against the gateway's published keys for the
//! revised arguments; used again, with one argument changed, or after its expiry, it is refused.

mod common;

use common::browser::*;
use common::gateway::{gateway_section, receipts_section, request, spawn_gateway, wait_ready};
use common::inbox::Client;
use common::kafka::*;
use fantoccini::Locator;
use handoff::inbox::auth::token_sha256;
use handoff::sim::broker::free_port;
use std::process::{Command, Stdio};
use std::time::Duration;

const REVISED: &str = r#"{"amount": 25, "order_id": "o-1"}"#;

#[test]
fn each_frameworks_agent_runs_its_tool_with_the_amount_a_person_revised_in_the_browser() {
    let venv = common::python::venv("python-client", "clients/python/requirements-dev.txt");
    let _serial = serial();
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let dir = tmpdir("agents-e2e");
    let (gateway_port, inbox_port) = (free_port(), free_port());
    let extra = format!(
        "{}[inbox]\nbind = \"127.0.0.1:{inbox_port}\"\ncookie_key = \"{}\"\n\
         [[inbox.people]]\nname = \"ana\"\nroles = [\"support\", \"owner\"]\ntoken_sha256 = \"{}\"\n{}",
        matrix_where_no_confidence_passes(&dir),
        "k".repeat(40),
        token_sha256("token-of-ana"),
        gateway_section(gateway_port) + &receipts_section()
    );
    let config = config_file(&dir, &bootstrap, "agents-e2e", &extra);
    let (mut run, mut inbox) = run_and_inbox(&config, &dir);
    let mut gateway = spawn_gateway(&config, &dir.join("gateway.log"));
    wait_ready(gateway_port, Duration::from_secs(60));
    let driver = chromedriver();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ana = Client::signed_in(inbox_port, "ana");

    let mut answered: Vec<String> = Vec::new();
    for kind in ["langgraph", "openai-agents", "mcp"] {
        let session = format!("sess-e2e-{kind}");
        let agent = Command::new(venv.join("bin/python"))
            .arg(common::python::root().join("clients/python/tests/scripted_agents.py"))
            .args([kind, &session])
            .env(
                "PYTHONPATH",
                common::python::root().join("clients/python/src"),
            )
            .env(
                "HANDOFF_GATEWAY_URL",
                format!("http://127.0.0.1:{gateway_port}"),
            )
            .env("HANDOFF_KEY", "key-a")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The escalation reaches ana's list; an earlier one already answered may still show
        // there for a moment, until the inbox's board catches up: it is not this one.
        let mut id = String::new();
        wait_until(
            &format!("{kind}: the escalation in ana's list"),
            Duration::from_secs(60),
            || {
                let body = ana.get("/").body;
                let fresh = body
                    .match_indices("href=\"/e/")
                    .map(|(at, _)| &body[at + 9..at + 9 + 28])
                    .find(|e| !answered.iter().any(|a| a == e));
                fresh.map(|e| id = e.to_string()).is_some()
            },
        );
        answered.push(id.clone());
        rt.block_on(revise_arguments(driver.1, inbox_port, &id, kind));
        let out = agent.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{kind}: {said}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
        assert_eq!(
            result["ran"],
            serde_json::json!([["o-1", 25.0]]),
            "{kind}: {result}"
        );
        let verdict = same_action_everywhere(&bootstrap, &id, &session, kind);
        receipt_used_once(&dir, gateway_port, &verdict, kind);
    }
    for child in [&mut gateway, &mut inbox, &mut run] {
        sigterm(child);
        assert!(wait_exit(child, Duration::from_secs(30)).success());
    }
}

/// Ana opens escalation `id` in the browser and runs the tool with other arguments.
async fn revise_arguments(driver: u16, port: u16, id: &str, kind: &str) {
    let c = session(driver).await;
    sign_in(&c, port, "ana").await;
    c.wait()
        .for_element(Locator::Css(&format!("a[href='/e/{id}']")))
        .await
        .unwrap();
    click_fresh(&c, &format!("a[href='/e/{id}']")).await;
    c.wait()
        .for_element(Locator::Id("revised_arguments"))
        .await
        .unwrap();
    let body = c.source().await.unwrap();
    assert!(
        body.contains("issue_refund"),
        "{kind}: the tool call is shown"
    );
    for summary in c.find_all(Locator::Css("details summary")).await.unwrap() {
        if summary
            .text()
            .await
            .unwrap()
            .contains("Revise the arguments")
        {
            summary.click().await.unwrap();
        }
    }
    let area = c.find(Locator::Id("revised_arguments")).await.unwrap();
    area.clear().await.unwrap();
    area.send_keys(REVISED).await.unwrap();
    shot(&c, &format!("agents-{kind}-revise-arguments.png")).await;
    c.find(Locator::Id("revise-arguments"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("body")).await.unwrap();
    c.close().await.unwrap();
}

/// The receipt of `v`, redeemed by the agent's adapter before its tool ran: it verifies in
/// Python and Node against the gateway's published keys for the revised arguments; redeemed
/// again it is refused as used, with one argument changed as other arguments, and `handoff
/// receipt verify` refuses it once expired.
fn receipt_used_once(dir: &std::path::Path, port: u16, v: &handoff::event::Verdict, kind: &str) {
    let receipt = v
        .receipt
        .as_deref()
        .unwrap_or_else(|| panic!("{kind}: a receipt"));
    let jwks = request(port, "GET", handoff::trust::JWKS_PATH, &[], b"").body;
    let jwks_file = dir.join("jwks.json");
    std::fs::write(&jwks_file, &jwks).unwrap();
    let revised = r#"{"amount":25,"order_id":"o-1"}"#;
    let (ok, words) = common::jose::check_receipt(dir, &jwks_file, receipt, revised, "agent-a");
    assert!(ok, "{kind}: {words}");
    assert_eq!(words.matches(": verified").count(), 3, "{kind}: {words}");
    let redeem = |args: &str| {
        let body =
            format!(r#"{{"receipt":"{receipt}","arguments":{args},"tool_name":"issue_refund"}}"#);
        request(
            port,
            "POST",
            "/v1/receipts/redeem",
            &[
                ("authorization", "Bearer key-a"),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    let again = redeem(revised);
    assert_eq!(
        again.status, 409,
        "{kind}: used by the adapter already: {}",
        again.body
    );
    let changed = redeem(r#"{"amount":26,"order_id":"o-1"}"#);
    assert_eq!(changed.status, 422, "{kind}: {}", changed.body);
    assert!(
        changed.body.contains("arguments_differ"),
        "{kind}: {}",
        changed.body
    );
    let later = handoff::clock::SystemClock::now() + 11 * 60_000;
    let out = Command::new(handoff_bin())
        .args(["receipt", "verify", receipt, "--jwks"])
        .arg(&jwks_file)
        .args(["--arguments", revised, "--at", &later.to_string()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{kind}: {said}");
    assert!(said.contains("refused (expired)"), "{kind}: {said}");
}

/// The verdict, the escalation and the audit entry of escalation `id` name one action, of
/// `session`, and the verdict carries the revised arguments: the final verdict.
fn same_action_everywhere(
    bootstrap: &str,
    id: &str,
    session: &str,
    kind: &str,
) -> handoff::event::Verdict {
    let escalation = escalations(bootstrap, "escalations.support")
        .into_iter()
        .find(|x| x.escalation_id == id)
        .unwrap_or_else(|| panic!("{kind}: escalation {id}"));
    assert_eq!(escalation.session_id, session, "{kind}");
    let action = escalation.action_id.clone();
    wait_until(
        &format!("{kind}: the revised verdict"),
        Duration::from_secs(30),
        || {
            verdicts(bootstrap).iter().any(|v| {
                v.action_id == action
                    && v.is_final
                    && v.revised_arguments.as_deref() == Some(r#"{"amount":25,"order_id":"o-1"}"#)
                    && v.escalation_ids.iter().any(|e| e == id)
            })
        },
    );
    wait_until(
        &format!("{kind}: the audit entry"),
        Duration::from_secs(30),
        || {
            read_all(bootstrap, "handoff.audit").iter().any(|r| {
                let e: serde_json::Value = serde_json::from_slice(&r.payload).unwrap_or_default();
                e["escalation_id"] == id
                    && e["action_id"] == action.as_str()
                    && e["decision"] == "revise"
            })
        },
    );
    verdicts(bootstrap)
        .into_iter()
        .find(|v| v.action_id == action && v.is_final)
        .unwrap()
}
