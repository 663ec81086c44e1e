//! Fatigue control through the processor, without a broker: grouping, per-role rate limits with
//! digests, the review queue and sampling — driven with explicit times.

mod common;

use common::run::Run;

use handoff::config::Settings;
use handoff::event::{
    AgentAction, DecisionKind, DigestReason, HumanDecision, SchemaKind, VerdictOutcome,
};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::output::Output;
use handoff::pipeline::process::{Input, Processor, Stage};
use std::collections::BTreeSet;
use std::sync::Arc;

const T0: i64 = 1_800_000_000_000;

fn processor(matrix_toml: &str) -> Processor {
    let m = Matrix::from_toml_str(matrix_toml, MatrixSource::Default).unwrap();
    Processor::new(&Settings::default(), Arc::new(m)).unwrap()
}

/// The shipped matrix with a line added to `[roles.support]` and `[fatigue]` settings changed
/// (`fatigue` holds `key = value` lines replacing the shipped ones).
fn with(role_line: &str, fatigue: &str) -> String {
    let mut text = DEFAULT_MATRIX_TOML.replace(
        "[roles.support]\n",
        &format!("[roles.support]\n{role_line}\n"),
    );
    for line in fatigue.lines().filter(|l| l.contains('=')) {
        let key = line.split('=').next().unwrap().trim();
        let old = text
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in the shipped [fatigue]"))
            .to_string();
        text = text.replace(&old, line);
    }
    text
}

fn refund(i: usize, session: &str) -> AgentAction {
    let mut e = common::base_event();
    e.action_id = format!("act-{i}");
    e.session_id = session.into();
    e.action_type = "refund.issue".into();
    e.amount = Some(30.0);
    e
}

/// Support approves an escalation.
fn approval(escalation_id: &str, action_id: &str, session_id: &str, at: i64) -> HumanDecision {
    HumanDecision {
        escalation_id: escalation_id.into(),
        action_id: action_id.into(),
        session_id: session_id.into(),
        role: "support".into(),
        decided_by: "ana".into(),
        decision: DecisionKind::Approve,
        comment: None,
        revised_output: None,
        redirect_role: None,
        decided_at_ms: at,
        drill: false,
        chosen_option: None,
        revised_arguments: None,
    }
}

#[test]
fn a_burst_of_1000_escalations_yields_at_most_max_messages_and_accounts_for_every_one() {
    let mut run = Run::new(processor(&with(
        "rate_limit = { max = 20, per = \"1m\" }",
        "",
    )));
    // 1,000 refunds from 1,000 sessions within 50 seconds.
    for i in 0..1000 {
        run.event(&refund(i, &format!("s-{i}")), T0 + i as i64 * 50);
        if i % 100 == 0 {
            run.tick(T0 + i as i64 * 50);
        }
    }
    // The 20th escalation (at +950 ms) is the first folded one: its digest goes a minute later.
    run.tick(T0 + 60_949);
    assert!(
        run.digests("escalations.support").is_empty(),
        "not before a minute"
    );
    run.tick(T0 + 60_950);
    let singles = run.escalations("escalations.support");
    let digests = run.digests("escalations.support");
    let messages = run.on("escalations.support").len();
    assert_eq!(singles.len(), 19);
    assert_eq!(digests.len(), 1);
    assert!(messages <= 20, "{messages} messages");
    let mut ids: BTreeSet<String> = singles.iter().map(|e| e.action_id.clone()).collect();
    for item in &digests[0].items {
        assert_eq!(item.reason, DigestReason::RateLimited);
        assert!(item.escalation_id.is_some());
        assert!(ids.insert(item.action_id.clone()), "listed twice");
    }
    assert_eq!(
        ids.len(),
        1000,
        "every escalation is in a single or in the digest"
    );
    // The folded ones are still open escalations: a decision by id works.
    let item = &digests[0].items[5];
    let d = approval(
        item.escalation_id.as_ref().unwrap(),
        &item.action_id,
        &item.session_id,
        T0 + 61_000,
    );
    run.decide(&d, T0 + 61_000);
    assert!(run
        .verdicts()
        .iter()
        .any(|v| v.action_id == item.action_id && v.outcome == VerdictOutcome::Approved));
    // Once the digest is confirmed delivered, the sessions drop their queued items.
    run.tick(T0 + 62_000);
    let state = run.p.state(0).unwrap();
    assert!(
        state.queued().is_empty(),
        "{} still queued",
        state.queued().len()
    );
    // Other roles are not limited.
    assert!(run.digests("escalations.owner").is_empty());
}

