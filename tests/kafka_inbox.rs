//! The inbox end to end, in a real browser (headless Chromium driven over WebDriver) against a
//! real broker: `handoff run` decides an event, the escalation appears in `handoff inbox`, a
//! person signs in, opens it, revises the draft; the final `revised` verdict reaches
//! `agent.verdicts` and the item is gone from a second person's list. Screenshots go to
//! `target/screenshots/` (look at them).

mod common;

use common::browser::*;
use common::inbox::Client;
use common::kafka::*;
use fantoccini::Locator;
use handoff::event::VerdictOutcome;
use handoff::inbox::auth::token_sha256;
use handoff::sim::broker::free_port;
use std::process::Command;
use std::time::{Duration, Instant};

const EDITED: &str = "Dear customer, we refund 35 EUR today, with our apologies.";

#[test]
fn a_person_revises_a_draft_in_the_browser_and_the_agent_gets_the_revised_verdict() {
    let _serial = serial();
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let dir = tmpdir("inbox-browser");
    let port = free_port();
    let person = |name: &str| {
        format!(
            "[[inbox.people]]\nname = \"{name}\"\nroles = [\"support\", \"owner\"]\ntoken_sha256 = \"{}\"\n",
            token_sha256(&format!("token-of-{name}"))
        )
    };
    // The inbox signs its decisions; the processor takes only those (issue: signed decisions).
    let key = handoff::trust::Signer::generate("inbox-e2e");
    let metrics_port = free_port();
    std::fs::write(dir.join("inbox-key.pem"), key.to_pem()).unwrap();
    let extra = format!(
        "[inbox]\nbind = \"127.0.0.1:{port}\"\ncookie_key = \"{}\"\n{}{}\
         [trust]\nsigning_key = \"file:{}\"\nsigning_key_id = \"inbox-e2e\"\n\
         [[trust.decision_keys]]\nid = \"inbox-e2e\"\npublic_key = \"{}\"\nroles = [\"support\", \"owner\"]\n\
         [[trust.published_keys]]\nid = \"inbox-e2e\"\npublic_key = \"{}\"\n\
         [metrics]\nbind = \"127.0.0.1:{metrics_port}\"\n",
        "k".repeat(40),
        person("ana"),
        person("sam"),
        dir.join("inbox-key.pem").display(),
        key.public_key(),
        key.public_key()
    );
    let config = config_file(&dir, &bootstrap, "inbox-e2e", &extra);
    let (mut run, mut inbox) = run_and_inbox(&config, &dir);

    // An agent proposes a refund: ask_first, handed to support.
    let mut e = common::base_event();
    e.action_id = "act-kettle".into();
    e.session_id = "sess-kettle".into();
    e.action_type = "refund.issue".into();
    e.amount = Some(40.0);
    e.currency = Some("EUR".into());
    e.request = "Customer asks for a refund of a kettle that broke after two days.".into();
    e.summary = "Checked order 7781: delivered 3 days ago, within the return window.".into();
    e.output = Some("Dear customer, we refund 40 EUR today.".into());
    e.user_message = Some("My kettle broke after two days, I want my money back!".into());
    e.customer = common::customer(handoff::event::CustomerTier::Premium, 1);
    e.attributes.insert("channel".into(), "email".into());
    e.attributes.insert("order_id".into(), "7781".into());
    let sent = Sent::action(e);
    produce(&bootstrap, INPUT, &[sent]);

    let sam = Client::signed_in(port, "sam");
    let mut id = String::new();
    wait_until(
        "the escalation in sam's list",
        Duration::from_secs(30),
        || {
            let body = sam.get("/").body;
            match body.find("href=\"/e/") {
                Some(at) => {
                    id = body[at + 9..at + 9 + 28].to_string();
                    true
                }
                None => false,
            }
        },
    );
    assert!(id.starts_with("esc-"), "{id}");
    // Restarted, the inbox rebuilds its view from the changelog; with a configured cookie key
    // sam's session survives.
    sigterm(&inbox);
    assert!(wait_exit(&mut inbox, Duration::from_secs(20)).success());
    let mut inbox = spawn_inbox(&config, &dir.join("inbox2.log"));
    wait_log(
        &dir.join("inbox2.log"),
        "caught up with the changelog",
        Duration::from_secs(60),
    );
    let again = sam.get("/");
    assert!(
        again.status == 200 && again.body.contains(&id),
        "{}",
        again.body
    );

    forged_approval_is_refused(&bootstrap, &id, &sam, metrics_port);

    let driver = chromedriver();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Sam watches his list in a browser of his own while ana answers in hers.
    let watcher = rt.block_on(async {
        let c = session(driver.1).await;
        sign_in(&c, port, "sam").await;
        c.wait()
            .for_element(Locator::Css(&format!("a[href='/e/{id}']")))
            .await
            .unwrap();
        // The countdown runs in the page.
        let first = text_of(&c, ".countdown").await;
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let later = text_of(&c, ".countdown").await;
        assert_ne!(first, later, "the time left counts down");
        c
    });
    rt.block_on(browse(driver.1, port, &id));
    // Sam's open page drops the item by itself (server-sent events), no reload.
    rt.block_on(async {
        let start = Instant::now();
        let link = Locator::Css(&format!("a[href='/e/{id}']"));
        while !watcher.find_all(link).await.unwrap().is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "sam's page still lists it"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let body = watcher.source().await.unwrap();
        assert!(body.contains("Nothing waits for you"), "{body}");
        shot(&watcher, "inbox-second-person.png").await;
        watcher.close().await.unwrap();
    });

    // The agent gets the final revised verdict, decided by ana.
    wait_until("the revised verdict", Duration::from_secs(30), || {
        verdicts(&bootstrap).iter().any(|v| {
            v.action_id == "act-kettle"
                && v.is_final
                && v.outcome == VerdictOutcome::Revised
                && v.revised_output.as_deref() == Some(EDITED)
                && v.decided_by.as_deref() == Some("ana")
        })
    });
    // Gone from sam's list, and his late answer is refused.
    wait_until(
        "the item gone from sam's list",
        Duration::from_secs(15),
        || !sam.get("/").body.contains(&id),
    );
    let r = sam.get(&format!("/e/{id}"));
    assert_eq!(r.status, 409, "{}", r.body);
    // Ana's view and answer are on the audit topic.
    let audit: Vec<serde_json::Value> = read_all(&bootstrap, "handoff.audit")
        .iter()
        .map(|r| serde_json::from_slice(&r.payload).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a["person"].as_str().unwrap(), a["kind"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("ana", "viewed")) && kinds.contains(&("ana", "answered")),
        "{kinds:?}"
    );
    // The evidence pack of the hour: ana revised it after opening it, and the pack verifies;
    // one changed answer is caught.
    audit_pack(&dir, &config, port);
    sigterm(&inbox);
    sigterm(&run);
    assert!(wait_exit(&mut inbox, Duration::from_secs(20)).success());
    assert!(wait_exit(&mut run, Duration::from_secs(30)).success());
}

