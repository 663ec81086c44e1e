//! The rules that turn counts into candidate changes, each with its evidence: a type graduates,
//! a gate comes down, a type gets stricter, a phrase leaves its trigger. Nothing here is shown
//! before [`super::verify`] has checked it. No candidate ever touches a `hard_stop` action type.

use super::{evidence, wilson, Case, Evidence, Fate, Thresholds};
use crate::event::{AgentAction, Level};
use crate::matrix::{Detail, Matrix, SessionState};
use crate::suggest::edit::Change;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A change found in the evidence; `refused` when the evidence itself rules it out (it is
/// shown, with the reason, but never applied).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The change.
    pub change: Change,
    /// Why.
    pub evidence: Evidence,
    /// Why it cannot be proposed, when the evidence says so before any diff.
    pub refused: Option<String>,
}

fn found(change: Change, evidence: Evidence) -> Candidate {
    Candidate {
        change,
        evidence,
        refused: None,
    }
}

/// Every candidate for `cases`: per action type (in name order) graduation, a lower gate,
/// a stricter level; then the phrases.
pub fn candidates(
    matrix: &Matrix,
    cases: &[Case],
    events: &[AgentAction],
    t: &Thresholds,
) -> Vec<Candidate> {
    let mut by_type: BTreeMap<&str, Vec<&Case>> = BTreeMap::new();
    for c in cases {
        by_type.entry(&c.action_type).or_default().push(c);
    }
    let mut out = Vec::new();
    for (ty, cs) in &by_type {
        let own = [matrix.type_level(ty, false), matrix.type_level(ty, true)];
        if own.contains(&Level::HardStop) {
            continue; // nothing about a hard stop is ever relaxed, nor tightened past it
        }
        out.extend(graduation(matrix, ty, cs, t));
        out.extend(gate(matrix, ty, cs, t));
        out.extend(rising_rejections(matrix, ty, cs, t));
    }
    out.extend(phrases(matrix, cases, events, t));
    out
}

/// The settled cases among `cs` (a person answered, or a timeout: nobody approved it) and a
/// note on those not counted (still open).
fn settled<'a>(cs: &[&'a Case]) -> (Vec<&'a Case>, String) {
    let open = cs.iter().filter(|c| c.fate == Fate::Open).count();
    let timed_out = cs.iter().filter(|c| c.fate == Fate::TimedOut).count();
    let mut notes = Vec::new();
    if timed_out > 0 {
        notes.push(format!("{timed_out} timed out, counted as not approved"));
    }
    if open > 0 {
        notes.push(format!("{open} still open, not counted"));
    }
    let note = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    (
        cs.iter().copied().filter(|c| c.fate.settled()).collect(),
        note,
    )
}

/// Escalated by the type's level alone (no trigger that needs a person fired), approved
/// unchanged nearly always: `execute_log`.
fn graduation(matrix: &Matrix, ty: &str, cs: &[&Case], t: &Thresholds) -> Option<Candidate> {
    let base = matrix.type_level(ty, false);
    if base != Level::AskFirst {
        return None; // nothing to graduate below ask_first
    }
    if matrix.type_quorum(ty).approvals > 1 {
        return None; // four-eyes is never proposed away
    }
    let templated_differs = matrix.type_level(ty, true) != base;
    let by_level: Vec<&Case> = cs
        .iter()
        .copied()
        .filter(|c| c.escalating.is_empty() && c.level == base)
        .filter(|c| !(templated_differs && c.templated == Some(true)))
        .collect();
    let (counted, note) = settled(&by_level);
    let n = counted.len();
    let k = counted.iter().filter(|c| c.fate == Fate::Unchanged).count();
    let interval = wilson(k, n);
    if n < t.min_cases || interval.0 < t.graduate_at {
        return None;
    }
    let why = format!(
        "{k} of {n} escalated by the level alone were approved unchanged{note} (lower bound \
         {:.0}% ≥ {:.0}%)",
        interval.0 * 100.0,
        t.graduate_at * 100.0
    );
    let change = Change::Level {
        action_type: ty.into(),
        from: base,
        to: Level::ExecuteLog,
    };
    Some(found(change, evidence(n, k, interval, why)))
}

