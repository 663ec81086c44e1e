//! Each shipped game-day scenario runs on the virtual clock against a real broker, and its
//! report's figures match an independent count of the drill topics it wrote.

mod common;

use common::kafka::*;
use handoff::event::{Codec, Digest, Escalation, SchemaKind, Verdict, VerdictOutcome};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Runs `handoff gameday SCENARIO ARGS… --out DIR`, checks it succeeded, returns report.json.
fn gameday(scenario: &Path, args: &[&str], out: &Path) -> Value {
    let run = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("gameday")
        .arg(scenario)
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

fn check(scenario: &str) {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let out = tmpdir(&format!("gameday-{scenario}"));
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("deploy/gameday/{scenario}.toml"));
    let started = std::time::Instant::now();
    let report = gameday(&path, &["--bootstrap", &bs], &out);
    eprintln!("{scenario}: drill ran in {:?}", started.elapsed());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let png = std::fs::read(out.join("timeline.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "timeline.png is a PNG");
    assert!(md.contains("](timeline.png)"));
    assert!(md.contains("## Post-mortem") && md.contains("**Causes:** _…_"));

    // Count the drill topics independently.
    let codec = Codec::new(Default::default()).unwrap();
    let verdicts: Vec<Verdict> = read_all(&bs, "drill.agent.verdicts")
        .iter()
        .map(|r| codec.decode(SchemaKind::Verdict, &r.payload).unwrap())
        .collect();
    let initial: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| {
            matches!(
                v.outcome,
                VerdictOutcome::Proceed
                    | VerdictOutcome::ProceedAndLog
                    | VerdictOutcome::AwaitHuman
                    | VerdictOutcome::Stopped
            )
        })
        .collect();
    assert_eq!(report["events"], initial.len());
    let needs_human = initial.iter().filter(|v| v.level.needs_human()).count();
    assert_eq!(report["needs_human"], needs_human);
    let blocked = verdicts
        .iter()
        .filter(|v| v.outcome == VerdictOutcome::TimedOutBlocked)
        .count();
    assert_eq!(report["fail_closed"], blocked);
    assert!(report["events"].as_u64().unwrap() > 1000);
    assert!(needs_human > 100, "a crisis, not a quiet day");

    let m = handoff::matrix::Matrix::default_matrix().unwrap();
    let mut total_re = 0;
    for role in m.roles() {
        let topic = format!("drill.{}", role.topic);
        let mut ids = BTreeSet::new();
        let mut moved = BTreeSet::new();
        let mut digests = 0;
        for r in read_all(&bs, &topic) {
            if r.headers.get("handoff.kind").map(String::as_str) == Some("digest") {
                digests += 1;
                let d: Digest = codec.decode(SchemaKind::Digest, &r.payload).unwrap();
                ids.extend(d.items.into_iter().filter_map(|i| i.escalation_id));
            } else {
                let e: Escalation = codec.decode(SchemaKind::Escalation, &r.payload).unwrap();
                if e.history
                    .last()
                    .is_some_and(|h| !h.reason.starts_with("redirected"))
                {
                    moved.insert(e.escalation_id.clone());
                }
                ids.insert(e.escalation_id);
            }
        }
        let fig = &report["roles"][&role.name];
        assert_eq!(
            fig["escalations"],
            ids.len(),
            "{scenario}: escalations to {}",
            role.name
        );
        assert_eq!(
            fig["re_escalations"],
            moved.len(),
            "{scenario}: re-escalations to {}",
            role.name
        );
        assert_eq!(
            fig["digests"], digests,
            "{scenario}: digests to {}",
            role.name
        );
        total_re += moved.len();
    }
    let by_tier: usize = report["re_escalations_by_tier"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap() as usize)
        .sum();
    assert_eq!(by_tier, total_re);
    // Nothing reached a real topic.
    for topic in [
        "agent.verdicts",
        "escalations.trader",
        "escalations.support",
    ] {
        let c: rdkafka::consumer::BaseConsumer = rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .create()
            .unwrap();
        use rdkafka::consumer::Consumer;
        let md = c
            .fetch_metadata(Some(topic), std::time::Duration::from_secs(5))
            .unwrap();
        let exists = md
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
        assert!(
            !exists || read_all(&bs, topic).is_empty(),
            "{topic} got drill records"
        );
    }
    let finals: BTreeMap<String, u64> = report["final_verdicts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    let counted = verdicts
        .iter()
        .filter(|v| {
            v.is_final
                && !matches!(
                    v.outcome,
                    VerdictOutcome::Proceed | VerdictOutcome::ProceedAndLog
                )
        })
        .count() as u64;
    assert_eq!(finals.values().sum::<u64>(), counted);
}

#[test]
fn the_flash_crash_drill_report_matches_the_drill_topics() {
    check("flash-crash");
}

#[test]
fn the_support_surge_drill_report_matches_the_drill_topics() {
    check("support-surge");
}

#[test]
fn a_drill_can_replay_a_recorded_topic_onto_its_clock() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    create_topics(&bs, &[INPUT]);
    let recs = records(200, 9, 5.0, 0);
    produce(&bs, INPUT, &recs);
    let dir = tmpdir("gameday-recorded");
    let scenario = dir.join("recorded.toml");
    std::fs::write(
        &scenario,
        "name = \"recorded\"\nduration = \"10m\"\nrecorded_topic = \"agent.actions\"\n\
         [responders.owner]\nack_min = \"10s\"\nack_max = \"1m\"\n",
    )
    .unwrap();
    let report = gameday(&scenario, &["--bootstrap", &bs], &dir.join("out"));
    assert_eq!(report["events"], 200);
    let want = handoff::offline::eval_lines(
        &handoff::matrix::Matrix::default_matrix().unwrap(),
        &Codec::new(Default::default()).unwrap(),
        std::io::Cursor::new(
            recs.iter()
                .map(|r| serde_json::to_string(r.event.as_ref().unwrap()).unwrap() + "\n")
                .collect::<String>(),
        ),
        std::io::sink(),
        std::io::sink(),
    )
    .unwrap();
    assert_eq!(
        report["needs_human"],
        want.by_level[2] + want.by_level[3],
        "the same decisions as eval on the recorded events"
    );
}

#[test]
fn on_the_wall_clock_a_drill_runs_against_a_live_drill_deployment() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let dir = tmpdir("gameday-live");
    // The live deployment: handoff run --drill.
    let cfg = config_file(&dir, &bs, "live", "[metrics]\nenabled = false\n");
    let log = dir.join("drill.log");
    let mut drill = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["run", "--drill", "--config"])
        .arg(&cfg)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_log(
        &log,
        "partitions assigned",
        std::time::Duration::from_secs(60),
    );
    let scenario = dir.join("live.toml");
    std::fs::write(&scenario, live_scenario("live flash", "12s")).unwrap();
    let report = gameday(
        &scenario,
        &["--wall-clock", "--grace", "8s", "--bootstrap", &bs],
        &dir.join("out"),
    );
    // Independent count of what the live deployment wrote.
    let codec = Codec::new(Default::default()).unwrap();
    let verdicts: Vec<Verdict> = read_all(&bs, "drill.agent.verdicts")
        .iter()
        .map(|r| codec.decode(SchemaKind::Verdict, &r.payload).unwrap())
        .collect();
    let initial = verdicts.iter().filter(|v| v.outcome.is_first()).count();
    assert_eq!(report["events"], initial);
    assert!(initial >= 130, "{initial} events decided");
    let traders: BTreeSet<String> = read_all(&bs, "drill.escalations.trader")
        .iter()
        .map(|r| {
            codec
                .decode::<Escalation>(SchemaKind::Escalation, &r.payload)
                .unwrap()
                .escalation_id
        })
        .collect();
    assert_eq!(report["roles"]["trader"]["escalations"], traders.len());
    assert!(traders.len() >= 10);
    // The people answered: acknowledgements 1–2 s after the escalations, then rejections.
    let trader = &report["roles"]["trader"];
    assert!(trader["acknowledged"].as_u64().unwrap() >= 1);
    let p50 = trader["escalation_to_ack"]["p50_s"].as_f64().unwrap();
    assert!((0.5..5.0).contains(&p50), "{p50}");
    let rejected = verdicts
        .iter()
        .filter(|v| v.outcome == VerdictOutcome::Rejected)
        .count();
    assert!(rejected >= 1, "the rejections reached the live deployment");
    sigterm(&drill);
    assert!(wait_exit(&mut drill, std::time::Duration::from_secs(30)).success());
}
