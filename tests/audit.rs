//! The audit trail without a broker: a real processor decides events and takes decisions, the
//! records are joined into entries, written as a chained pack, verified, and caught when one
//! entry is changed or one is removed.

mod common;

use common::run::Run;
use common::{answer, base_event};
use handoff::audit::{self, chain, Records};
use handoff::event::{AgentAction, DecisionKind, VerdictOutcome};
use handoff::event::{AuditEntry, AuditKind, Via};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::pipeline::process::Processor;
use std::sync::Arc;

const NOW: i64 = 1_798_761_600_000;
const MIN: i64 = 60_000;

fn refund(i: usize) -> AgentAction {
    let mut e = base_event();
    e.action_id = format!("act-{i}");
    e.session_id = format!("sess-{i}");
    e.action_type = "refund.issue".into();
    e.amount = Some(30.0);
    e.output = Some("We refund 30 EUR.".into());
    e
}

/// Four refunds: one approved after a look, one revised without one, one left to time out
/// (support, then support_l2, then crisis_manager), one still open; and a research search that
/// runs alone. Returns the records as the topics would hold them.
fn history() -> Records {
    let m = Arc::new(Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap());
    let mut run = Run::new(Processor::new(&Default::default(), m).unwrap());
    let mut events: Vec<AgentAction> = (0..4).map(refund).collect();
    let mut alone = base_event();
    alone.action_id = "act-alone".into();
    alone.session_id = "sess-alone".into();
    events.push(alone);
    for (i, e) in events.iter().enumerate() {
        run.event(e, NOW + i as i64);
    }
    let escs = run.escalations("escalations.support");
    let view = |person: &str, id: &str, at: i64| AuditEntry {
        kind: AuditKind::Viewed,
        person: person.into(),
        role: "support".into(),
        escalation_id: id.into(),
        action_id: String::new(),
        session_id: String::new(),
        at_ms: at,
        decision: None,
        first_viewed_at_ms: None,
        via: Via::Web,
        reason: None,
        rule_version: String::new(),
        tier: None,
        canary: false,
    };
    let views = vec![
        view("ana", &escs[0].escalation_id, NOW + MIN),
        view("ana", &escs[0].escalation_id, NOW + 2 * MIN),
    ];
    let decisions = vec![
        answer(&escs[0], DecisionKind::Approve, "ana", NOW + 3 * MIN),
        answer(&escs[1], DecisionKind::Revise, "sam", NOW + 4 * MIN),
    ];
    for d in &decisions {
        run.decide(d, d.decided_at_ms);
    }
    // Nobody answers act-2: its chain runs out (1 h warm, then 5 min immediate twice).
    for t in [61, 67, 73] {
        run.tick(NOW + t * MIN);
    }
    let mut escalations = Vec::new();
    for role in ["support", "support_l2", "crisis_manager"] {
        escalations.extend(run.escalations(&format!("escalations.{role}")));
    }
    Records {
        events,
        verdicts: run.verdicts(),
        escalations,
        decisions,
        views,
        canaries: Vec::new(),
    }
}

#[test]
fn every_action_decided_in_the_range_is_one_entry_with_who_saw_what_and_when() {
    let r = history();
    let entries = audit::join(&r, NOW, NOW + 10);
    let ids: Vec<&str> = entries.iter().map(|e| e.action_id.as_str()).collect();
    assert_eq!(ids, ["act-0", "act-1", "act-2", "act-3", "act-alone"]);
    let by = |id: &str| entries.iter().find(|e| e.action_id == id).unwrap();
    let approved = by("act-0");
    assert_eq!(
        (approved.outcome, approved.is_final),
        (VerdictOutcome::Approved, true)
    );
    assert_eq!(approved.answers[0].by, "ana");
    assert_eq!(
        approved.answers[0].opened_at_ms,
        Some(NOW + MIN),
        "her first look"
    );
    assert_eq!(approved.shown.len(), 1);
    assert_eq!(approved.shown[0].package_sha256.len(), 64);
    assert_eq!(approved.event_sha256, Some(audit::hash_json(&r.events[0])));
    assert!(approved
        .triggers
        .iter()
        .all(|t| t.detail.is_some() || approved.triggers.is_empty()));
    let revised = by("act-1");
    assert_eq!(revised.outcome, VerdictOutcome::Revised);
    assert_eq!(revised.answers[0].opened_at_ms, None, "sam never opened it");
    assert_eq!(
        revised.answers[0].revised_sha256.as_deref(),
        Some(chain::sha256_hex(b"We refund 25 EUR.").as_str())
    );
    let timed_out = by("act-2");
    assert_eq!(timed_out.outcome, VerdictOutcome::TimedOutBlocked);
    let roles: Vec<&str> = timed_out.shown.iter().map(|s| s.role.as_str()).collect();
    assert_eq!(
        roles,
        ["support", "support_l2", "crisis_manager"],
        "the whole chain"
    );
    assert!(!by("act-3").is_final || by("act-3").outcome == VerdictOutcome::TimedOutBlocked);
    let alone = by("act-alone");
    assert!(alone.is_final && alone.shown.is_empty() && alone.answers.is_empty());
    assert!(entries.iter().all(|e| !e.rule_version.is_empty()));
    let s = audit::summary(&entries);
    assert_eq!(
        (
            s.actions,
            s.escalated,
            s.answered,
            s.answered_unopened,
            s.unversioned
        ),
        (5, 4, 2, 1, 0)
    );
    // Out of range: nothing.
    assert!(audit::join(&r, NOW + 10, NOW + 20).is_empty());
}

