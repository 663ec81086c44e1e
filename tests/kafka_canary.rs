//! A canary drill against a real broker (tansu): `handoff run` decides, `handoff canary send
//! --count` injects canaries beside real actions, people answer some right, one wrong and leave
//! one alone; the agents never see a canary, the metrics and `handoff canary report` say caught,
//! missed and timed out per role, and the audit pack marks them.

mod common;

use common::kafka::*;
use handoff::event::{AgentAction, Codec, DecisionKind, Escalation, HumanDecision, SchemaKind};
use handoff::event::{Verdict, VerdictOutcome};
use handoff::sim::broker::free_port;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn refund(i: usize) -> Sent {
    let mut e: AgentAction = common::base_event();
    e.action_id = format!("act-real-{i}");
    e.session_id = format!("sess-real-{i}");
    e.action_type = "refund.issue".into();
    e.amount = Some(25.0);
    Sent::action(e)
}

fn answer(esc: &Escalation, kind: DecisionKind, by: &str) -> HumanDecision {
    HumanDecision {
        escalation_id: esc.escalation_id.clone(),
        action_id: esc.action_id.clone(),
        session_id: esc.session_id.clone(),
        role: esc.role.clone(),
        decided_by: by.into(),
        decision: kind,
        comment: None,
        revised_output: (kind == DecisionKind::Revise).then(|| "We refund 48.00 EUR.".into()),
        redirect_role: None,
        decided_at_ms: 0,
        drill: false,
        chosen_option: None,
        revised_arguments: None,
    }
}

