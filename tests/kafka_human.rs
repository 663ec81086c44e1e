//! The human loop against a real broker (tansu): decisions close escalations, deadlines walk
//! the chain and fail closed, state survives `kill -9` and moves with its partition.

mod common;

use common::kafka::*;
use handoff::event::{
    AgentAction, Codec, DecisionKind, Escalation, HumanDecision, SchemaKind, Verdict,
    VerdictOutcome,
};
use handoff::sim::broker::free_port;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// The shipped matrix with the given tier deadlines.
fn matrix_file(dir: &Path, warm: &str, immediate: &str) -> std::path::PathBuf {
    let text = handoff::matrix::DEFAULT_MATRIX_TOML
        .replace(
            "[tiers.warm]\nack_within = \"1h\"",
            &format!("[tiers.warm]\nack_within = \"{warm}\""),
        )
        .replace(
            "[tiers.immediate]\nack_within = \"5m\"",
            &format!("[tiers.immediate]\nack_within = \"{immediate}\""),
        );
    assert!(text.contains(&format!("ack_within = \"{warm}\"")));
    let p = dir.join("matrix.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `n` refunds (ask_first → support, warm), one session each.
fn refunds(n: usize, tag: &str) -> Vec<Sent> {
    (0..n)
        .map(|i| {
            let mut e: AgentAction = common::base_event();
            e.action_id = format!("act-{tag}-{i}");
            e.session_id = format!("sess-{tag}-{i}");
            e.action_type = "refund.issue".into();
            e.amount = Some(25.0);
            Sent::action(e)
        })
        .collect()
}

fn answer(esc: &Escalation, kind: DecisionKind) -> HumanDecision {
    HumanDecision {
        escalation_id: esc.escalation_id.clone(),
        action_id: esc.action_id.clone(),
        session_id: esc.session_id.clone(),
        role: esc.role.clone(),
        decided_by: "ana@support".into(),
        decision: kind,
        comment: None,
        revised_output: (kind == DecisionKind::Revise).then(|| "Refund 20 EUR".into()),
        redirect_role: (kind == DecisionKind::Redirect).then(|| "compliance".into()),
        decided_at_ms: esc.created_at_ms + 4_000,
        drill: false,
        chosen_option: None,
        revised_arguments: None,
    }
}

fn decode_all<T: serde::de::DeserializeOwned>(r: &Reader, kind: SchemaKind) -> Vec<T> {
    let codec = Codec::new(Default::default()).unwrap();
    r.records
        .iter()
        .map(|x| codec.decode(kind, &x.payload).unwrap())
        .collect()
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < within,
            "{what} not reached within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metric(port: u16, line_prefix: &str) -> f64 {
    let (_, body) = common::http_get(port, "/metrics");
    body.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_prefix} in /metrics"))
}

fn run_config(
    dir: &Path,
    bootstrap: &str,
    group: &str,
    matrix: &Path,
    port: u16,
) -> std::path::PathBuf {
    config_file(
        dir,
        bootstrap,
        group,
        &format!(
            "[matrix]\npath = \"{}\"\n[metrics]\nbind = \"127.0.0.1:{port}\"\n",
            matrix.display()
        ),
    )
}

fn with_tick(config: &Path, tick: &str) {
    let text = std::fs::read_to_string(config).unwrap().replace(
        "[pipeline]\n",
        &format!("[pipeline]\ntimer_tick = \"{tick}\"\n"),
    );
    std::fs::write(config, text).unwrap();
}

#[test]
fn every_decision_kind_closes_the_loop_with_its_verdict_and_metrics() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let dir = tmpdir("decisions");
    let matrix = matrix_file(&dir, "10m", "10m");
    let port = free_port();
    let cfg = run_config(&dir, &bs, "loop", &matrix, port);
    // The pipeline at debug: one line per batch (its span closing) with the batch's counts.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "level = \"info\"",
        "level = \"info,handoff::pipeline=debug\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let log = dir.join("loop.log");
    let mut child = spawn(&cfg, &log);
    wait_log(&log, "partitions assigned", Duration::from_secs(60));
    produce(&bs, INPUT, &refunds(5, "d"));
    let mut support = Reader::new(&bs, "escalations.support");
    support.wait_for(5, Duration::from_secs(60));
    let mut escs: Vec<Escalation> = decode_all(&support, SchemaKind::Escalation);
    escs.sort_by(|a, b| a.action_id.cmp(&b.action_id));
    let kinds = [
        DecisionKind::Approve,
        DecisionKind::Reject,
        DecisionKind::Revise,
        DecisionKind::Redirect,
        DecisionKind::Acknowledge,
    ];
    let mut ds: Vec<HumanDecision> = escs.iter().zip(kinds).map(|(e, k)| answer(e, k)).collect();
    // The approval again, and an answer to an escalation nobody opened.
    ds.push(ds[0].clone());
    let mut stray = ds[1].clone();
    stray.escalation_id = "esc-ffffffffffffffffffffffff".into();
    ds.push(stray);
    send_decisions(&bs, &ds);

    let mut verdicts = Reader::new(&bs, VERDICTS);
    verdicts.wait_for(9, Duration::from_secs(60));
    verdicts.settle(Duration::from_secs(2));
    let vs: Vec<Verdict> = decode_all(&verdicts, SchemaKind::Verdict);
    let finals: BTreeMap<String, VerdictOutcome> = vs
        .iter()
        .filter(|v| v.outcome != VerdictOutcome::AwaitHuman)
        .map(|v| (v.action_id.clone(), v.outcome))
        .collect();
    assert_eq!(
        finals,
        BTreeMap::from([
            ("act-d-0".to_string(), VerdictOutcome::Approved),
            ("act-d-1".to_string(), VerdictOutcome::Rejected),
            ("act-d-2".to_string(), VerdictOutcome::Revised),
            ("act-d-3".to_string(), VerdictOutcome::Redirected),
        ])
    );
    assert_eq!(
        vs.len(),
        9,
        "5 initial + 4 answers; the repeat and the stray act not"
    );
    let revised = vs
        .iter()
        .find(|v| v.outcome == VerdictOutcome::Revised)
        .unwrap();
    assert_eq!(revised.revised_output.as_deref(), Some("Refund 20 EUR"));
    assert_eq!(revised.decided_by.as_deref(), Some("ana@support"));
    let compliance = escalations(&bs, "escalations.compliance");
    assert_eq!(compliance.len(), 1);
    assert_eq!(compliance[0].action_id, "act-d-3");
    assert_eq!(compliance[0].history.len(), 1);
    assert_eq!(compliance[0].history[0].role, "support");

    for k in kinds {
        assert_eq!(
            metric(
                port,
                &format!(
                    "handoff_human_decisions_total{{decision=\"{}\",role=\"support\"}}",
                    k.as_str()
                )
            ),
            1.0,
            "{k:?}"
        );
    }
    assert_eq!(
        metric(port, "handoff_decisions_ignored_total{reason=\"closed\"}"),
        1.0
    );
    assert_eq!(
        metric(port, "handoff_decisions_ignored_total{reason=\"unknown\"}"),
        1.0
    );
    assert_eq!(
        metric(
            port,
            "handoff_time_to_human_seconds_count{role=\"support\",tier=\"warm\"}"
        ),
        5.0
    );
    assert_eq!(
        metric(
            port,
            "handoff_time_to_human_seconds_bucket{role=\"support\",tier=\"warm\",le=\"5\"}"
        ),
        5.0
    );
    // Still waiting: the acknowledged one (for a decision) and the redirected one.
    assert_eq!(
        metric(
            port,
            "handoff_pending_escalations{role=\"support\",tier=\"warm\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            port,
            "handoff_pending_escalations{role=\"compliance\",tier=\"immediate\"}"
        ),
        1.0
    );
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    let field = |line: &str, name: &str| -> u64 {
        line.split([' ', '{', '}'])
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let batches: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("batch{") && l.contains("close"))
        .collect();
    assert!(!batches.is_empty(), "no batch spans in:\n{text}");
    let total = |name: &str| batches.iter().map(|l| field(l, name)).sum::<u64>();
    assert_eq!(total("decided"), 5, "{batches:#?}");
    assert_eq!(total("decisions"), 7, "{batches:#?}");
    assert_eq!(total("records"), 12, "{batches:#?}");
    // Nothing per event at info: no action id appears in an INFO line.
    assert!(
        !text
            .lines()
            .any(|l| l.contains(" INFO ") && l.contains("act-d-")),
        "{text}"
    );
}