#[test]
fn the_same_session_and_trigger_update_one_open_escalation_and_one_decision_decides_all() {
    let mut run = Run::new(processor(DEFAULT_MATRIX_TOML));
    // Three refunds in one session within two minutes: one escalation, updated twice.
    for i in 0..3 {
        run.event(&refund(i, "s-1"), T0 + i as i64 * 60_000);
    }
    let escs = run.escalations("escalations.support");
    assert_eq!(escs.len(), 3, "the first and two updates");
    let id = &escs[0].escalation_id;
    assert!(escs.iter().all(|e| &e.escalation_id == id), "{escs:#?}");
    assert_eq!(escs[2].grouped_action_ids, vec!["act-1", "act-2"]);
    assert_eq!(
        escs[2].deadline_ms, escs[0].deadline_ms,
        "the open deadline holds"
    );
    let vs = run.verdicts();
    assert!(vs.iter().all(|v| v.escalation_ids == vec![id.clone()]));
    assert_eq!(run.p.state(0).unwrap().pending().len(), 1);
    // After the window, a new one opens.
    run.event(&refund(3, "s-1"), T0 + 11 * 60_000);
    let escs = run.escalations("escalations.support");
    assert_ne!(&escs[3].escalation_id, id);
    // One approval decides the three grouped actions.
    run.out.clear();
    run.decide(
        &approval(id, "act-0", "s-1", T0 + 12 * 60_000),
        T0 + 12 * 60_000,
    );
    let approved: BTreeSet<String> = run
        .verdicts()
        .into_iter()
        .filter(|v| v.outcome == VerdictOutcome::Approved)
        .map(|v| v.action_id)
        .collect();
    assert_eq!(
        approved,
        BTreeSet::from(["act-0".into(), "act-1".into(), "act-2".into()])
    );
}

#[test]
fn a_grouped_event_processed_again_joins_the_same_escalation_once() {
    let mut run = Run::new(processor(DEFAULT_MATRIX_TOML));
    run.event(&refund(0, "s-1"), T0);
    run.event(&refund(1, "s-1"), T0 + 1_000);
    // The second event again, at its offset (a replay after a crash).
    let e = refund(1, "s-1");
    let bytes = run.codec.encode(SchemaKind::AgentAction, &e).unwrap();
    run.p
        .process(
            Input {
                topic: "agent.actions",
                partition: 0,
                offset: 2,
                key: Some(b"s-1"),
                payload: Some(&bytes),
                headers: &common::run::version_headers(),
            },
            T0 + 5_000,
            &mut run.out,
        )
        .unwrap();
    let escs = run.escalations("escalations.support");
    assert_eq!(escs.len(), 3);
    assert!(escs
        .iter()
        .all(|x| x.escalation_id == escs[0].escalation_id));
    assert_eq!(escs[2], escs[1], "the replay publishes the same update");
    let vs = run.verdicts();
    assert_eq!(vs[1].escalation_ids, vs[2].escalation_ids);
}

#[test]
fn grouping_off_opens_one_escalation_per_action() {
    let mut run = Run::new(processor(&with("", "group_within = \"0s\"")));
    for i in 0..3 {
        run.event(&refund(i, "s-1"), T0 + i as i64 * 1_000);
    }
    let ids: BTreeSet<String> = run
        .escalations("escalations.support")
        .into_iter()
        .map(|e| e.escalation_id)
        .collect();
    assert_eq!(ids.len(), 3);
}

