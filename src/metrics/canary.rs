//! The canaries' own metrics: the only place a canary is counted.

use crate::event::canary::CanaryResult;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Registry};

/// `handoff_canaries_total{role,result}` and `handoff_canary_answer_seconds{role}`.
#[derive(Clone)]
pub struct CanaryMetrics {
    results: IntCounterVec,
    answer: HistogramVec,
}

impl CanaryMetrics {
    /// Registers both families; each of `roles` starts at zero (for every result).
    pub(super) fn register(r: &Registry, roles: &[String]) -> CanaryMetrics {
        let results = super::counter_vec(
            r,
            "handoff_canaries_total",
            "Canaries (synthetic escalations with a known answer) settled, by role handed to and \
             result (caught, missed, timed_out, not_escalated).",
            &["role", "result"],
        );
        let answer = super::registered(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "handoff_canary_answer_seconds",
                    "From a canary's escalation to the first human answer, by role answering.",
                )
                .buckets(super::HUMAN_BUCKETS.to_vec()),
                &["role"],
            ),
        );
        for role in roles {
            answer.with_label_values(&[role.as_str()]);
            for result in CanaryResult::ALL {
                results.with_label_values(&[role.as_str(), result.as_str()]);
            }
        }
        CanaryMetrics { results, answer }
    }

    /// Counts a settled canary of `role` (a matrix role: the label stays bounded).
    pub fn settled(&self, role: &str, result: CanaryResult) {
        self.results
            .with_label_values(&[role, result.as_str()])
            .inc();
    }

    /// Records the first answer to a canary of `role`, `seconds` after its escalation.
    pub fn answered(&self, role: &str, seconds: f64) {
        self.answer.with_label_values(&[role]).observe(seconds);
    }
}
