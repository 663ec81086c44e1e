//! The human loop without a broker: decisions, deadlines along escalation chains, fail closed
//! and fail open, duplicates, and state that survives a round trip through the changelog form.

mod common;

use common::base_event;
use handoff::escalation;
use handoff::event::{
    AgentAction, DecisionKind, HumanDecision, Level, Tier, Verdict, VerdictOutcome,
};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::state::{ChangelogFormat, Effect, Ignored, PartitionState, SessionRecord};

const MIN: i64 = 60_000;

fn matrix(extra_level: &str) -> Matrix {
    let text = format!("{DEFAULT_MATRIX_TOML}\n{extra_level}");
    Matrix::from_toml_str(&text, MatrixSource::Default).unwrap()
}

/// A refund: ask_first, handed to support (warm, 1 h).
fn refund(id: &str) -> AgentAction {
    let mut e = base_event();
    e.action_id = id.into();
    e.action_type = "refund.issue".into();
    e.amount = Some(40.0);
    e
}

/// Decides and opens `e` at `now`; returns the escalations (role name, id).
fn open(
    m: &Matrix,
    st: &mut PartitionState,
    e: &AgentAction,
    offset: i64,
    now: i64,
) -> Vec<(String, String)> {
    let (before, apply) = st.state_for(&e.session_id, offset);
    let d = m.evaluate(e, &before);
    if apply {
        st.apply_streak(&e.session_id, offset, before, d.session);
    }
    let plan = escalation::plan(m, e, &d, now, false);
    let mut fx = Vec::new();
    // Grouping off here: these tests open one escalation per action.
    let triggers = d.triggers.names();
    let opening = handoff::state::Opening {
        level: d.level,
        triggers: &triggers,
        drill: false,
        escalations: &plan.escalations,
        group_within_ms: 0,
        now_ms: now,
        quorum: d.quorum,
    };
    st.open(m, e, before, &opening, &mut fx);
    plan.escalations
        .iter()
        .map(|(_, x)| (x.role.clone(), x.escalation_id.clone()))
        .collect()
}

fn decision(e: &AgentAction, esc: &str, kind: DecisionKind, at: i64) -> HumanDecision {
    HumanDecision {
        escalation_id: esc.into(),
        action_id: e.action_id.clone(),
        session_id: e.session_id.clone(),
        role: "support".into(),
        decided_by: "ana".into(),
        decision: kind,
        comment: Some("checked".into()),
        revised_output: None,
        redirect_role: None,
        decided_at_ms: at,
        drill: false,
        chosen_option: None,
        revised_arguments: None,
    }
}

/// [`decision`] by the role `esc` (role, id) waits for.
fn answer(e: &AgentAction, esc: &(String, String), kind: DecisionKind, at: i64) -> HumanDecision {
    HumanDecision {
        role: esc.0.clone(),
        ..decision(e, &esc.1, kind, at)
    }
}

fn verdicts(fx: &[Effect]) -> Vec<&Verdict> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Verdict(v) => Some(&**v),
            _ => None,
        })
        .collect()
}

