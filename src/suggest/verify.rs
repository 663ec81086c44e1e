//! Every candidate is applied to a copy of the matrix, checked as `handoff check` does, and
//! shadow-diffed on the same events before it is shown — alone, then together with every
//! proposal accepted before it, in order, so that what `matrix.proposed.toml` applies at once is
//! exactly a combination that was checked. A change is refused when the matrix it makes is
//! invalid, when it relaxes or removes a reason from a `hard_stop` decision, when it would let an
//! action a person rejected run without one, or when such an action cannot be checked because
//! its event was not read.

use super::edit::{self, Change};
use super::rules::Candidate;
use super::{Case, Fate, Proposal, Proposals};
use crate::event::AgentAction;
use crate::matrix::{Matrix, MatrixSource};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// What a change does to the recorded events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Shadow {
    /// Share of events needing a person, before and after.
    pub escalation_rate: (f64, f64),
    /// Events whose decision changes.
    pub changed_decisions: usize,
    /// Events still handed to people, but to other roles: "old roles → new roles" → events.
    pub approvers_changed: BTreeMap<String, usize>,
}

/// What the checks need to know of the cases.
struct Known<'a> {
    /// Actions a person rejected.
    rejected: HashSet<&'a str>,
    /// Action types of rejected actions whose event was not read.
    rejected_unseen: BTreeMap<&'a str, usize>,
}

impl<'a> Known<'a> {
    fn new(cases: &'a [Case]) -> Known<'a> {
        let rejected: Vec<&Case> = cases.iter().filter(|c| c.fate == Fate::Rejected).collect();
        let mut rejected_unseen = BTreeMap::new();
        for c in rejected.iter().filter(|c| c.confidence.is_none()) {
            *rejected_unseen.entry(c.action_type.as_str()).or_default() += 1;
        }
        Known {
            rejected: rejected.iter().map(|c| c.action_id.as_str()).collect(),
            rejected_unseen,
        }
    }

    /// Rejected actions a change may affect that cannot be checked.
    fn unseen(&self, changes: &[Change]) -> usize {
        changes
            .iter()
            .map(|c| match c.action_type() {
                Some(ty) => self.rejected_unseen.get(ty).copied().unwrap_or(0),
                None => self.rejected_unseen.values().sum(),
            })
            .max()
            .unwrap_or(0)
    }
}

/// Verifies every candidate alone, then combines the accepted ones in order.
pub fn all(
    text: &str,
    matrix: &Matrix,
    found: Vec<Candidate>,
    cases: &[Case],
    events: &[AgentAction],
) -> Proposals {
    let known = Known::new(cases);
    let mut list: Vec<Proposal> = found
        .into_iter()
        .map(|c| {
            let (shadow, verified) = match c.refused {
                Some(why) => (Shadow::default(), Err(why)),
                None => check(
                    text,
                    matrix,
                    std::slice::from_ref(&c.change),
                    events,
                    &known,
                ),
            };
            Proposal {
                change: c.change,
                evidence: c.evidence,
                shadow,
                verified,
            }
        })
        .collect();
    let mut accepted: Vec<Change> = Vec::new();
    let mut combined = Shadow {
        escalation_rate: rates(matrix, events),
        ..Shadow::default()
    };
    for p in list.iter_mut().filter(|p| p.verified.is_ok()) {
        let mut with = accepted.clone();
        with.push(p.change.clone());
        let (shadow, verified) = check(text, matrix, &with, events, &known);
        if let Err(why) = verified {
            let before: Vec<String> = accepted.iter().map(Change::describe).collect();
            p.verified = Err(format!(
                "safe alone, but together with the proposals accepted before it ({}) {why}",
                before.join("; ")
            ));
            continue;
        }
        accepted.push(p.change.clone());
        combined = shadow;
    }
    Proposals { list, combined }
}

/// The escalation rate of the events under `matrix`, before and after no change.
fn rates(matrix: &Matrix, events: &[AgentAction]) -> (f64, f64) {
    crate::replay::diff::diff(matrix, matrix, events).escalation_rates()
}

/// Applies `changes` together and checks the result on `events`.
fn check(
    text: &str,
    matrix: &Matrix,
    changes: &[Change],
    events: &[AgentAction],
    known: &Known<'_>,
) -> (Shadow, Result<(), String>) {
    let refs: Vec<&Change> = changes.iter().collect();
    let new = match edit::apply(text, &refs)
        .and_then(|t| Matrix::from_toml_str(&t, MatrixSource::Default).map_err(|e| e.to_string()))
    {
        Ok(m) => m,
        Err(e) => {
            let why = format!("the changed matrix does not pass `check`: {e}");
            return (Shadow::default(), Err(why));
        }
    };
    let d = crate::replay::diff::diff(matrix, &new, events);
    let mut shadow = Shadow {
        escalation_rate: d.escalation_rates(),
        changed_decisions: d.changed,
        approvers_changed: BTreeMap::new(),
    };
    for c in &d.changes {
        if c.old_level.needs_human() && c.new_level.needs_human() && c.old_roles != c.new_roles {
            let key = format!(
                "[{}] → [{}]",
                c.old_roles.join(", "),
                c.new_roles.join(", ")
            );
            *shadow.approvers_changed.entry(key).or_default() += 1;
        }
    }
    (shadow, refusal(&d, changes, known))
}

/// Why the diff rules a change out, if it does.
fn refusal(
    d: &crate::replay::diff::DiffReport,
    changes: &[Change],
    known: &Known<'_>,
) -> Result<(), String> {
    if !d.relaxed_hard_stops.is_empty() {
        return Err(format!(
            "it relaxes {} hard_stop decision(s)",
            d.relaxed_hard_stops.len()
        ));
    }
    let mut lost: BTreeSet<&str> = BTreeSet::new();
    let mut stripped = 0;
    for c in d
        .changes
        .iter()
        .filter(|c| c.old_level == crate::event::Level::HardStop)
    {
        let gone: Vec<&str> = c
            .old_triggers
            .iter()
            .filter(|t| !c.new_triggers.contains(t))
            .map(String::as_str)
            .collect();
        stripped += usize::from(!gone.is_empty());
        lost.extend(gone);
    }
    if stripped > 0 {
        let lost: Vec<&str> = lost.into_iter().collect();
        return Err(format!(
            "it removes a reason ({}) from {stripped} hard_stop decision(s)",
            lost.join(", ")
        ));
    }
    let let_through: Vec<&str> = d
        .changes
        .iter()
        .filter(|c| !c.new_level.needs_human() && known.rejected.contains(c.action_id.as_str()))
        .map(|c| c.action_id.as_str())
        .collect();
    if !let_through.is_empty() {
        let shown: Vec<&str> = let_through.iter().take(5).copied().collect();
        return Err(format!(
            "it would let through {} action(s) a person rejected: {}",
            let_through.len(),
            shown.join(", ")
        ));
    }
    let unseen = known.unseen(changes);
    if unseen > 0 {
        return Err(format!(
            "{unseen} action(s) a person rejected have no event, so what it does to them cannot \
             be checked"
        ));
    }
    Ok(())
}
