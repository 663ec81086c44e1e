//! The review queue's items: decided events that need no human, sent to the review queue
//! when a rule defers them (`then.review = true`) or the sampling of `execute_log` picks them.

use super::lane::Lane;
use crate::event::{AgentAction, DigestItem, DigestReason, Level};
use crate::matrix::Decision;

impl Lane {
    /// The review-queue item of a decided event that needs no human, when a rule defers it or
    /// the sampling of `execute_log` picks it.
    pub(super) fn review_item(
        &self,
        event: &AgentAction,
        decision: &Decision,
        now_ms: i64,
    ) -> Option<DigestItem> {
        let deferred = decision
            .triggers
            .iter()
            .any(|t| self.decide.review_triggers.contains(t));
        let sampled = !deferred
            && decision.level == Level::ExecuteLog
            && crate::fatigue::sampled(&event.action_id, self.decide.sample_share);
        if !deferred && !sampled {
            return None;
        }
        let reason = if deferred {
            DigestReason::Deferred
        } else {
            DigestReason::Sampled
        };
        Some(crate::fatigue::review_item(event, decision, reason, now_ms))
    }
}