#[test]
fn a_pack_verifies_and_one_changed_entry_or_one_removed_entry_is_caught() {
    let r = history();
    let entries = audit::join(&r, NOW, NOW + 10);
    let header = chain::Header {
        pack: chain::PACK.into(),
        version: chain::VERSION,
        from_ms: NOW,
        to_ms: NOW + 10,
        created_at_ms: NOW + 100 * MIN,
        sources: serde_json::json!({}),
    };
    let pack = chain::write(&header, &entries, None);
    assert_eq!(
        chain::verify(&pack),
        chain::Verified::Intact {
            from_ms: NOW,
            to_ms: NOW + 10,
            entries: 5,
            signature: None
        }
    );
    let lines: Vec<&str> = std::str::from_utf8(&pack).unwrap().lines().collect();
    // ana's approval becomes sam's.
    let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    assert!(changed[1].contains("\"by\":\"ana\""));
    changed[1] = changed[1].replace("\"by\":\"ana\"", "\"by\":\"sam\"");
    let mut removed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    removed.remove(3); // the timed-out action
    for (bad, line) in [(changed, 3), (removed, 4)] {
        let bytes = (bad.join("\n") + "\n").into_bytes();
        match chain::verify(&bytes) {
            chain::Verified::Broken { line: l, why } => assert_eq!(l, line, "{why}"),
            v => panic!("not caught: {v:?}"),
        }
    }
}

/// Two refunds in one session a minute apart: the second is grouped into the first's open
/// escalation (`[fatigue] group_within`), and the one answer covers both. Before, the pack
/// matched answers on the decision's own action id and showed none for the second.
#[test]
fn an_action_grouped_into_an_open_escalation_carries_the_answer_given_to_it() {
    let m = Arc::new(Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap());
    let mut run = Run::new(Processor::new(&Default::default(), m).unwrap());
    let mut first = refund(0);
    first.session_id = "sess-g".into();
    let mut second = refund(1);
    second.session_id = "sess-g".into();
    run.event(&first, NOW);
    run.event(&second, NOW + MIN);
    let escs = run.escalations("escalations.support");
    assert_eq!(escs.len(), 2);
    assert_eq!(escs[1].escalation_id, escs[0].escalation_id, "grouped");
    let d = answer(&escs[0], DecisionKind::Approve, "ana", NOW + 2 * MIN);
    assert_eq!(d.action_id, "act-0");
    run.decide(&d, d.decided_at_ms);
    let r = Records {
        events: vec![first, second],
        verdicts: run.verdicts(),
        escalations: escs,
        decisions: vec![d],
        ..Default::default()
    };
    let entries = audit::join(&r, NOW, NOW + 10 * MIN);
    assert_eq!(entries.len(), 2);
    for e in &entries {
        assert_eq!(
            (e.outcome, e.is_final, e.decided_by.as_deref()),
            (VerdictOutcome::Approved, true, Some("ana")),
            "{e:#?}"
        );
        let by: Vec<&str> = e.answers.iter().map(|a| a.by.as_str()).collect();
        assert_eq!(by, ["ana"], "{}: the answer to its escalation", e.action_id);
        assert_eq!(e.shown.len(), 1);
    }
    assert_eq!(audit::summary(&entries).answered, 2);
}

/// An action first decided before `--from` and answered inside the range is not in the pack —
/// the topics read from `--from` on hold only its later verdict. Before, it entered the pack as
/// if first decided at its final verdict, with nothing shown and nobody answering.
#[test]
fn an_action_first_decided_before_the_range_is_not_in_it() {
    let mut r = history();
    let from = NOW + 2 * MIN; // act-0 was decided at NOW, approved at NOW + 3 min
    r.verdicts.retain(|v| v.decided_at_ms >= from);
    r.escalations.retain(|e| e.created_at_ms >= from);
    r.decisions.retain(|d| d.decided_at_ms >= from);
    assert!(r.verdicts.iter().any(|v| v.action_id == "act-0"));
    let entries = audit::join(&r, from, NOW + 200 * MIN);
    assert!(
        entries
            .iter()
            .all(|e| e.action_id != "act-0" && e.action_id != "act-1"),
        "{:#?}",
        entries.iter().map(|e| &e.action_id).collect::<Vec<_>>()
    );
    assert!(entries
        .iter()
        .all(|e| !e.shown.is_empty() || !e.level.needs_human()));
}

/// A decision naming another role than the one its escalation was handed to is not an answer
/// of the pack (the processor refuses it: `role_mismatch`), whoever signed it.
#[test]
fn a_decision_for_another_role_than_its_escalations_is_not_an_answer() {
    let mut r = history();
    let open = r
        .escalations
        .iter()
        .find(|x| x.action_id == "act-3")
        .unwrap()
        .clone();
    let mut forged = answer(&open, DecisionKind::Approve, "mallory", NOW + 5 * MIN);
    forged.role = "finance".into();
    r.decisions.push(forged);
    let entries = audit::join(&r, NOW, NOW + 10);
    let act3 = entries.iter().find(|e| e.action_id == "act-3").unwrap();
    assert!(act3.answers.is_empty(), "{:?}", act3.answers);
    let mut honest = answer(&open, DecisionKind::Approve, "ana", NOW + 5 * MIN);
    honest.role = open.role.clone();
    r.decisions.push(honest);
    let entries = audit::join(&r, NOW, NOW + 10);
    let act3 = entries.iter().find(|e| e.action_id == "act-3").unwrap();
    assert_eq!(act3.answers.len(), 1, "the answer from its role is");
}
