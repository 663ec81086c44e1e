//! A group that scales out and in while events flow: 8 partitions, members joining, leaving
//! cleanly (SIGTERM) and dying (`kill -9`). Every event is decided, no escalation is lost, and
//! the open escalations and their deadlines follow their partitions to the next owner: the
//! deadlines still move escalations along their chains, and answers still close them.

mod common;

use common::kafka::*;
use common::outputs::expected_with;
use handoff::event::{Codec, DecisionKind, Escalation, HumanDecision, SchemaKind, Verdict};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Warm escalations wait 20 s (not an hour), so deadlines fire during and after the churn.
fn short_deadlines() -> String {
    DEFAULT_MATRIX_TOML.replacen("ack_within = \"1h\"", "ack_within = \"20s\"", 1)
}

struct Member {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// Starts a member and returns it with the time until it was given partitions.
fn join(name: &'static str, cfg: &Path, dir: &Path) -> (Member, Duration) {
    let log = dir.join(format!("{name}.log"));
    let started = Instant::now();
    let child = spawn(cfg, &log);
    let deadline = Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let assigned = text
            .lines()
            .any(|l| l.contains("partitions assigned") && !l.contains("partitions=[]"));
        if assigned {
            break;
        }
        assert!(
            started.elapsed() < deadline,
            "{name} got no partitions:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (Member { name, child, log }, started.elapsed())
}

#[test]
fn members_joining_leaving_and_dying_lose_nothing_and_state_follows_the_partitions() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let dir = tmpdir("scale");
    let text = short_deadlines();
    let matrix = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
    let path = dir.join("matrix.toml");
    std::fs::write(&path, &text).unwrap();
    let cfg = config_file(
        &dir,
        &bs,
        "scale",
        &format!("[matrix]\npath = {:?}\n", path.display().to_string()),
    );
    let cfg_text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        cfg_text.replace("[kafka]\n", "[kafka]\npartitions = 8\n"),
    )
    .unwrap();

    let recs = records(9_000, 31, 2.0, 0);
    let (a, _) = join("a", &cfg, &dir);
    let feeder = {
        let bs = bs.clone();
        std::thread::spawn(move || {
            let f = Feeder::new(&bs);
            for batch in records(9_000, 31, 2.0, 0).chunks(50) {
                f.send(INPUT, batch);
                std::thread::sleep(Duration::from_millis(150));
            }
        })
    };
    let mut joined = Vec::new();
    std::thread::sleep(Duration::from_secs(4));
    let (mut bm, t) = join("b", &cfg, &dir);
    joined.push(("b", t));
    std::thread::sleep(Duration::from_secs(3));
    let (mut cm, t) = join("c", &cfg, &dir);
    joined.push(("c", t));
    std::thread::sleep(Duration::from_secs(4));
    sigterm(&bm.child);
    assert!(
        wait_exit(&mut bm.child, Duration::from_secs(40)).success(),
        "{}",
        bm.name
    );
    std::thread::sleep(Duration::from_secs(3));
    kill9(&mut cm.child);
    // tansu does not rebalance a member that joins while a killed member's session is live:
    // the next one joins after the session timeout (6 s).
    std::thread::sleep(Duration::from_secs(8));
    let (d, t) = join("d", &cfg, &dir);
    joined.push(("d", t));
    feeder.join().unwrap();
    println!("time until a new member took work: {joined:?}");

    let exp = expected_with(&matrix, &recs);
    let mut vr = Reader::new(&bs, VERDICTS);
    vr.wait_for_keys(exp.verdicts.len(), Duration::from_secs(120));
    // Every deadline of the traffic has passed (20 s after the last event) and was fired by
    // whoever owned the partition then.
    std::thread::sleep(Duration::from_secs(25));
    let codec = Codec::new(Default::default()).unwrap();
    let moved = escalations_on(&bs, "escalations.support_l2");
    let first = escalations_on(&bs, "escalations.support");
    check_every_event_and_escalation(&bs, &codec, &exp, &mut vr);
    // Each warm support escalation (a group shares one id) was acted on at its deadline by
    // whoever held its partition then: it moved on to support_l2, or — when another role of
    // the same action reached the end of its chain first — the action timed out.
    let moved_actions: BTreeSet<&str> = moved.iter().map(|x| x.action_id.as_str()).collect();
    let timed_out: BTreeSet<String> = verdicts_in(&codec, &vr.records)
        .filter(|v| {
            use handoff::event::VerdictOutcome::{TimedOutBlocked, TimedOutProceed};
            matches!(v.outcome, TimedOutBlocked | TimedOutProceed)
        })
        .map(|v| v.action_id)
        .collect();
    let mut by_id: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for x in first
        .iter()
        .filter(|x| x.tier == handoff::event::Tier::Warm)
    {
        by_id
            .entry(&x.escalation_id)
            .or_default()
            .push(&x.action_id);
    }
    let acted_on = |actions: &Vec<&str>| {
        actions
            .iter()
            .any(|a| moved_actions.contains(a) || timed_out.contains(*a))
    };
    let missed: Vec<&&str> = by_id
        .iter()
        .filter(|(_, actions)| !acted_on(actions))
        .map(|(id, _)| id)
        .collect();
    assert!(by_id.len() > 50, "{} warm support escalations", by_id.len());
    assert!(
        missed.is_empty(),
        "{} of {} support escalation(s) had nothing happen at their deadline, e.g. {:?}",
        missed.len(),
        by_id.len(),
        &missed[..missed.len().min(5)]
    );
    let n_moved = by_id
        .values()
        .filter(|a| a.iter().any(|x| moved_actions.contains(x)))
        .count();
    println!(
        "{} warm support escalations: {n_moved} moved on, the rest timed out",
        by_id.len()
    );
    assert!(n_moved > by_id.len() / 2, "most move on");