/// Someone who can write `human.decisions` approves the kettle as "mallory" without a
/// signature: a dead letter `unsigned_decision`, and the escalation still waits in sam's list.
fn forged_approval_is_refused(bootstrap: &str, escalation_id: &str, sam: &Client, metrics: u16) {
    let forged = handoff::event::HumanDecision {
        escalation_id: escalation_id.into(),
        action_id: "act-kettle".into(),
        session_id: "sess-kettle".into(),
        role: "support".into(),
        decided_by: "mallory".into(),
        decision: handoff::event::DecisionKind::Approve,
        comment: None,
        revised_output: None,
        redirect_role: None,
        decided_at_ms: handoff::clock::SystemClock::now(),
        drill: false,
        chosen_option: None,
        revised_arguments: None,
    };
    let codec = handoff::event::Codec::new(Default::default()).unwrap();
    let bytes = codec
        .encode(handoff::event::SchemaKind::HumanDecision, &forged)
        .unwrap();
    produce(
        bootstrap,
        "human.decisions",
        &[Sent::decision(b"sess-kettle".to_vec(), bytes)],
    );
    wait_until(
        "the forged decision dead-lettered",
        Duration::from_secs(30),
        || {
            read_all(bootstrap, "agent.actions.dlq").iter().any(|r| {
                r.headers
                    .get(handoff::event::wire::dlq_headers::CLASS)
                    .map(String::as_str)
                    == Some("unsigned_decision")
            })
        },
    );
    assert!(
        sam.get("/").body.contains(escalation_id),
        "the escalation still waits"
    );
    let (_, text) = common::http_get(metrics, "/metrics");
    assert!(
        text.contains("handoff_dead_letters_total{reason=\"unsigned_decision\"} 1"),
        "counted: {}",
        text.lines()
            .filter(|l| l.contains("dead_letters"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!verdicts(bootstrap)
        .iter()
        .any(|v| v.action_id == "act-kettle" && v.is_final));
}

/// Exports the last hour's pack with the CLI, checks the kettle's entry, verifies it, then
/// catches a tampered copy.
fn audit_pack(dir: &std::path::Path, config: &std::path::Path, inbox: u16) {
    let now = handoff::clock::SystemClock::now();
    let pack = dir.join("pack.jsonl");
    let out = Command::new(handoff_bin())
        .args([
            "audit",
            "export",
            "--from",
            &(now - 3_600_000).to_string(),
            "--to",
            &(now + 1).to_string(),
            "--config",
        ])
        .arg(config)
        .arg("--out")
        .arg(&pack)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(
            "1 actions, 1 handed to people, 1 answered (0 answers without the detail opened)"
        ),
        "{text}"
    );
    let digest = text
        .lines()
        .find_map(|l| l.strip_prefix("sha256 "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let body = std::fs::read_to_string(&pack).unwrap();
    let entry: serde_json::Value = serde_json::from_str(body.lines().nth(1).unwrap()).unwrap();
    let e = &entry["entry"];
    assert_eq!(e["action_id"], "act-kettle");
    assert_eq!(e["outcome"], "revised");
    assert_eq!(e["answers"][0]["by"], "ana");
    assert!(
        e["answers"][0]["opened_at_ms"].as_i64().unwrap()
            <= e["answers"][0]["answered_at_ms"].as_i64().unwrap()
    );
    assert_eq!(
        e["answers"][0]["revised_sha256"],
        handoff::audit::chain::sha256_hex(EDITED.as_bytes())
    );
    assert_eq!(e["shown"][0]["role"], "support");
    assert!(e["event_sha256"].is_string());
    let verify = |file: &std::path::Path| {
        Command::new(handoff_bin())
            .args(["audit", "verify", "--expect", &digest])
            .arg(file)
            .output()
            .unwrap()
    };
    let ok = verify(&pack);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let tampered = dir.join("tampered.jsonl");
    std::fs::write(&tampered, body.replace("\"by\":\"ana\"", "\"by\":\"sam\"")).unwrap();
    let bad = verify(&tampered);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("broken at line 3"),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    signed_pack(dir, &pack, inbox);
}

/// The pack is signed with the inbox's key (the config's `[trust] signing_key`) and verifies
/// against the JWKS the inbox serves, without `--expect`; rewritten whole — chain and all —
/// unsigned, or signed with another key under the same id, it does not.
fn signed_pack(dir: &std::path::Path, pack: &std::path::Path, inbox: u16) {
    let jwks = format!("http://127.0.0.1:{inbox}/.well-known/jwks.json");
    let verify = |file: &std::path::Path| {
        let out = Command::new(handoff_bin())
            .args(["audit", "verify", "--jwks", &jwks])
            .arg(file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, text) = verify(pack);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("signed by key \"inbox-e2e\" of the JWKS"),
        "{text}"
    );
    let body = std::fs::read_to_string(pack).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    let header: handoff::audit::chain::Header = serde_json::from_str(lines[0]).unwrap();
    let entries: Vec<serde_json::Value> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| {
            let mut e = serde_json::from_str::<serde_json::Value>(l).unwrap()["entry"].clone();
            e["answers"][0]["by"] = "sam".into();
            e
        })
        .collect();
    let impostor = handoff::trust::Signer::generate("inbox-e2e");
    for (signer, why) in [
        (None, "the pack is not signed"),
        (Some(&impostor), "the signature does not verify"),
    ] {
        let rewritten = dir.join("rewritten.jsonl");
        std::fs::write(
            &rewritten,
            handoff::audit::chain::write(&header, &entries, signer),
        )
        .unwrap();
        let (code, text) = verify(&rewritten);
        assert_eq!(code, Some(1), "{text}");
        assert!(
            text.contains("chain intact") && text.contains(why),
            "{text}"
        );
    }
}

async fn browse(driver: u16, port: u16, id: &str) {
    let c = session(driver).await;
    sign_in(&c, port, "ana").await;
    c.wait()
        .for_element(Locator::Css(&format!("a[href='/e/{id}']")))
        .await
        .unwrap();
    shot(&c, "inbox-list.png").await;
    click_fresh(&c, &format!("a[href='/e/{id}']")).await;
    c.wait()
        .for_element(Locator::Id("revised_output"))
        .await
        .unwrap();
    let body = c.source().await.unwrap();
    assert!(
        body.contains("My kettle broke after two days"),
        "the end user's words"
    );
    shot(&c, "inbox-detail.png").await;
    c.find(Locator::Css("details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let area = c.find(Locator::Id("revised_output")).await.unwrap();
    area.clear().await.unwrap();
    area.send_keys(EDITED).await.unwrap();
    shot(&c, "inbox-revise.png").await;
    c.find(Locator::Id("revise"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let start = Instant::now();
    while !c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/?done=revise")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no redirect after the answer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = c.source().await.unwrap();
    assert!(body.contains("Your answer (revise) was sent."));
    shot(&c, "inbox-sent.png").await;
    c.close().await.unwrap();
}