#[test]
fn deadlines_walk_the_chain_fail_closed_and_fire_once_across_kill_9() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let dir = tmpdir("deadlines");
    let matrix = matrix_file(&dir, "6s", "4s");
    let port = free_port();
    let cfg = run_config(&dir, &bs, "deadlines", &matrix, port);
    with_tick(&cfg, "200ms");
    let log = dir.join("first.log");
    let mut child = spawn(&cfg, &log);
    wait_log(&log, "partitions assigned", Duration::from_secs(60));
    let n = 20;
    produce(&bs, INPUT, &refunds(n, "k"));
    let mut support = Reader::new(&bs, "escalations.support");
    support.wait_for(n, Duration::from_secs(60));
    let first: Vec<Escalation> = decode_all(&support, SchemaKind::Escalation);
    // One of them is acknowledged in time: it must never move on.
    let acked = first
        .iter()
        .find(|e| e.action_id == "act-k-0")
        .unwrap()
        .clone();
    send_decisions(&bs, &[answer(&acked, DecisionKind::Acknowledge)]);
    // Let the first deadlines fire (support → support_l2), then kill in the middle of the chain.
    let mut l2 = Reader::new(&bs, "escalations.support_l2");
    l2.wait_for(1, Duration::from_secs(60));
    kill9(&mut child);
    // A new member gets the partitions only after the dead one's session (6 s) expired.
    std::thread::sleep(Duration::from_secs(8));
    let log2 = dir.join("second.log");
    let mut child = spawn(&cfg, &log2);
    wait_log(
        &log2,
        "state restored from the changelog",
        Duration::from_secs(60),
    );

    let mut verdicts = Reader::new(&bs, VERDICTS);
    wait_until("every chain exhausted", Duration::from_secs(90), || {
        verdicts.settle(Duration::from_millis(300));
        let vs: Vec<Verdict> = decode_all(&verdicts, SchemaKind::Verdict);
        vs.iter()
            .filter(|v| v.outcome == VerdictOutcome::TimedOutBlocked)
            .map(|v| v.action_id.clone())
            .collect::<BTreeSet<_>>()
            .len()
            >= n - 1
    });
    // Two more deadlines' worth of quiet: nothing else may fire.
    std::thread::sleep(Duration::from_secs(10));
    verdicts.settle(Duration::from_secs(1));
    let vs: Vec<Verdict> = decode_all(&verdicts, SchemaKind::Verdict);
    let blocked: BTreeSet<String> = vs
        .iter()
        .filter(|v| v.outcome == VerdictOutcome::TimedOutBlocked)
        .map(|v| v.action_id.clone())
        .collect();
    let want: BTreeSet<String> = (1..n).map(|i| format!("act-k-{i}")).collect();
    assert_eq!(
        blocked, want,
        "every unacknowledged action blocked; the acknowledged one not"
    );

    let ids = |topic: &str| -> (BTreeSet<String>, usize, Vec<Escalation>) {
        let es = escalations(&bs, topic);
        let set: BTreeSet<String> = es.iter().map(|e| e.escalation_id.clone()).collect();
        (set, es.len(), es)
    };
    let (l2_ids, l2_records, l2_escs) = ids("escalations.support_l2");
    let (cm_ids, cm_records, cm_escs) = ids("escalations.crisis_manager");
    assert_eq!(l2_ids.len(), n - 1, "each support deadline fired once");
    assert_eq!(cm_ids.len(), n - 1, "each support_l2 deadline fired once");
    assert!(l2_escs.iter().all(|e| e.action_id != "act-k-0"));
    assert!(cm_escs
        .iter()
        .all(|e| e.history.len() == 2 && e.sequence == 2));
    // Re-escalations published by the first run fired within a tick (plus scheduling slack)
    // of their deadline: their history says when the previous role was called.
    let support_deadline: BTreeMap<String, i64> = first
        .iter()
        .map(|e| (e.action_id.clone(), e.deadline_ms))
        .collect();
    let late: Vec<i64> = l2_escs
        .iter()
        .map(|e| e.created_at_ms - support_deadline[&e.action_id])
        .collect();
    assert!(late.iter().all(|l| *l >= 0), "never early: {late:?}");
    eprintln!(
        "support_l2: {l2_records} records for {} ids; crisis_manager: {cm_records} for {}; \
         firing delay after due, ms: {late:?}",
        l2_ids.len(),
        cm_ids.len()
    );
    assert!(metric(port, "handoff_timeouts_total{outcome=\"blocked\"}") >= 1.0);
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}

