//! From records to cases: one [`Case`] per real action first decided in the range (canaries and
//! drills counted and left out), and what in the records was left out or does not add up
//! ([`Skipped`]), so the report can say it.

use super::{Case, Fate};
use crate::audit::{self, Records};
use crate::event::{DecisionKind, VerdictOutcome};
use crate::matrix::Matrix;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// What the records held that the cases leave out, or that does not add up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Canaries (synthetic escalations that test the people, not the rules).
    pub canaries: usize,
    /// Drill traffic (game-days and replays: not real decisions).
    pub drills: usize,
    /// Events that failed validation (as `eval` validates them), left out.
    pub invalid_events: usize,
    /// Actions whose event was not read: their confidence and texts are unknown.
    pub without_event: usize,
    /// Actions with later verdicts but no first verdict (decided before the range, or missing
    /// from the verdicts file), left out.
    pub without_first_verdict: usize,
    /// Human decisions for an escalation or action of none of the verdicts read.
    pub unmatched_decisions: usize,
    /// The same answer to the same escalation by the same person, recorded again.
    pub repeated_decisions: usize,
    /// Escalations answered with different answers (approve and reject, say); the final
    /// verdict's outcome is what counts.
    pub contradictory_decisions: usize,
}

impl Skipped {
    /// Lines for people, one per non-zero count.
    pub fn lines(&self) -> Vec<String> {
        [
            (self.canaries, "canary action(s) left out (they test the people, not the rules)"),
            (self.drills, "drill action(s) left out (game-days and replays are not real decisions)"),
            (self.invalid_events, "event(s) failing validation left out"),
            (self.without_event, "action(s) without their event (confidence and texts unknown: never used to lower a gate)"),
            (self.without_first_verdict, "action(s) with later verdicts but no first verdict left out (decided before the range, or missing from the verdicts)"),
            (self.unmatched_decisions, "decision(s) for escalations of no action read"),
            (self.repeated_decisions, "decision(s) recorded twice (counted once)"),
            (self.contradictory_decisions, "escalation(s) answered with different answers (the final verdict counts)"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect()
    }
}

/// The cases of the real actions first decided in `[from_ms, to_ms)`, with the reasons each
/// was escalated for read from `matrix` (the triggers whose level needs a person), and what was
/// left out.
pub fn cases(r: &Records, matrix: &Matrix, from_ms: i64, to_ms: i64) -> (Vec<Case>, Skipped) {
    let mut skipped = check_decisions(r);
    let events: HashMap<&str, (Option<f64>, bool)> = r
        .events
        .iter()
        .map(|e| {
            let templated = e.template_id.is_some();
            (e.action_id.as_str(), (e.confidence, templated))
        })
        .collect();
    let firsts: HashSet<&str> = r
        .verdicts
        .iter()
        .chain(&r.canaries)
        .filter(|v| v.outcome.is_first())
        .map(|v| v.action_id.as_str())
        .collect();
    let mut without_first: HashSet<&str> = r
        .verdicts
        .iter()
        .map(|v| v.action_id.as_str())
        .filter(|id| !firsts.contains(id))
        .collect();
    let mut out = Vec::new();
    for e in audit::join(r, from_ms, to_ms) {
        without_first.remove(e.action_id.as_str());
        if e.canary {
            skipped.canaries += 1;
            continue;
        }
        if e.drill {
            skipped.drills += 1;
            continue;
        }
        let event = events.get(e.action_id.as_str()).copied();
        skipped.without_event += usize::from(event.is_none());
        out.push(case(e, event, matrix));
    }
    skipped.without_first_verdict = without_first.len();
    (out, skipped)
}

fn case(e: audit::Entry, event: Option<(Option<f64>, bool)>, matrix: &Matrix) -> Case {
    let redirected = e
        .answers
        .iter()
        .any(|a| a.decision == DecisionKind::Redirect);
    // Escalated: its level needed a person (the escalations themselves may not have been read,
    // e.g. from files).
    let alone = !e.level.needs_human() && e.shown.is_empty();
    let fate = match (alone, e.outcome) {
        (true, _) => Fate::Alone,
        (_, VerdictOutcome::Approved) if redirected => Fate::Redirected,
        (_, VerdictOutcome::Approved) => Fate::Unchanged,
        (_, VerdictOutcome::Revised) => Fate::Revised,
        (_, VerdictOutcome::Rejected) => Fate::Rejected,
        (_, VerdictOutcome::Redirected) => Fate::Redirected,
        (_, VerdictOutcome::TimedOutBlocked | VerdictOutcome::TimedOutProceed) => Fate::TimedOut,
        _ => Fate::Open,
    };
    let triggers: Vec<String> = e.triggers.into_iter().map(|t| t.trigger).collect();
    let escalating = triggers
        .iter()
        .filter(|t| matrix.trigger_level(t).is_some_and(|l| l.needs_human()))
        .cloned()
        .collect();
    Case {
        confidence: event.and_then(|x| x.0),
        templated: event.map(|x| x.1),
        agent_id: e.agent_id,
        action_type: e.action_type,
        triggers,
        escalating,
        level: e.level,
        decided_at_ms: e.decided_at_ms,
        fate,
        decide_ms: fate.by_person().then_some(e.final_at_ms - e.decided_at_ms),
        action_id: e.action_id,
    }
}

/// Decisions that match nothing, come twice, or contradict each other.
fn check_decisions(r: &Records) -> Skipped {
    let known_escalations: HashSet<&str> = r
        .verdicts
        .iter()
        .chain(&r.canaries)
        .flat_map(|v| v.escalation_ids.iter().map(String::as_str))
        .chain(r.escalations.iter().map(|e| e.escalation_id.as_str()))
        .collect();
    let known_actions: HashSet<&str> = r
        .verdicts
        .iter()
        .chain(&r.canaries)
        .map(|v| v.action_id.as_str())
        .collect();
    let mut s = Skipped::default();
    let mut seen = HashSet::new();
    let mut answers: HashMap<&str, HashSet<DecisionKind>> = HashMap::new();
    for d in &r.decisions {
        let matched = known_escalations.contains(d.escalation_id.as_str())
            || known_actions.contains(d.action_id.as_str());
        s.unmatched_decisions += usize::from(!matched);
        if !seen.insert((&d.escalation_id, &d.decided_by, d.decision)) {
            s.repeated_decisions += 1;
        }
        if d.decision != DecisionKind::Acknowledge {
            answers
                .entry(d.escalation_id.as_str())
                .or_default()
                .insert(d.decision);
        }
    }
    s.contradictory_decisions = answers.values().filter(|k| k.len() > 1).count();
    s
}
