//! The guard against rubber-stamping: every approval sent from the inbox is classed by how it
//! was reviewed — `reviewed`, `fast` (answered sooner after opening the detail than the tier's
//! minimum review time) or `unopened` (approved without opening the detail: a Slack button, a
//! stale tab) — and each person's run of approvals in a row is followed. Metrics carry the role
//! and tier, never the person (per-person figures belong in reports).

use crate::config::inbox::MinReview;
use crate::event::{DecisionKind, Tier};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use std::collections::HashMap;
use std::sync::Mutex;

/// How an approval was reviewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// Opened, and looked at for at least the tier's minimum.
    Reviewed,
    /// Opened, and approved sooner than the tier's minimum.
    Fast,
    /// Approved without the detail having been opened.
    Unopened,
}

impl Review {
    /// Every class, in label order.
    pub const ALL: [Review; 3] = [Review::Reviewed, Review::Fast, Review::Unopened];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Review::Reviewed => "reviewed",
            Review::Fast => "fast",
            Review::Unopened => "unopened",
        }
    }
}

/// Classes an approval at `at_ms` of an escalation first opened at `opened_ms`.
pub fn classify(min_ms: i64, opened_ms: Option<i64>, at_ms: i64) -> Review {
    match opened_ms {
        None => Review::Unopened,
        Some(o) if at_ms - o < min_ms => Review::Fast,
        Some(_) => Review::Reviewed,
    }
}

/// The signals and their metric families.
pub struct Guard {
    min: MinReview,
    approvals: IntCounterVec,
    streak_max: IntGaugeVec,
    /// Per person: their role of the last answer, and their approvals in a row.
    streaks: Mutex<HashMap<String, (String, u64)>>,
}

impl Guard {
    /// Registers the families once, with every (role, tier, review) at zero so that rates and
    /// alerts have series from the start.
    pub fn register(registry: &Registry, min: MinReview, roles: &[&str]) -> Guard {
        let approvals = IntCounterVec::new(
            Opts::new(
                "handoff_inbox_approvals_total",
                "Approvals sent from the inbox, by role, tier and how they were reviewed \
                 (reviewed, fast: sooner than the tier's minimum review time after opening, \
                 unopened: without opening the detail).",
            ),
            &["role", "tier", "review"],
        )
        .expect("valid");
        let streak_max = IntGaugeVec::new(
            Opts::new(
                "handoff_inbox_approval_streak_max",
                "The longest current run of approvals in a row by one person of the role.",
            ),
            &["role"],
        )
        .expect("valid");
        for role in roles {
            streak_max.with_label_values(&[role]).set(0);
            for tier in [Tier::Warm, Tier::Immediate] {
                for r in Review::ALL {
                    approvals.with_label_values(&[role, tier.as_str(), r.as_str()]);
                }
            }
        }
        let _ = registry.register(Box::new(approvals.clone()));
        let _ = registry.register(Box::new(streak_max.clone()));
        Guard {
            min,
            approvals,
            streak_max,
            streaks: Mutex::default(),
        }
    }

    /// Sets the minimum review times (from `[inbox] min_review`).
    pub fn set_min_review(&mut self, min: MinReview) {
        self.min = min;
    }

    /// Takes an answer sent by `person`; returns how an approval was reviewed.
    pub fn answered(
        &self,
        person: &str,
        role: &str,
        tier: Tier,
        decision: DecisionKind,
        opened_ms: Option<i64>,
        at_ms: i64,
    ) -> Option<Review> {
        let mut streaks = self.streaks.lock().expect("not poisoned");
        let s = streaks
            .entry(person.to_string())
            .or_insert_with(|| (role.to_string(), 0));
        s.0 = role.to_string();
        let review = match decision {
            DecisionKind::Approve => {
                s.1 += 1;
                let min = match tier {
                    Tier::Warm => self.min.warm,
                    Tier::Immediate => self.min.immediate,
                };
                let r = classify(min.as_millis() as i64, opened_ms, at_ms);
                self.approvals
                    .with_label_values(&[role, tier.as_str(), r.as_str()])
                    .inc();
                Some(r)
            }
            DecisionKind::Acknowledge => None,
            _ => {
                s.1 = 0;
                None
            }
        };
        let longest = streaks
            .values()
            .filter(|(r, _)| r == role)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        self.streak_max
            .with_label_values(&[role])
            .set(longest as i64);
        review
    }

    /// Approvals counted (tests).
    pub fn approvals(&self, role: &str, tier: Tier, review: Review) -> u64 {
        self.approvals
            .with_label_values(&[role, tier.as_str(), review.as_str()])
            .get()
    }

    /// The longest streak of the role (tests).
    pub fn streak_max(&self, role: &str) -> i64 {
        self.streak_max.with_label_values(&[role]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvals_are_classed_by_the_time_looked_at() {
        let table = [
            (10_000, None, 50_000, Review::Unopened),
            (10_000, Some(45_000), 50_000, Review::Fast),
            (10_000, Some(40_000), 50_000, Review::Reviewed),
            (0, Some(50_000), 50_000, Review::Reviewed),
        ];
        for (min, opened, at, want) in table {
            assert_eq!(classify(min, opened, at), want, "{min} {opened:?} {at}");
        }
    }

    #[test]
    fn streaks_count_approvals_in_a_row_and_reset_on_anything_else() {
        let min = MinReview {
            warm: std::time::Duration::from_secs(20),
            immediate: std::time::Duration::from_secs(5),
        };
        let g = Guard::register(&Registry::new(), min, &["support"]);
        for i in 0..4 {
            g.answered("ana", "support", Tier::Warm, DecisionKind::Approve, None, i);
        }
        g.answered(
            "sam",
            "support",
            Tier::Warm,
            DecisionKind::Approve,
            Some(0),
            60_000,
        );
        assert_eq!(g.streak_max("support"), 4);
        assert_eq!(g.approvals("support", Tier::Warm, Review::Unopened), 4);
        assert_eq!(g.approvals("support", Tier::Warm, Review::Reviewed), 1);
        g.answered(
            "ana",
            "support",
            Tier::Warm,
            DecisionKind::Reject,
            Some(0),
            1,
        );
        assert_eq!(g.streak_max("support"), 1, "ana's run ended; sam's is 1");
        g.answered(
            "sam",
            "support",
            Tier::Immediate,
            DecisionKind::Approve,
            Some(0),
            1_000,
        );
        assert_eq!(g.approvals("support", Tier::Immediate, Review::Fast), 1);
    }
}
