//! `handoff suggest`'s promises, checked on generated months: whatever the history — types,
//! confidences, phrases, templates, amounts, how people answer (timeouts included), with
//! drills and canaries mixed in — the proposals it accepts, applied together as
//! `matrix.proposed.toml` applies them,
//! - never relax anything about a hard stop (no change to a hard_stop type, no hard_stop
//!   decision relaxed or losing a reason), and
//! - never let through an action a person rejected;
//! - and drills and canaries never count as evidence.

mod common;

use common::month::{self, events, history_with, matrix_text, tagged, Group, T0, WEEK};
use handoff::audit::Records;
use handoff::event::{DecisionKind, Level};
use handoff::matrix::{Matrix, MatrixSource};
use handoff::replay::diff::diff;
use handoff::suggest::{self, edit::Change, Fate, Thresholds};
use proptest::prelude::*;
use std::collections::HashSet;

const TYPES: &[&str] = &[
    "file.delete",
    "data.delete",
    "email.send",
    "research.search",
    "refund.issue",
    "account.close",
    "trade.execute",
    "loan.approve",
];

/// One generated group of actions.
#[derive(Debug, Clone)]
struct Spec {
    ty: usize,
    n: usize,
    confidence: (f64, f64),
    text: u8,
    templated: bool,
    big: bool,
    reject_every: usize,
    revise_every: usize,
    nobody_every: usize,
    week: i64,
    kind: u8,
}

/// How often something happens: mostly never (a clean history makes proposals), else every
/// k-th.
fn sometimes() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0usize), 1 => 2usize..12, 1 => 12usize..60]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (0..TYPES.len(), 30usize..200, 0.50f64..0.99, 0.0f64..0.3),
        (0u8..6, any::<bool>(), any::<bool>()),
        (sometimes(), sometimes(), sometimes(), 0i64..4, 0u8..10),
    )
        .prop_map(
            |((ty, n, lo, spread), (text, templated, big), (r, v, t, week, kind))| Spec {
                ty,
                n,
                confidence: (lo, (lo + spread).min(0.999)),
                text,
                templated: templated && text == 0,
                big,
                reject_every: r,
                revise_every: v,
                nobody_every: t,
                week,
                kind,
            },
        )
}

/// Every `k`-th (from the k-th on), or never when `k` is 0 or 1.
fn every(i: usize, k: usize) -> bool {
    k > 1 && i % k == k - 1
}

/// The group of `s`, tagged `tag` so groups never share ids; drill or canary by `s.kind`.
fn group(s: &Spec, tag: &str) -> (Group, u8) {
    let (lo, hi) = s.confidence;
    let n = s.n;
    let mut evs = tagged(
        events(TYPES[s.ty], n, T0 + s.week * WEEK, move |i| {
            lo + (hi - lo) * (i as f64 / n as f64)
        }),
        tag,
    );
    for e in &mut evs {
        match s.text {
            1 => e.user_message = Some("Is a real person reading this?".into()),
            2 => e.request = "Summarise the lawsuit against the city.".into(),
            _ => {}
        }
        if s.templated {
            e.template_id = Some("tpl-1".into());
        }
        if s.big {
            e.amount = Some(50_000.0);
        }
    }
    let (r, v, t) = (s.reject_every, s.revise_every, s.nobody_every);
    let answer = move |i: usize| {
        if every(i, t) {
            None
        } else if every(i, r) {
            Some(DecisionKind::Reject)
        } else if every(i, v) {
            Some(DecisionKind::Revise)
        } else {
            Some(DecisionKind::Approve)
        }
    };
    let kind = match s.kind {
        0 => 1, // drill
        1 => 2, // canary
        _ => 0, // real
    };
    let g = Group {
        events: evs,
        answer: Box::new(answer),
        drill: kind == 1,
    };
    (g, kind)
}

/// The month's records; canary groups' verdicts moved to the canaries, as the canaries topic
/// holds them.
fn month(specs: &[Spec], text: &str, with_tests: bool) -> Records {
    let mut groups = Vec::new();
    let mut canaries: HashSet<String> = HashSet::new();
    for (i, s) in specs.iter().enumerate() {
        let (g, kind) = group(s, &format!("g{i}"));
        if kind != 0 && !with_tests {
            continue;
        }
        if kind == 2 {
            canaries.extend(g.events.iter().map(|e| e.action_id.clone()));
        }
        groups.push(g);
    }
    let mut r = history_with(text, groups);
    let (canary, real): (Vec<_>, Vec<_>) = r
        .verdicts
        .drain(..)
        .partition(|v| canaries.contains(&v.action_id));
    r.verdicts = real;
    r.canaries = canary;
    r
}

fn thresholds() -> Thresholds {
    Thresholds {
        min_cases: 10,
        ..Thresholds::default()
    }
}