#[test]
fn a_partition_moving_to_another_member_carries_its_open_escalations() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let dir = tmpdir("move");
    let matrix = matrix_file(&dir, "10m", "10m");
    let (pa, pb) = (free_port(), free_port());
    let cfg_a = run_config(&dir, &bs, "move", &matrix, pa);
    let cfg_b = dir.join("move-b.toml");
    std::fs::write(
        &cfg_b,
        std::fs::read_to_string(&cfg_a)
            .unwrap()
            .replace(&format!("127.0.0.1:{pa}"), &format!("127.0.0.1:{pb}")),
    )
    .unwrap();
    let log_a = dir.join("a.log");
    let mut a = spawn(&cfg_a, &log_a);
    wait_log(&log_a, "partitions assigned", Duration::from_secs(60));
    let n = 12;
    produce(&bs, INPUT, &refunds(n, "m"));
    let mut support = Reader::new(&bs, "escalations.support");
    support.wait_for(n, Duration::from_secs(60));
    assert_eq!(
        metric(
            pa,
            "handoff_pending_escalations{role=\"support\",tier=\"warm\"}"
        ),
        n as f64
    );
    // A leaves; B takes every partition and must restore A's open escalations.
    let log_b = dir.join("b.log");
    let mut bm = spawn(&cfg_b, &log_b);
    wait_log(&log_b, "partitions assigned", Duration::from_secs(60));
    sigterm(&a);
    assert!(wait_exit(&mut a, Duration::from_secs(30)).success());
    wait_until("B holds every escalation", Duration::from_secs(60), || {
        metric(
            pb,
            "handoff_pending_escalations{role=\"support\",tier=\"warm\"}",
        ) == n as f64
    });
    let escs: Vec<Escalation> = decode_all(&support, SchemaKind::Escalation);
    let ds: Vec<HumanDecision> = escs
        .iter()
        .map(|e| answer(e, DecisionKind::Approve))
        .collect();
    send_decisions(&bs, &ds);
    let mut verdicts = Reader::new(&bs, VERDICTS);
    wait_until("every action approved", Duration::from_secs(60), || {
        verdicts.settle(Duration::from_millis(300));
        let vs: Vec<Verdict> = decode_all(&verdicts, SchemaKind::Verdict);
        vs.iter()
            .filter(|v| v.outcome == VerdictOutcome::Approved)
            .count()
            >= n
    });
    assert_eq!(
        metric(pb, "handoff_decisions_ignored_total{reason=\"unknown\"}"),
        0.0
    );
    sigterm(&bm);
    assert!(wait_exit(&mut bm, Duration::from_secs(30)).success());
}