fn metric(port: u16, series: &str) -> f64 {
    let (_, body) = common::http_get(port, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

/// The shipped matrix with short deadlines, and a config with `[canary]` on: one case for
/// support (the refund ten times too large: reject).
fn config(dir: &Path, bootstrap: &str, port: u16) -> std::path::PathBuf {
    let matrix = handoff::matrix::DEFAULT_MATRIX_TOML
        .replace(
            "[tiers.warm]\nack_within = \"1h\"",
            "[tiers.warm]\nack_within = \"4s\"",
        )
        .replace(
            "[tiers.immediate]\nack_within = \"5m\"",
            "[tiers.immediate]\nack_within = \"3s\"",
        );
    let mpath = dir.join("matrix.toml");
    std::fs::write(&mpath, matrix).unwrap();
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/canaries/refund-ten-times.json");
    let cfg = config_file(
        dir,
        bootstrap,
        "canary",
        &format!(
            "[matrix]\npath = \"{}\"\n[metrics]\nbind = \"127.0.0.1:{port}\"\n\
             [canary]\nenabled = true\n[[canary.cases]]\nrole = \"support\"\n\
             expect = \"reject\"\nevent = \"{}\"\n",
            mpath.display(),
            case.display()
        ),
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[pipeline]\n", "[pipeline]\ntimer_tick = \"200ms\"\n");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn handoff(args: &[&str], cfg: &Path) -> String {
    let out = Command::new(handoff_bin())
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "handoff {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_canary_drill_reports_caught_missed_and_timed_out_and_the_agents_see_none() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let dir = tmpdir("canary");
    let port = free_port();
    let cfg = config(&dir, &bs, port);
    let log = dir.join("run.log");
    let mut child = spawn(&cfg, &log);
    wait_log(&log, "partitions assigned", Duration::from_secs(60));
    let started_ms = handoff::clock::SystemClock::now();
    produce(&bs, INPUT, &[refund(0), refund(1)]);
    let sent = handoff(&["canary", "send", "--count", "4"], &cfg);
    assert_eq!(sent.trim(), "sent 4 canaries for support");

    // Six escalations reach support; nothing on them tells which are canaries.
    let mut support = Reader::new(&bs, "escalations.support");
    support.wait_for(6, Duration::from_secs(60));
    let codec = Codec::new(Default::default()).unwrap();
    let escs: Vec<Escalation> = support
        .records
        .iter()
        .map(|r| codec.decode(SchemaKind::Escalation, &r.payload).unwrap())
        .collect();
    assert!(support
        .records
        .iter()
        .all(|r| !r.headers.contains_key("handoff.canary")));
    let (real, canaries): (Vec<&Escalation>, Vec<&Escalation>) = escs
        .iter()
        .partition(|x| x.action_id.starts_with("act-real-"));
    assert_eq!((real.len(), canaries.len()), (2, 4));
    assert!(canaries
        .iter()
        .all(|x| x.action_id.starts_with("act-") && x.agent_id == "support-bot"));
    // ana rejects one and revises one (caught), sam approves one (missed), the last is left
    // alone to walk its chain (support → support_l2 → crisis_manager) and time out.
    send_decisions(
        &bs,
        &[
            answer(canaries[0], DecisionKind::Reject, "ana"),
            answer(canaries[1], DecisionKind::Revise, "ana"),
            answer(canaries[2], DecisionKind::Approve, "sam"),
            answer(real[0], DecisionKind::Approve, "ana"),
            answer(real[1], DecisionKind::Approve, "sam"),
        ],
    );
    let mut canary_topic = Reader::new(&bs, "handoff.canaries");
    let start = Instant::now();
    loop {
        canary_topic.wait_for(1, Duration::from_secs(30));
        let finals = canary_topic
            .records
            .iter()
            .filter(|r| {
                let v: Verdict = codec.decode(SchemaKind::Verdict, &r.payload).unwrap();
                v.is_final
            })
            .count();
        if finals == 4 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{finals} of 4 canaries settled"
        );
        std::thread::sleep(Duration::from_millis(300));
        canary_topic.settle(Duration::from_millis(300));
    }
    assert!(canary_topic.records.iter().all(|r| r
        .headers
        .get("handoff.canary")
        .map(String::as_str)
        == Some("reject")));

    // The agents got the two real actions' verdicts and nothing else.
    let mut verdicts = Reader::new(&bs, VERDICTS);
    verdicts.wait_for(4, Duration::from_secs(30));
    verdicts.settle(Duration::from_secs(1));
    let vs: Vec<Verdict> = verdicts
        .records
        .iter()
        .map(|r| codec.decode(SchemaKind::Verdict, &r.payload).unwrap())
        .collect();
    assert_eq!(vs.len(), 4, "{vs:?}");
    assert!(vs.iter().all(|v| v.action_id.starts_with("act-real-")));
    assert_eq!(
        vs.iter()
            .filter(|v| v.outcome == VerdictOutcome::Approved)
            .count(),
        2
    );

    // The metrics: canaries in their own families only.
    let canaries_total = |role: &str, result: &str| {
        metric(
            port,
            &format!("handoff_canaries_total{{result=\"{result}\",role=\"{role}\"}}"),
        )
    };
    assert_eq!(canaries_total("support", "caught"), 2.0);
    assert_eq!(canaries_total("support", "missed"), 1.0);
    assert_eq!(canaries_total("crisis_manager", "timed_out"), 1.0);
    assert_eq!(
        metric(
            port,
            "handoff_canary_answer_seconds_count{role=\"support\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            port,
            "handoff_human_decisions_total{decision=\"approve\",role=\"support\"}"
        ),
        2.0,
        "the real answers only"
    );
    assert_eq!(
        metric(
            port,
            "handoff_events_total{family=\"refund\",level=\"ask_first\"}"
        ),
        2.0
    );

    // The report, as an operator reads it.
    let report = handoff(&["canary", "report"], &cfg);
    println!("{report}");
    assert!(
        report.contains("| support | 3 | 2 | 1 | 0 | 0 | 0 | 67 % |"),
        "{report}"
    );
    assert!(
        report.contains("| crisis\\_manager | 1 | 0 | 0 | 1 | 0 | 0 | 0 % |"),
        "{report}"
    );
    assert!(report.contains("- sam (support): 1"), "{report}");

    // The evidence pack marks the four canaries and only them.
    let pack = dir.join("pack.jsonl");
    let to = handoff::clock::SystemClock::now() + 1;
    handoff(
        &[
            "audit",
            "export",
            "--from",
            &(started_ms - 60_000).to_string(),
            "--to",
            &to.to_string(),
            "--out",
            pack.to_str().unwrap(),
        ],
        &cfg,
    );
    let text = std::fs::read_to_string(&pack).unwrap();
    let entries: Vec<serde_json::Value> = text
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let marked = |canary: bool| {
        entries
            .iter()
            .filter(|e| e["entry"]["canary"].as_bool() == Some(canary))
            .count()
    };
    assert_eq!((marked(true), marked(false)), (4, 2), "{text}");
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}