fn escalations(fx: &[Effect]) -> Vec<(String, Tier, i32, usize)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Escalation(_, x) => Some((x.role.clone(), x.tier, x.sequence, x.history.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn each_decision_kind_gives_its_final_verdict_and_closes_the_escalation() {
    let m = matrix("");
    let table: &[(DecisionKind, Option<VerdictOutcome>)] = &[
        (DecisionKind::Approve, Some(VerdictOutcome::Approved)),
        (DecisionKind::Reject, Some(VerdictOutcome::Rejected)),
        (DecisionKind::Revise, Some(VerdictOutcome::Revised)),
        (DecisionKind::Redirect, Some(VerdictOutcome::Redirected)),
        (DecisionKind::Acknowledge, None),
    ];
    for (kind, want) in table {
        let mut st = PartitionState::new();
        let e = refund("act-k");
        let escs = open(&m, &mut st, &e, 0, 1_000);
        assert_eq!(escs.len(), 1, "{escs:?}");
        assert_eq!(escs[0].0, "support");
        let mut d = decision(&e, &escs[0].1, *kind, 31_000);
        d.revised_output = Some("Refund 35 EUR, not 40".into());
        d.redirect_role = Some("compliance".into());
        let mut fx = Vec::new();
        st.decide(&m, &d, 31_500, &mut fx).unwrap();
        let vs = verdicts(&fx);
        assert_eq!(vs.first().map(|v| v.outcome), *want, "{kind:?}");
        // Time-to-human: 30 s from the escalation to the answer, recorded once.
        assert!(fx.contains(&Effect::Answered {
            role: "support".into(),
            tier: Tier::Warm,
            decision: *kind,
            waited_ms: Some(30_000),
        }));
        match kind {
            DecisionKind::Revise => {
                assert_eq!(
                    vs[0].revised_output.as_deref(),
                    Some("Refund 35 EUR, not 40")
                );
                assert!(vs[0].is_final);
            }
            DecisionKind::Redirect => {
                assert!(!vs[0].is_final, "a redirect waits for the new role");
                assert_eq!(vs[0].redirect_role.as_deref(), Some("compliance"));
                assert_eq!(
                    escalations(&fx),
                    vec![("compliance".into(), Tier::Immediate, 1, 1)]
                );
                assert_eq!(
                    st.pending(),
                    vec![("compliance".to_string(), Tier::Immediate)]
                );
            }
            DecisionKind::Acknowledge => {
                assert_eq!(st.pending(), vec![("support".to_string(), Tier::Warm)]);
                assert_eq!(
                    st.next_deadline(),
                    None,
                    "an acknowledged escalation has no deadline"
                );
            }
            _ => {
                assert!(vs[0].is_final);
                assert_eq!(vs[0].decided_by.as_deref(), Some("ana"));
                assert!(st.pending().is_empty());
                // The same decision again acts no more.
                let mut again = Vec::new();
                assert_eq!(
                    st.decide(&m, &d, 32_000, &mut again),
                    Err(Ignored::Closed(escs[0].1.clone()))
                );
                assert!(again.is_empty());
            }
        }
    }
}

#[test]
fn unknown_duplicate_and_invalid_decisions_are_refused_without_effect() {
    let m = matrix("");
    let mut st = PartitionState::new();
    let e = refund("act-u");
    let escs = open(&m, &mut st, &e, 0, 0);
    let mut fx = Vec::new();
    let unknown = decision(&e, "esc-000000000000000000000000", DecisionKind::Approve, 1);
    assert_eq!(
        st.decide(&m, &unknown, 1, &mut fx).unwrap_err().reason(),
        "unknown"
    );
    let ack = decision(&e, &escs[0].1, DecisionKind::Acknowledge, 1);
    st.decide(&m, &ack, 1, &mut fx).unwrap();
    fx.clear();
    assert_eq!(
        st.decide(&m, &ack, 2, &mut fx).unwrap_err().reason(),
        "duplicate"
    );
    let mut revise = decision(&e, &escs[0].1, DecisionKind::Revise, 3);
    revise.revised_output = None;
    let err = st.decide(&m, &revise, 3, &mut fx).unwrap_err();
    assert!(err.to_string().contains("revised_output"), "{err}");
    let mut redirect = decision(&e, &escs[0].1, DecisionKind::Redirect, 3);
    redirect.redirect_role = Some("marketing".into());
    let err = st.decide(&m, &redirect, 3, &mut fx).unwrap_err();
    assert!(err.to_string().contains("\"marketing\""), "{err}");
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(st.pending().len(), 1);
}

#[test]
fn a_missed_deadline_walks_the_chain_then_fails_closed() {
    let m = matrix("");
    let mut st = PartitionState::new();
    let e = refund("act-c");
    let escs = open(&m, &mut st, &e, 0, 0);
    let mut fx = Vec::new();
    // Not yet due: nothing fires.
    assert_eq!(st.fire_due(&m, 60 * MIN - 1, &mut fx), 0);
    // Warm tier: 1 h → support_l2 (immediate, 5 min) → crisis_manager → blocked.
    assert_eq!(st.fire_due(&m, 60 * MIN, &mut fx), 1);
    assert_eq!(
        escalations(&fx),
        vec![("support_l2".into(), Tier::Immediate, 1, 1)]
    );
    assert!(fx.contains(&Effect::DeadlineMissed {
        role: "support".into(),
        tier: Tier::Warm,
        action_id: e.action_id.clone(),
    }));
    fx.clear();
    assert_eq!(
        st.fire_due(&m, 64 * MIN, &mut fx),
        0,
        "support_l2 has 5 minutes"
    );
    assert_eq!(st.fire_due(&m, 65 * MIN, &mut fx), 1);
    assert_eq!(
        escalations(&fx),
        vec![("crisis_manager".into(), Tier::Immediate, 2, 2)]
    );
    fx.clear();
    assert_eq!(st.fire_due(&m, 70 * MIN, &mut fx), 1);
    let vs = verdicts(&fx);
    assert_eq!(vs.len(), 1);
    assert_eq!(vs[0].outcome, VerdictOutcome::TimedOutBlocked);
    assert!(vs[0].is_final);
    assert!(fx.contains(&Effect::TimedOut {
        fail_open: false,
        action_id: e.action_id.clone(),
    }));
    assert!(st.pending().is_empty());
    fx.clear();
    assert_eq!(
        st.fire_due(&m, 999 * MIN, &mut fx),
        0,
        "each deadline fires once"
    );
    // A late answer from the first role is recognised as closed, not unknown.
    let late = decision(&e, &escs[0].1, DecisionKind::Approve, 71 * MIN);
    assert_eq!(
        st.decide(&m, &late, 71 * MIN, &mut fx)
            .unwrap_err()
            .reason(),
        "closed"
    );
}

#[test]
fn an_acknowledged_escalation_never_re_escalates() {
    let m = matrix("");
    let mut st = PartitionState::new();
    let e = refund("act-a");
    let escs = open(&m, &mut st, &e, 0, 0);
    let mut fx = Vec::new();
    st.decide(
        &m,
        &decision(&e, &escs[0].1, DecisionKind::Acknowledge, MIN),
        MIN,
        &mut fx,
    )
    .unwrap();
    fx.clear();
    assert_eq!(st.fire_due(&m, 1_000 * MIN, &mut fx), 0);
    assert!(fx.is_empty());
}

#[test]
fn fail_open_applies_below_hard_stop_only() {
    let rule = "[[levels]]\npattern = \"refund.small\"\nlevel = \"ask_first\"\nroles = [\"owner\"]\non_timeout = \"fail_open\"\n";
    let m = matrix(rule);
    let mut st = PartitionState::new();
    let mut e = refund("act-o");
    e.action_type = "refund.small".into();
    open(&m, &mut st, &e, 0, 0);
    let mut fx = Vec::new();
    // owner has no chain: the first deadline ends it.
    st.fire_due(&m, 60 * MIN, &mut fx);
    assert_eq!(verdicts(&fx)[0].outcome, VerdictOutcome::TimedOutProceed);
    // The same action type raised to hard_stop by a policy keyword fails closed.
    let mut st = PartitionState::new();
    let mut e = refund("act-o2");
    e.action_type = "refund.small".into();
    e.request = "The customer mentions a lawsuit".into();
    assert_eq!(m.evaluate(&e, &Default::default()).level, Level::HardStop);
    open(&m, &mut st, &e, 0, 0);
    let mut fx = Vec::new();
    st.fire_due(&m, 1_000 * MIN, &mut fx);
    st.fire_due(&m, 2_000 * MIN, &mut fx);
    assert!(verdicts(&fx)
        .iter()
        .all(|v| v.outcome == VerdictOutcome::TimedOutBlocked));
    assert!(!verdicts(&fx).is_empty());
    // And the matrix refuses fail_open on a hard_stop rule.
    let bad =
        "[[levels]]\npattern = \"wire.*\"\nlevel = \"hard_stop\"\non_timeout = \"fail_open\"\n";
    let err = Matrix::from_toml_str(
        &format!("{DEFAULT_MATRIX_TOML}\n{bad}"),
        MatrixSource::Default,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("on_timeout") && err.contains("wire.*"),
        "{err}"
    );
}

#[test]
fn two_roles_must_both_approve_and_one_rejection_decides() {
    let m = matrix("");
    // An anomaly: hard_stop to trader, compliance and it_ops.
    let mut e = base_event();
    e.action_id = "act-t".into();
    e.action_type = "trade.execute".into();
    e.attributes.insert("anomaly".into(), "true".into());
    let mut st = PartitionState::new();
    let escs = open(&m, &mut st, &e, 0, 0);
    assert_eq!(escs.len(), 3, "{escs:?}");
    let mut fx = Vec::new();
    st.decide(
        &m,
        &answer(&e, &escs[0], DecisionKind::Approve, 1),
        1,
        &mut fx,
    )
    .unwrap();
    assert!(verdicts(&fx).is_empty(), "two roles still to answer");
    st.decide(
        &m,
        &answer(&e, &escs[1], DecisionKind::Reject, 2),
        2,
        &mut fx,
    )
    .unwrap();
    assert_eq!(verdicts(&fx)[0].outcome, VerdictOutcome::Rejected);
    assert!(st.pending().is_empty());
}

#[test]
fn state_survives_the_changelog_round_trip_and_replayed_events_reuse_their_state() {
    // The binary form written now, and the JSON form earlier versions wrote.
    for format in [ChangelogFormat::Binary, ChangelogFormat::Json] {
        changelog_round_trip(format);
    }
}

fn changelog_round_trip(format: ChangelogFormat) {
    let m = matrix("");
    let mut st = PartitionState::new();
    let e = refund("act-r");
    open(&m, &mut st, &e, 7, 0);
    // Two low-confidence turns: the streak is state too.
    let mut low = base_event();
    low.confidence = Some(0.2);
    for (i, off) in [(1, 8), (2, 9)] {
        low.action_id = format!("act-low-{i}");
        open(&m, &mut st, &low, off, 0);
    }
    let dirty: Vec<(String, Vec<u8>)> = st
        .take_dirty(0)
        .into_iter()
        .map(|(k, r)| {
            let mut value = Vec::new();
            r.unwrap().encode(format, &mut value).unwrap();
            (k, value)
        })
        .collect();
    assert_eq!(dirty.len(), 1, "one session changed");
    let (key, value) = &dirty[0];
    let mut restored = PartitionState::new();
    restored.restore(key, Some(SessionRecord::decode(value).unwrap()));
    assert_eq!(restored.pending(), st.pending());
    assert_eq!(restored.next_deadline(), st.next_deadline());
    assert_eq!(
        restored.session("sess-1").unwrap().streak.consecutive_low,
        2
    );
    // The event at offset 9, processed again, is decided with the state it first had.
    let (s9, apply) = restored.state_for("sess-1", 9);
    assert!(!apply);
    assert_eq!(s9.consecutive_low, 1);
    let (s10, apply) = restored.state_for("sess-1", 10);
    assert!(apply);
    assert_eq!(s10.consecutive_low, 2);
    // Opening the same action again (a replay) does not open a second escalation.
    let before = restored.pending().len();
    open(&m, &mut restored, &e, 7, 5);
    assert_eq!(restored.pending().len(), before);
    // The deadline fires once on the restored state.
    let mut fx = Vec::new();
    let mut original = Vec::new();
    let fired = st.fire_due(&m, 60 * MIN, &mut original);
    assert!(fired >= 1);
    assert_eq!(
        restored.fire_due(&m, 60 * MIN, &mut fx),
        fired,
        "the same deadlines fire"
    );
    assert_eq!(fx, original, "with the same effects");
    assert_eq!(restored.fire_due(&m, 60 * MIN, &mut fx), 0, "once");
    // A tombstone removes the session.
    restored.restore(key, None);
    assert!(restored.pending().is_empty());
}

#[test]
fn quiet_sessions_expire_with_a_tombstone_and_open_ones_stay() {
    let m = matrix("");
    let mut st = PartitionState::new();
    let (a, b) = (refund("act-x1"), {
        let mut e = refund("act-x2");
        e.session_id = "sess-2".into();
        e
    });
    let escs = open(&m, &mut st, &a, 0, 0);
    open(&m, &mut st, &b, 1, 0);
    let _ = st.take_dirty(1_000);
    // sess-1 is decided (nothing open any more); sess-2 still waits.
    let mut fx = Vec::new();
    st.decide(
        &m,
        &decision(&a, &escs[0].1, DecisionKind::Approve, 2_000),
        2_000,
        &mut fx,
    )
    .unwrap();
    let _ = st.take_dirty(2_000);
    let day = 24 * 60 * MIN;
    assert_eq!(st.expire(2_000 + day, day), 0, "not yet");
    assert_eq!(st.expire(2_001 + day, day), 1);
    assert!(st.session("sess-1").is_none());
    assert!(
        st.session("sess-2").is_some(),
        "an open escalation is never expired"
    );
    let dirty = st.take_dirty(3_000 + day);
    assert_eq!(dirty.len(), 1);
    assert_eq!(dirty[0].0, "sess-1");
    assert!(dirty[0].1.is_none(), "a tombstone for the changelog");
}

#[test]
fn a_chosen_option_must_be_one_of_the_actions_and_come_with_approve() {
    let m = matrix("");
    let table: &[(DecisionKind, &str, Result<(), &str>)] = &[
        (DecisionKind::Approve, "Refund 40 EUR", Ok(())),
        (
            DecisionKind::Approve,
            "Refund 400 EUR",
            Err("is not one of the action's 2 option(s)"),
        ),
        (
            DecisionKind::Reject,
            "Refund 40 EUR",
            Err("comes with decision `approve`, found `reject`"),
        ),
    ];
    for (kind, chosen, want) in table {
        let mut st = PartitionState::new();
        let mut e = refund("act-choose");
        e.options = vec!["Refund 40 EUR".into(), "Voucher of 50 EUR".into()];
        // Options hand it to the owner as well: the owner approves first.
        let escs = open(&m, &mut st, &e, 0, 1_000);
        let (last, others) = escs.split_last().unwrap();
        for other in others {
            let ok = answer(&e, other, DecisionKind::Approve, 1_500);
            st.decide(&m, &ok, 1_500, &mut Vec::new()).unwrap();
        }
        let mut d = answer(&e, last, *kind, 2_000);
        d.chosen_option = Some(chosen.to_string());
        let mut fx = Vec::new();
        let got = st.decide(&m, &d, 2_000, &mut fx);
        match (got, want) {
            (Ok(()), Ok(())) => {
                let v = verdicts(&fx)[0];
                assert_eq!(v.outcome, VerdictOutcome::Approved);
                assert_eq!(v.chosen_option.as_deref(), Some(*chosen));
            }
            (Err(Ignored::Invalid(msg)), Err(part)) => {
                assert!(msg.contains(part), "{msg}");
                assert!(fx.is_empty(), "an invalid answer changes nothing");
            }
            (got, _) => panic!("{kind:?} {chosen:?}: {got:?}"),
        }
    }
}

#[test]
fn revised_arguments_must_fit_the_tools_schema_and_reach_the_verdict_canonical() {
    let m = matrix("");
    let schema = r#"{"type":"object","properties":{"amount":{"type":"number","maximum":100},
        "order_id":{"type":"string"}},"required":["amount","order_id"]}"#;
    let with_call = |id: &str| {
        let mut e = refund(id);
        e.tool_call = Some(handoff::event::ToolCall {
            name: "issue_refund".into(),
            arguments: r#"{"amount":40,"order_id":"o-1"}"#.into(),
            call_id: Some("call-1".into()),
            framework: Some("langgraph".into()),
            run_id: None,
            arguments_schema: Some(schema.into()),
        });
        e
    };
    type Row<'a> = (DecisionKind, bool, &'a str, Result<&'a str, &'a str>);
    let table: &[Row<'_>] = &[
        // Edited, with spaces and keys out of order: sent on canonical.
        (
            DecisionKind::Revise,
            true,
            r#"{ "order_id": "o-1", "amount": 25.50 }"#,
            Ok(r#"{"amount":25.5,"order_id":"o-1"}"#),
        ),
        (
            DecisionKind::Revise,
            true,
            r#"{"amount":250,"order_id":"o-1"}"#,
            Err("/amount"),
        ),
        (
            DecisionKind::Revise,
            true,
            r#"["amount", 25]"#,
            Err("must be a JSON object"),
        ),
        (
            DecisionKind::Approve,
            true,
            r#"{"amount":25,"order_id":"o-1"}"#,
            Err("come with decision `revise`"),
        ),
        (
            DecisionKind::Revise,
            false,
            r#"{"amount":25}"#,
            Err("the action has no tool call"),
        ),
    ];
    for (kind, call, args, want) in table {
        let mut st = PartitionState::new();
        let e = if *call {
            with_call("act-args")
        } else {
            refund("act-args")
        };
        let escs = open(&m, &mut st, &e, 0, 1_000);
        let mut d = decision(&e, &escs[0].1, *kind, 2_000);
        d.revised_arguments = Some(args.to_string());
        let mut fx = Vec::new();
        match (st.decide(&m, &d, 2_000, &mut fx), want) {
            (Ok(()), Ok(canonical)) => {
                let v = verdicts(&fx)[0];
                assert_eq!(v.outcome, VerdictOutcome::Revised);
                assert_eq!(v.revised_arguments.as_deref(), Some(*canonical));
                assert_eq!(v.revised_output, None);
            }
            (Err(Ignored::Invalid(msg)), Err(part)) => {
                assert!(msg.contains(part), "{msg}");
                assert!(fx.is_empty(), "an invalid answer changes nothing");
            }
            (got, _) => panic!("{kind:?} {args}: {got:?}"),
        }
    }
}