/// What only the confidence gate caught, approved unchanged nearly always: a lower gate, but
/// never below the confidence of an action of the type a person revised, rejected or redirected
/// under the gate (whatever else fired on it), and never when such an action's confidence is
/// unknown.
fn gate(matrix: &Matrix, ty: &str, cs: &[&Case], t: &Thresholds) -> Option<Candidate> {
    let current = matrix.threshold(ty);
    let alone: Vec<&Case> = cs
        .iter()
        .copied()
        .filter(|c| c.escalating == ["low_confidence"])
        .collect();
    let unknown = alone.iter().filter(|c| c.confidence.is_none()).count();
    let known: Vec<&Case> = alone
        .into_iter()
        .filter(|c| c.confidence.is_some())
        .collect();
    let (counted, mut note) = settled(&known);
    if unknown > 0 {
        note.push_str(&format!(
            " ({unknown} without their event, confidence unknown, not counted)"
        ));
    }
    let n = counted.len();
    let k = counted.iter().filter(|c| c.fate == Fate::Unchanged).count();
    let interval = wilson(k, n);
    if n < t.min_cases || interval.0 < t.lower_gate_at {
        return None;
    }
    // Every action of the type a person did not approve as proposed that the gate held.
    let held_back: Vec<&Case> = cs
        .iter()
        .copied()
        .filter(|c| c.triggers.iter().any(|x| x == "low_confidence"))
        .filter(|c| c.fate.by_person() && c.fate != Fate::Unchanged)
        .collect();
    let floor = held_back
        .iter()
        .filter_map(|c| c.confidence)
        .map(|x| x + 0.01)
        .fold(0.0f64, f64::max);
    let to = ((current - t.gate_step).max(floor) * 100.0).round() / 100.0;
    if to >= current {
        return None;
    }
    let why = format!(
        "{k} of {n} caught by the confidence gate alone were approved unchanged{note} (lower \
         bound {:.0}% ≥ {:.0}%)",
        interval.0 * 100.0,
        t.lower_gate_at * 100.0
    );
    let blind = held_back.iter().filter(|c| c.confidence.is_none()).count();
    let change = Change::Gate {
        action_type: ty.into(),
        from: current,
        to,
    };
    let mut c = found(change, evidence(n, k, interval, why));
    if blind > 0 {
        c.refused = Some(format!(
            "{blind} action(s) of {ty} that people did not approve as proposed have no event: \
             their confidence is unknown, so how low the gate may go is unknown"
        ));
    }
    Some(c)
}

/// Rejections rising from the first half of the window to the second: one level stricter.
fn rising_rejections(matrix: &Matrix, ty: &str, cs: &[&Case], t: &Thresholds) -> Option<Candidate> {
    let base = matrix.type_level(ty, false);
    let mut d: Vec<&Case> = cs.iter().copied().filter(|c| c.fate.by_person()).collect();
    d.sort_by_key(|c| (c.decided_at_ms, c.action_id.clone()));
    let (first, second) = d.split_at(d.len() / 2);
    let half = t.min_cases / 2;
    if first.len() < half || second.len() < half {
        return None;
    }
    let rej = |h: &[&Case]| h.iter().filter(|c| c.fate == Fate::Rejected).count();
    let (a, b) = (
        wilson(rej(first), first.len()),
        wilson(rej(second), second.len()),
    );
    if b.0 <= a.1 {
        return None;
    }
    let to = match base {
        Level::Execute | Level::ExecuteLog => Level::AskFirst,
        Level::AskFirst => Level::HardStop,
        Level::HardStop => return None,
    };
    let k = rej(second);
    let why = format!(
        "rejections rose from {} of {} to {k} of {} (intervals {:.0}–{:.0}% and {:.0}–{:.0}% do \
         not overlap)",
        rej(first),
        first.len(),
        second.len(),
        a.0 * 100.0,
        a.1 * 100.0,
        b.0 * 100.0,
        b.1 * 100.0
    );
    let change = Change::Level {
        action_type: ty.into(),
        from: base,
        to,
    };
    Some(found(change, evidence(second.len(), k, b, why)))
}

/// Phrases that fired only on actions people then approved unchanged (a timeout counts against
/// them): drop them from their trigger (the phrases found again by deciding each event with
/// `matrix`).
fn phrases(
    matrix: &Matrix,
    cases: &[Case],
    events: &[AgentAction],
    t: &Thresholds,
) -> Vec<Candidate> {
    let by_id: HashMap<&str, &AgentAction> =
        events.iter().map(|e| (e.action_id.as_str(), e)).collect();
    let mut fired: BTreeMap<(&'static str, String), (usize, usize)> = BTreeMap::new();
    for c in cases.iter().filter(|c| c.fate.settled()) {
        let Some(e) = by_id.get(c.action_id.as_str()) else {
            continue;
        };
        let d = matrix.evaluate(e, &SessionState::default());
        for f in &d.flags {
            let Detail::Phrases(hits) = &f.detail else {
                continue;
            };
            let found: BTreeSet<&str> = hits
                .iter()
                .map(|h| matrix.phrases().phrase(h.phrase))
                .collect();
            for p in found {
                let (n, k) = fired
                    .entry((f.trigger.as_str(), p.to_string()))
                    .or_default();
                *n += 1;
                *k += usize::from(c.fate == Fate::Unchanged);
            }
        }
    }
    fired
        .into_iter()
        .filter(|(_, (n, k))| *n >= t.min_cases && k == n)
        // A trigger that asks for several approvers keeps every phrase (four-eyes is never
        // proposed away).
        .filter(|((trigger, _), _)| matrix.trigger_quorum(trigger).approvals <= 1)
        .map(|((trigger, phrase), (n, k))| {
            let interval = wilson(k, n);
            let why = format!(
                "{phrase:?} fired in {n} settled escalations, every one approved unchanged \
                 (lower bound {:.0}%)",
                interval.0 * 100.0
            );
            let change = Change::Phrase {
                trigger: trigger.into(),
                phrase,
            };
            found(change, evidence(n, k, interval, why))
        })
        .collect()
}