/// Checks the promises on the month of `specs`; returns how many proposals were accepted and
/// refused (so a run can show it was not vacuous).
fn promises_hold(specs: &[Spec]) -> Result<(usize, usize), TestCaseError> {
    let text = matrix_text();
    let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
    let r = month(specs, &text, true);
    let (cases, _) = suggest::cases(&r, &m, i64::MIN, i64::MAX);
    let ps = suggest::propose(&text, &m, &cases, &r.events, &thresholds());
    let accepted: Vec<&Change> = ps
        .list
        .iter()
        .filter(|p| p.verified.is_ok())
        .map(|p| &p.change)
        .collect();
    for c in &accepted {
        if let Some(ty) = c.action_type() {
            let own = [m.type_level(ty, false), m.type_level(ty, true)];
            prop_assert!(
                !own.contains(&Level::HardStop),
                "{c:?} changes a hard_stop type"
            );
        }
    }
    let proposed = suggest::edit::apply(&text, &accepted).unwrap();
    let new = Matrix::from_toml_str(&proposed, MatrixSource::Default).unwrap();
    let d = diff(&m, &new, &r.events);
    prop_assert!(
        d.relaxed_hard_stops.is_empty(),
        "{accepted:?}: {:?}",
        d.relaxed_hard_stops
    );
    for c in d.changes.iter().filter(|c| c.old_level == Level::HardStop) {
        let kept = c.old_triggers.iter().all(|t| c.new_triggers.contains(t));
        prop_assert!(
            kept,
            "{accepted:?} removes a reason from {}: {c:?}",
            c.action_id
        );
    }
    let rejected: HashSet<&str> = cases
        .iter()
        .filter(|c| c.fate == Fate::Rejected)
        .map(|c| c.action_id.as_str())
        .collect();
    for c in &d.changes {
        prop_assert!(
            c.new_level.needs_human() || !rejected.contains(c.action_id.as_str()),
            "{accepted:?} lets through {} a person rejected",
            c.action_id
        );
    }
    Ok((accepted.len(), ps.list.len() - accepted.len()))
}

/// The promises over 96 generated months (a fixed seed, so a failure is reproduced), of which
/// a good share must have proposals accepted, some several at once, and some refused.
#[test]
fn accepted_proposals_together_never_relax_a_hard_stop_nor_let_a_rejection_through() {
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let config = Config {
        cases: 96,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let seen = std::cell::RefCell::new((0usize, 0usize, 0usize));
    runner
        .run(&proptest::collection::vec(spec(), 2..8), |specs| {
            let (accepted, refused) = promises_hold(&specs)?;
            let mut s = seen.borrow_mut();
            s.0 += accepted;
            s.1 += usize::from(accepted >= 2);
            s.2 += refused;
            Ok(())
        })
        .unwrap();
    let (accepted, combined, refused) = seen.into_inner();
    eprintln!("{accepted} proposals accepted, {combined} months with several, {refused} refused");
    assert!(
        accepted >= 20 && combined >= 3 && refused >= 5,
        "{accepted} {combined} {refused}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn drills_and_canaries_are_never_evidence(
        specs in proptest::collection::vec(spec(), 1..6)
    ) {
        let text = matrix_text();
        let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
        let candidates = |with_tests: bool| {
            let r = month(&specs, &text, with_tests);
            let (cases, _) = suggest::cases(&r, &m, i64::MIN, i64::MAX);
            suggest::rules::candidates(&m, &cases, &r.events, &thresholds())
                .into_iter()
                .map(|c| (c.change, c.evidence.n, c.evidence.k, c.refused))
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(candidates(true), candidates(false));
    }
}

/// A month where the answer is known: forty drill approvals and forty canary approvals of
/// file.delete next to five real ones graduate nothing.
#[test]
fn a_known_month_with_drills_and_canaries_graduates_nothing() {
    let approve = |kind| Spec {
        ty: 0,
        n: 40,
        confidence: (0.95, 0.96),
        text: 0,
        templated: false,
        big: false,
        reject_every: 0,
        revise_every: 0,
        nobody_every: 0,
        week: 0,
        kind,
    };
    let mut real = approve(9);
    real.n = 5;
    let specs = vec![approve(0), approve(1), real];
    let text = matrix_text();
    let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
    let r = month(&specs, &text, true);
    let (cases, skipped) = suggest::cases(&r, &m, i64::MIN, i64::MAX);
    assert_eq!((cases.len(), skipped.drills, skipped.canaries), (5, 40, 40));
    let ps = suggest::propose(&text, &m, &cases, &r.events, &thresholds());
    assert!(ps.list.is_empty(), "{:#?}", ps.list);
    let _ = month::approve;
}