#[test]
fn deferred_and_sampled_actions_reach_the_review_queue_as_a_digest() {
    // Irreversible actions the agent may run alone go to the review queue; 20% of execute_log
    // actions are sampled.
    let base = with("", "sample_execute_log = 0.2\nreview_every = \"30s\"");
    let text = base.replace(
        "then = { level = \"execute_log\", roles = [] }\n\n[triggers.affects_others]",
        "then = { level = \"execute_log\", roles = [], review = true }\n\n[triggers.affects_others]",
    );
    assert_ne!(text, base);
    let mut run = Run::new(processor(&text));
    let mut irreversible = BTreeSet::new();
    let mut logged = BTreeSet::new();
    for i in 0..200 {
        let mut e = common::base_event();
        e.action_id = format!("act-{i}");
        e.session_id = format!("s-{i}");
        if i % 4 == 0 {
            e.reversible = false;
            irreversible.insert(e.action_id.clone());
        } else {
            e.action_type = "crm.update".into(); // execute_log
            logged.insert(e.action_id.clone());
        }
        run.event(&e, T0 + i);
    }
    assert!(run.digests("handoff.review").is_empty());
    run.tick(T0 + 30_000);
    let digests = run.digests("handoff.review");
    assert_eq!(digests.len(), 1);
    let deferred: BTreeSet<String> = digests[0]
        .items
        .iter()
        .filter(|i| i.reason == DigestReason::Deferred)
        .map(|i| i.action_id.clone())
        .collect();
    assert_eq!(
        deferred, irreversible,
        "every deferred action, and only those"
    );
    let sampled: Vec<&str> = digests[0]
        .items
        .iter()
        .filter(|i| i.reason == DigestReason::Sampled)
        .map(|i| i.action_id.as_str())
        .collect();
    assert!(sampled.iter().all(|a| logged.contains(*a)));
    assert!(
        (15..=45).contains(&sampled.len()),
        "{} of 150 sampled at 20%",
        sampled.len()
    );
    assert!(
        sampled.iter().all(|a| handoff::fatigue::sampled(a, 0.2)),
        "the same hash decides"
    );
    // Nobody was interrupted for them.
    assert!(run.escalations("escalations.owner").is_empty());
}

#[test]
fn bad_fatigue_settings_are_refused_naming_the_field() {
    for (role_line, extra, field) in [
        (
            "rate_limit = { max = 1, per = \"1m\" }",
            "",
            "roles.support.rate_limit.max",
        ),
        (
            "rate_limit = { max = 5, per = \"0s\" }",
            "",
            "roles.support.rate_limit.per",
        ),
        ("", "sample_execute_log = 1.5", "fatigue.sample_execute_log"),
        ("", "review_every = \"0s\"", "fatigue.review_every"),
    ] {
        let err = Matrix::from_toml_str(&with(role_line, extra), MatrixSource::Default)
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
}

/// The shipped matrix with `rate_limit` set on `support_l2`.
fn limited_l2(max: u32) -> String {
    DEFAULT_MATRIX_TOML.replace(
        "[roles.support_l2]\n",
        &format!("[roles.support_l2]\nrate_limit = {{ max = {max}, per = \"1m\" }}\n"),
    )
}

#[test]
fn moves_along_a_chain_pass_the_next_roles_rate_limit_and_carry_the_kind_header() {
    let mut run = Run::new(processor(&limited_l2(2)));
    for i in 0..3 {
        run.event(&refund(i, &format!("s-{i}")), T0 + i as i64);
    }
    run.out.clear();
    // Support's warm deadline (1 h) passes: all three move to support_l2 at once.
    run.tick(T0 + 3_600_010);
    let topic = "escalations.support_l2";
    let messages = run.on(topic);
    assert_eq!(
        messages.len(),
        1,
        "max 2 a minute: one single, the rest folded"
    );
    assert!(
        messages.iter().all(|o| Run::kind(o) == "escalation"),
        "every message on a role topic says what it is"
    );
    let moved = run.escalations(topic);
    assert_eq!(moved[0].sequence, 1, "a move along the chain");
    run.out.clear();
    run.tick(T0 + 3_600_010 + 60_000);
    let digests = run.digests(topic);
    assert_eq!(digests.len(), 1);
    let mut ids: BTreeSet<String> = digests[0]
        .items
        .iter()
        .map(|i| i.action_id.clone())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.insert(moved[0].action_id.clone()));
    assert_eq!(
        ids.len(),
        3,
        "each moved escalation is a single or a digest item"
    );
}