#[test]
fn a_burst_of_1000_escalations_for_one_role_is_limited_and_nothing_is_lost() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let dir = tmpdir("burst");
    // support: at most 20 messages in any 20 s.
    let text = handoff::matrix::DEFAULT_MATRIX_TOML.replace(
        "[roles.support]\n",
        "[roles.support]\nrate_limit = { max = 20, per = \"20s\" }\n",
    );
    let matrix = dir.join("matrix.toml");
    std::fs::write(&matrix, text).unwrap();
    let port = free_port();
    let cfg = run_config(&dir, &bs, "burst", &matrix, port);
    with_tick(&cfg, "200ms");
    let log = dir.join("burst.log");
    let mut child = spawn(&cfg, &log);
    wait_log(&log, "partitions assigned", Duration::from_secs(60));
    let started = Instant::now();
    produce(&bs, INPUT, &refunds(1000, "b"));
    let produced_in = started.elapsed();
    let mut support = Reader::new(&bs, "escalations.support");
    let is_digest =
        |r: &Record| r.headers.get("handoff.kind").map(String::as_str) == Some("digest");
    wait_until("the digest", Duration::from_secs(90), || {
        support.settle(Duration::from_millis(300));
        support.records.iter().any(is_digest)
    });
    support.settle(Duration::from_secs(2));
    let codec = Codec::new(Default::default()).unwrap();
    let mut ids = BTreeSet::new();
    let mut singles = 0;
    let mut digests = 0;
    for r in &support.records {
        if is_digest(r) {
            digests += 1;
            let d: handoff::event::Digest = codec.decode(SchemaKind::Digest, &r.payload).unwrap();
            for item in d.items {
                assert!(item.escalation_id.is_some());
                ids.insert(item.action_id);
            }
        } else {
            singles += 1;
            let e: Escalation = codec.decode(SchemaKind::Escalation, &r.payload).unwrap();
            ids.insert(e.action_id);
        }
    }
    eprintln!(
        "1000 escalations produced in {produced_in:?}: {singles} single message(s) + {digests} \
         digest(s) to support"
    );
    assert!(
        produced_in < Duration::from_secs(60),
        "not a burst within a minute"
    );
    assert!(
        singles + digests <= 20,
        "{singles} escalations + {digests} digests"
    );
    assert_eq!(ids.len(), 1000, "every escalation accounted for");
    assert_eq!(
        metric(port, "handoff_escalations_folded_total{role=\"support\"}"),
        (1000 - singles) as f64
    );
    assert_eq!(
        metric(port, "handoff_digests_total{target=\"support\"}"),
        digests as f64
    );
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}

