//! The tools that read recorded traffic, on topics that are still flowing: `audit export` and
//! `suggest` over the last minute, while the processor decides the fleet's traffic at the demo's
//! rate and simulated people answer, must finish (before, they waited for a quiet second that
//! a live topic never has) and count exactly the actions first decided in the range.

mod common;

use common::kafka::*;
use common::prometheus::Killed;
use handoff::event::VerdictOutcome;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn now_ms() -> i64 {
    handoff::clock::SystemClock::now()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn pack_entries(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("entry").cloned())
        .collect()
}

#[test]
fn audit_export_and_suggest_over_the_last_minute_of_a_live_topic_end_with_the_right_counts() {
    let _serial = serial();
    let broker = broker();
    let bs = broker.bootstrap();
    let dir = tmpdir("live-tools");
    let cfg = config_file(&dir, &bs, "live-tools", "");
    let cfg_s = cfg.to_str().unwrap();
    let mut processor = Killed(spawn(&cfg, &dir.join("run.log")));
    wait_log(
        &dir.join("run.log"),
        "handoff is running",
        Duration::from_secs(60),
    );
    let rate = handoff::cli::DEMO_RATE.to_string();
    let _people = Killed(
        Command::new(handoff_bin())
            .args([
                "respond", "--config", cfg_s, "--delay", "300ms", "--jitter", "700ms",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut traffic = Killed(
        Command::new(handoff_bin())
            .args(["generate", "--topic", "agent.actions", "--bootstrap", &bs])
            .args([
                "--rate",
                &rate,
                "--count",
                "100000000",
                "--trigger-boost",
                "3",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(75));
    let (from, to) = (now_ms() - 65_000, now_ms() - 5_000);
    let (from_s, to_s) = (from.to_string(), to.to_string());
    let pack = dir.join("pack.jsonl");
    let recorded = dir.join("records");
    let (export, export_took) = run_within(
        &[
            "audit", "export", "--from", &from_s, "--to", &to_s, "--config", cfg_s, "--out",
        ]
        .into_iter()
        .chain([
            pack.to_str().unwrap(),
            "--records",
            recorded.to_str().unwrap(),
        ])
        .collect::<Vec<_>>(),
        Duration::from_secs(180),
    );
    assert!(export.status.success(), "{}", text(&export));
    // suggest over the range, from the topics or (with `sources`) from files, into `out`.
    let suggest_into = |out: &std::path::Path, sources: &[&str], within| {
        let mut args = vec![
            "suggest",
            "--from",
            &from_s,
            "--to",
            &to_s,
            "--config",
            cfg_s,
            "--min-cases",
            "5",
        ];
        args.extend_from_slice(sources);
        args.extend(["--out", out.to_str().unwrap()]);
        run_within(&args, within)
    };
    let out = dir.join("suggest");
    let (suggest, suggest_took) = suggest_into(&out, &[], Duration::from_secs(180));
    assert!(suggest.status.success(), "{}", text(&suggest));
    assert!(
        traffic.0.try_wait().unwrap().is_none() && processor.0.try_wait().unwrap().is_none(),
        "the traffic flowed the whole time"
    );
    eprintln!("audit export took {export_took:?}, suggest {suggest_took:?}, while traffic flowed");
    // Stop the traffic, let the processor catch up, and count by reading everything back.
    let _ = traffic.0.kill();
    std::thread::sleep(Duration::from_secs(5));
    let first: BTreeSet<String> = verdicts(&bs)
        .into_iter()
        .filter(|v| v.outcome.is_first() && (from..to).contains(&v.decided_at_ms))
        .map(|v| v.action_id)
        .collect();
    assert!(first.len() > 1000, "a minute of traffic: {}", first.len());
    let entries = pack_entries(&pack);
    let ids: BTreeSet<String> = entries
        .iter()
        .map(|e| e["action_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), entries.len(), "one entry per action");
    assert_eq!(ids, first, "exactly the actions first decided in the range");
    for e in &entries {
        let escalated = matches!(e["level"].as_str(), Some("ask_first" | "hard_stop"));
        let shown = e["shown"].as_array().unwrap();
        assert!(
            !escalated || !shown.is_empty(),
            "escalated, nothing shown: {e}"
        );
        let human: VerdictOutcome = serde_json::from_value(e["outcome"].clone()).unwrap();
        let by_person = matches!(
            human,
            VerdictOutcome::Approved | VerdictOutcome::Rejected | VerdictOutcome::Revised
        );
        let answers = e["answers"].as_array().unwrap();
        assert!(
            !by_person || !answers.is_empty(),
            "decided by a person, no answer: {e}"
        );
    }
    let report = report_json(&out);
    let counted = report["actions"].as_u64().unwrap()
        + report["skipped"]["canaries"].as_u64().unwrap()
        + report["skipped"]["drills"].as_u64().unwrap();
    assert_eq!(
        counted as usize,
        first.len(),
        "suggest counts the same actions"
    );
    // The files `audit export --records` wrote are what suggest reads: the same cases from them
    // as from the topics.
    let from_files = dir.join("suggest-files");
    let file = |name: &str| recorded.join(name).to_str().unwrap().to_string();
    let (events, verdicts) = (file("events.jsonl"), file("verdicts.jsonl"));
    let (decisions, canaries) = (file("decisions.jsonl"), file("canaries.jsonl"));
    let sources = [
        "--events",
        &events,
        "--verdicts",
        &verdicts,
        "--decisions",
        &decisions,
        "--canaries",
        &canaries,
    ];
    let (suggest_files, _) = suggest_into(&from_files, &sources, Duration::from_secs(60));
    assert!(suggest_files.status.success(), "{}", text(&suggest_files));
    let files_report = report_json(&from_files);
    for key in [
        "/actions",
        "/escalated",
        "/skipped/canaries",
        "/skipped/drills",
    ] {
        let (files, topics) = (&files_report.pointer(key), &report.pointer(key));
        assert!(files.is_some(), "{key} in {files_report}");
        assert_eq!(
            files, topics,
            "{key}: from the files against from the topics"
        );
    }
    drop(processor);
}

fn report_json(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

fn lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `handoff tail` shows what handoff wrote, decoded, on every kind of topic; filters by action
/// and session; follows a topic until Ctrl-C; and names the topics it knows when given another.
#[test]
fn tail_shows_every_topic_decoded_filters_and_follows() {
    let _serial = serial();
    let broker = broker();
    let bs = broker.bootstrap();
    let dir = tmpdir("tail");
    let cfg = config_file(&dir, &bs, "tail", "");
    let cfg_s = cfg.to_str().unwrap();
    let _processor = Killed(spawn(&cfg, &dir.join("run.log")));
    wait_log(
        &dir.join("run.log"),
        "handoff is running",
        Duration::from_secs(60),
    );
    let sent = records(200, 11, 4.0, 50);
    produce(&bs, INPUT, &sent);
    let mut v = Reader::new(&bs, VERDICTS);
    v.wait_for(196, Duration::from_secs(60));
    let tail = |args: &[&str]| {
        let mut all = vec!["tail", "--config", cfg_s];
        all.extend_from_slice(args);
        run_within(&all, Duration::from_secs(60)).0
    };
    let escalated = verdicts(&bs)
        .into_iter()
        .find(|v| v.level.needs_human())
        .expect("an escalated action");
    let (action, session) = (escalated.action_id.as_str(), escalated.session_id.as_str());
    let out = tail(&[VERDICTS, "--action", action]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = lines(&out);
    assert!(!shown.is_empty());
    for l in &shown {
        // The value is the record's JSON form: what suggest's files hold.
        let v: handoff::event::Verdict = serde_json::from_value(l["value"].clone()).unwrap();
        assert_eq!(v.action_id, action);
        assert_eq!(
            (l["kind"].as_str(), l["value"]["action_id"].as_str()),
            (Some("verdict"), Some(action))
        );
    }
    let role = &escalated.roles[0];
    let topic = format!("escalations.{role}");
    let esc = lines(&tail(&[&topic, "--action", action]));
    assert_eq!(esc[0]["kind"], "escalation", "{esc:?}");
    assert!(esc[0]["value"]["context"].is_object());
    let state = lines(&tail(&["handoff.state", "--session", session]));
    assert!(state
        .iter()
        .all(|l| l["key"] == session && l["kind"] == "session_state"));
    assert!(!state.is_empty());
    let events = lines(&tail(&[INPUT, "--session", session, "--limit", "1"]));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["kind"], "action");
    let e: handoff::event::AgentAction =
        serde_json::from_value(events[0]["value"].clone()).unwrap();
    assert_eq!(e.session_id, session);
    let dead = lines(&tail(&[DLQ]));
    assert_eq!(dead.len(), 4, "every 50th record was malformed: {dead:?}");
    assert!(dead
        .iter()
        .all(|l| l["kind"] == "dead_letter" && l["headers"].is_object()));
    // Following: a record written after the start shows, then Ctrl-C ends it cleanly.
    let mut follow = Command::new(handoff_bin())
        .args(["tail", "--config", cfg_s, VERDICTS, "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    produce(&bs, INPUT, &records(1, 99, 0.0, 0));
    std::thread::sleep(Duration::from_secs(4));
    sigterm(&follow);
    assert!(wait_exit(&mut follow, Duration::from_secs(20)).success());
    let out = follow.wait_with_output().unwrap();
    let followed = lines(&out);
    assert_eq!(followed.len(), 1, "only what arrived: {followed:?}");
    // A topic handoff does not use: refused, naming the ones it knows.
    let other = tail(&["somebody.else"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other).contains("it knows agent.actions, agent.verdicts"),
        "{}",
        text(&other)
    );
}