#[test]
fn the_live_summary_and_prometheus_count_the_same_escalations_moves_included() {
    let matrix = Arc::new(Matrix::from_toml_str(&limited_l2(2), MatrixSource::Default).unwrap());
    let mut p = Processor::new(&Settings::default(), matrix.clone()).unwrap();
    let roles: Vec<String> = matrix.roles().iter().map(|r| r.name.clone()).collect();
    let stats = Arc::new(handoff::pipeline::stats::Stats::new(
        roles.clone(),
        matrix.families(),
        matrix.version(),
    ));
    p.attach(stats.clone());
    let mut run = Run::new(p);
    let mut fleet = handoff::sim::fleet::Fleet::new(handoff::sim::fleet::FleetConfig {
        trigger_boost: 8.0,
        ..Default::default()
    });
    for i in 0..300 {
        let mut e = fleet.next_event();
        e.session_id = format!("s-{}", i % 40);
        run.event(&e, T0 + i as i64 * 100);
    }
    // Every deadline passes twice: moves along the chains, folded and sent.
    run.tick(T0 + 3_700_000);
    run.tick(T0 + 7_400_000);
    let summary = stats.snapshot();
    let text = stats.metrics.render();
    let mut moved = 0;
    for (role, counted) in &summary.by_role {
        let prometheus: u64 = ["warm", "immediate"]
            .iter()
            .map(|tier| {
                let series =
                    format!("handoff_escalations_total{{role=\"{role}\",tier=\"{tier}\"}} ");
                text.lines()
                    .find_map(|l| l.strip_prefix(&series))
                    .map_or(0, |v| v.parse::<u64>().unwrap())
            })
            .sum();
        assert_eq!(*counted, prometheus, "role {role}");
        if role == "support_l2" || role == "crisis_manager" {
            moved += counted;
        }
    }
    assert!(moved > 0, "the traffic included moves along chains");
}

#[test]
fn an_empty_value_is_an_empty_dead_letter_with_its_bytes_as_they_were() {
    let mut run = Run::new(processor(DEFAULT_MATRIX_TOML));
    run.record("agent.actions", "s-1", b"", T0);
    let dl = run.on("agent.actions.dlq");
    assert_eq!(dl.len(), 1);
    let class = dl[0]
        .headers
        .iter()
        .find(|(k, _)| k == handoff::event::wire::dlq_headers::CLASS)
        .map(|(_, v)| String::from_utf8_lossy(v).to_string());
    assert_eq!(class.as_deref(), Some("empty"));
    assert!(
        dl[0].payload.is_empty() && !dl[0].null,
        "zero bytes, not null"
    );
}

#[test]
fn a_value_too_large_for_the_producer_is_a_dead_letter_without_it() {
    let mut settings = Settings::default();
    settings
        .kafka
        .producer
        .insert("message.max.bytes".into(), "1000000".into());
    let m = Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap();
    let mut run = Run::new(Processor::new(&settings, Arc::new(m)).unwrap());
    let big = vec![7u8; 2_000_000];
    run.record("agent.actions", "s-1", &big, T0);
    let small = vec![7u8; 4_000];
    run.record("agent.actions", "s-1", &small, T0);
    let dl = run.on("agent.actions.dlq");
    let header = |o: &Output, k: &str| {
        o.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| String::from_utf8_lossy(v).to_string())
    };
    use handoff::event::wire::dlq_headers as h;
    assert_eq!(header(dl[0], h::CLASS).as_deref(), Some("too_large"));
    assert!(
        dl[0].payload.is_empty() && dl[0].null,
        "the value is left out"
    );
    assert_eq!(header(dl[0], h::VALUE).as_deref(), Some("omitted"));
    assert_eq!(header(dl[0], h::ORIGINAL_BYTES).as_deref(), Some("2000000"));
    assert_eq!(dl[1].payload, small, "a value that fits is kept");
    assert_eq!(header(dl[1], h::VALUE), None);
}
