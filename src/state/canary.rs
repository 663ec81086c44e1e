//! Canaries in the state: an open action marked as one, and its effects turned into canary
//! effects — sent the same way (the escalation to the role's topic), but its verdicts kept from
//! the agents and nothing of it counted in the real metrics.

use super::{Effect, PartitionState};
use crate::event::canary::Expect;

impl PartitionState {
    /// Marks the open action `action_id` of `session_id` as a canary expecting `expect` (an
    /// action that opened nothing, or was grouped into another, is left alone).
    pub fn mark_canary(&mut self, session_id: &str, action_id: &str, expect: Expect) {
        let Some(r) = self.sessions.get_mut(session_id) else {
            return;
        };
        let Some(a) = r.open.iter_mut().find(|a| a.event.action_id == action_id) else {
            return;
        };
        if a.canary != Some(expect) {
            a.canary = Some(expect);
            self.dirty.insert(session_id.to_string());
        }
    }

    /// The expected answer of action `ai` of `session`, when it is a canary.
    pub(super) fn canary_at(&self, session: &str, ai: usize) -> Option<Expect> {
        self.sessions.get(session)?.open.get(ai)?.canary
    }
}

/// Turns the effects from index `from` on — all of one canary — into canary effects: verdicts
/// and escalations marked, the first answer timed, and whatever the real metrics count (pending,
/// answers, missed deadlines, timeouts, grouping, review) dropped.
pub fn disguise(effects: &mut Vec<Effect>, from: usize, expect: Expect) {
    let tail: Vec<Effect> = effects.drain(from..).collect();
    for e in tail {
        let kept = match e {
            Effect::Verdict(v) => Some(Effect::CanaryVerdict(v, expect)),
            Effect::Escalation(role, x) => Some(Effect::CanaryEscalation(role, x)),
            Effect::Answered {
                role,
                waited_ms: Some(waited_ms),
                ..
            } => Some(Effect::CanaryAnswered { role, waited_ms }),
            e @ (Effect::CanaryVerdict(..)
            | Effect::CanaryEscalation(..)
            | Effect::CanaryAnswered { .. }) => Some(e),
            Effect::Answered { .. }
            | Effect::Approval(..)
            | Effect::Opened(..)
            | Effect::Closed(..)
            | Effect::DeadlineMissed { .. }
            | Effect::TimedOut { .. }
            | Effect::Grouped(..)
            | Effect::Review(..) => None,
        };
        effects.extend(kept);
    }
}