#[test]
fn on_a_virtual_clock_an_hour_of_deadlines_passes_in_seconds() {
    use handoff::clock::{Clock, VirtualClock};
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let mut settings = settings(&bs);
    settings.kafka.group_id = "virtual".into();
    settings.pipeline.timer_tick = Duration::from_millis(100);
    settings.metrics.enabled = false;
    let clock = VirtualClock::new(1_800_000_000_000);
    let matrix = std::sync::Arc::new(handoff::matrix::Matrix::default_matrix().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let c2: std::sync::Arc<dyn Clock> = std::sync::Arc::new(clock.clone());
    let s2 = settings.clone();
    let run = rt.spawn(async move {
        handoff::pipeline::run_with_clock(
            &s2,
            handoff::matrix::Rules::new(matrix),
            c2,
            async {
                let _ = stop_rx.await;
            },
            |_| {},
        )
        .await
    });
    let n = 10;
    produce(&bs, INPUT, &refunds(n, "v"));
    let mut support = Reader::new(&bs, "escalations.support");
    support.wait_for(n, Duration::from_secs(60));
    let escs: Vec<Escalation> = decode_all(&support, SchemaKind::Escalation);
    assert!(escs.iter().all(|e| e.created_at_ms == 1_800_000_000_000));
    // Warm: 1 h, then support_l2 and crisis_manager 5 min each: move the clock, not the world.
    let started = Instant::now();
    let mut verdicts = Reader::new(&bs, VERDICTS);
    for minutes in [61, 67, 73] {
        clock.advance_to(1_800_000_000_000 + minutes * 60_000);
        std::thread::sleep(Duration::from_millis(1500));
    }
    wait_until("every chain exhausted", Duration::from_secs(60), || {
        verdicts.settle(Duration::from_millis(300));
        let vs: Vec<Verdict> = decode_all(&verdicts, SchemaKind::Verdict);
        vs.iter()
            .filter(|v| v.outcome == VerdictOutcome::TimedOutBlocked)
            .count()
            >= n
    });
    let vs: Vec<Verdict> = decode_all(&verdicts, SchemaKind::Verdict);
    let blocked: Vec<&Verdict> = vs
        .iter()
        .filter(|v| v.outcome == VerdictOutcome::TimedOutBlocked)
        .collect();
    // Decided at the virtual time of the last deadline, not the wall clock's.
    assert!(blocked
        .iter()
        .all(|v| v.decided_at_ms == 1_800_000_000_000 + 73 * 60_000));
    let cm = escalations(&bs, "escalations.crisis_manager");
    assert_eq!(cm.len(), n);
    assert!(cm
        .iter()
        .all(|e| e.created_at_ms == 1_800_000_000_000 + 67 * 60_000));
    eprintln!("73 virtual minutes of deadlines in {:?}", started.elapsed());
    let _ = stop_tx.send(());
    rt.block_on(run).unwrap().unwrap();
}