    // Answers reach the escalations wherever their partitions went: reject 20 moved ones (a
    // rejection is final whatever the other roles of the action answer).
    // (Not those whose action timed out meanwhile: an answer to those is refused as closed.)
    let answered: Vec<&Escalation> = moved
        .iter()
        .filter(|x| !timed_out.contains(&x.action_id))
        .take(20)
        .collect();
    let decisions: Vec<Sent> = answered.iter().map(|x| reject(&codec, x)).collect();
    produce(&bs, "human.decisions", &decisions);
    let want: BTreeSet<String> = answered.iter().map(|x| x.action_id.clone()).collect();
    let start = Instant::now();
    loop {
        vr.settle(Duration::from_millis(500));
        let closed: BTreeSet<String> = verdicts_in(&codec, &vr.records)
            .filter(|v| v.is_final && v.decided_by.as_deref() == Some("scale-test"))
            .map(|v| v.action_id)
            .collect();
        if want.is_subset(&closed) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "answers not applied: {} of {} ({:?} not)",
            closed.len(),
            want.len(),
            want.difference(&closed).take(3).collect::<Vec<_>>()
        );
    }
    for mut m in [a, d] {
        sigterm(&m.child);
        assert!(
            wait_exit(&mut m.child, Duration::from_secs(40)).success(),
            "{}",
            m.name
        );
        let _ = &m.log;
    }
}

/// The verdicts among records read from the verdicts topic.
fn verdicts_in<'a>(codec: &'a Codec, records: &'a [Record]) -> impl Iterator<Item = Verdict> + 'a {
    records
        .iter()
        .map(|r| codec.decode(SchemaKind::Verdict, &r.payload).unwrap())
}

fn escalations_on(bs: &str, topic: &str) -> Vec<Escalation> {
    let codec = Codec::new(Default::default()).unwrap();
    read_all(bs, topic)
        .iter()
        .filter(|r| r.headers.get("handoff.kind").map(String::as_str) == Some("escalation"))
        .map(|r| codec.decode(SchemaKind::Escalation, &r.payload).unwrap())
        .collect()
}

/// Every event's first verdict is there as the stream decides it; every first hand-over is
/// on its role's topic (at least once: a killed member's last records are decided again).
fn check_every_event_and_escalation(
    bs: &str,
    codec: &Codec,
    exp: &common::outputs::Expected,
    vr: &mut Reader,
) {
    let mut got: BTreeMap<String, Vec<Verdict>> = BTreeMap::new();
    for v in verdicts_in(codec, vr.settle(Duration::from_secs(1))) {
        got.entry(v.action_id.clone()).or_default().push(v);
    }
    let mut missing = Vec::new();
    for (action, key) in &exp.verdicts {
        let found = got
            .get(action)
            .is_some_and(|vs| vs.iter().any(|v| &common::outputs::verdict_key(v) == key));
        if !found {
            missing.push(action.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} events without their verdict: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for (topic, ids) in &exp.escalations {
        let on: BTreeSet<String> = escalations_on(bs, topic)
            .into_iter()
            .map(|x| x.escalation_id)
            .collect();
        let lost: Vec<&String> = ids.difference(&on).collect();
        assert!(
            lost.is_empty(),
            "{topic}: {} escalation(s) lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(3)]
        );
    }
}

fn reject(codec: &Codec, x: &Escalation) -> Sent {
    let d = HumanDecision {
        escalation_id: x.escalation_id.clone(),
        action_id: x.action_id.clone(),
        session_id: x.session_id.clone(),
        role: x.role.clone(),
        decided_by: "scale-test".into(),
        decision: DecisionKind::Reject,
        comment: None,
        revised_output: None,
        redirect_role: None,
        decided_at_ms: 0,
        drill: false,
        chosen_option: None,
        revised_arguments: None,
    };
    Sent::decision(
        d.session_id.clone().into_bytes(),
        codec.encode(SchemaKind::HumanDecision, &d).unwrap(),
    )
}