/// An answer for the role an escalation waited for before it moved on is refused: the role it
/// waits for now decides (the late answer used to land on the moved escalation, in the moment
/// before the inbox's board caught up).
#[test]
fn a_late_answer_for_the_role_before_the_move_is_refused_and_changes_nothing() {
    let m = matrix("");
    let mut st = PartitionState::new();
    let e = refund("act-late");
    let escs = open(&m, &mut st, &e, 0, 0);
    let mut fx = Vec::new();
    assert_eq!(
        st.fire_due(&m, 60 * MIN, &mut fx),
        1,
        "moved on to support_l2"
    );
    fx.clear();
    let late = decision(&e, &escs[0].1, DecisionKind::Approve, 61 * MIN);
    assert_eq!(late.role, "support");
    let why = st.decide(&m, &late, 61 * MIN, &mut fx).unwrap_err();
    assert_eq!(why.reason(), "role_mismatch");
    assert!(
        why.to_string().contains("waits for \"support_l2\""),
        "{why}"
    );
    assert!(fx.is_empty(), "nothing was decided: {fx:?}");
    // The role it waits for now answers it, under the old id as well.
    let mut now = late.clone();
    now.role = "support_l2".into();
    st.decide(&m, &now, 62 * MIN, &mut fx).unwrap();
    assert_eq!(verdicts(&fx)[0].outcome, VerdictOutcome::Approved);
}
