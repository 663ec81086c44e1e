//! The other sections of a matrix file: levels, approvals, tiers, roles and fatigue.

use super::PackageField;
use crate::event::{Level, Tier};
use serde::{Deserialize, Serialize};
use std::time::Duration;

fn all_attributes() -> Vec<String> {
    vec!["*".to_string()]
}

/// Execution level for the action types matching a pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelRule {
    /// `email.send`, `email.*` or `*`.
    pub pattern: String,
    /// Level for matching actions.
    pub level: Level,
    /// Level instead when the action carries a `template_id` (approved template).
    #[serde(default)]
    pub templated: Option<Level>,
    /// Who approves when this level needs a human; `[approvals].roles` when absent.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// What happens when every role of the escalation chain let its deadline pass:
    /// `fail_closed` (default, a `timed_out_blocked` verdict) or `fail_open` (a
    /// `timed_out_proceed` verdict; refused for `hard_stop`, and never applied to an event that a
    /// trigger raised to `hard_stop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<OnTimeout>,
    /// Four-eyes: how many distinct people must approve a matching action (1 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<u8>,
    /// With `approvals` above 1: the approvers must answer for as many distinct roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_roles: Option<bool>,
}

impl LevelRule {
    /// The approvals this rule asks for.
    pub fn quorum(&self) -> crate::matrix::Quorum {
        crate::matrix::Quorum {
            approvals: self.approvals.unwrap_or(1),
            distinct_roles: self.distinct_roles.unwrap_or(false),
        }
    }
}

/// What an unanswered escalation turns into when its chain is exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Block the action (`timed_out_blocked`).
    FailClosed,
    /// Let it run (`timed_out_proceed`).
    FailOpen,
}

/// Who approves actions whose own level (not a trigger) needs a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSpec {
    /// Default approvers for levels without their own `roles`.
    #[serde(default = "default_approvers")]
    pub roles: Vec<String>,
    /// Tier of such approvals.
    #[serde(default = "default_approval_tier")]
    pub tier: Tier,
    /// Four-eyes by level: the approvals an action at that level needs whatever raised it
    /// there (`{ hard_stop = 2 }`); 1 for a level not named.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub per_level: std::collections::BTreeMap<Level, u8>,
}

impl Default for ApprovalsSpec {
    fn default() -> Self {
        ApprovalsSpec {
            roles: default_approvers(),
            tier: default_approval_tier(),
            per_level: Default::default(),
        }
    }
}

fn default_approvers() -> Vec<String> {
    vec!["owner".to_string()]
}
fn default_approval_tier() -> Tier {
    Tier::Warm
}

/// Acknowledgement deadline of a tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// Time a human has to acknowledge, e.g. `5m`, `1h`.
    #[serde(with = "humantime_serde")]
    pub ack_within: Duration,
}

/// What one role sees of a context package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Who this role is.
    #[serde(default)]
    pub description: String,
    /// Name of the view, carried in every package (`market`, `audit`, `diagnostics`, …).
    #[serde(default)]
    pub view: Option<String>,
    /// Kafka topic; default `escalations.<role>`.
    #[serde(default)]
    pub topic: Option<String>,
    /// Attribute keys this role sees; `*` for all.
    #[serde(default = "all_attributes")]
    pub attributes: Vec<String>,
    /// Package fields hidden from this role.
    #[serde(default)]
    pub hide: Vec<PackageField>,
    /// Names of `[redaction]` patterns applied to this role's text.
    #[serde(default)]
    pub redact: Vec<String>,
    /// The role called next when this role lets an acknowledgement deadline pass (e.g.
    /// `support` → `support_l2` → `crisis_manager`); none ends the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<String>,
    /// At most `max` messages to this role in any `per`: beyond `max - 1`, escalations are
    /// folded into one digest sent `per` after the first folded one. None: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
}

/// A per-role rate limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Messages (escalations and digests) in any window of `per`, at most; 2 or more.
    pub max: u32,
    /// The window, e.g. `1m`.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
}

/// Fatigue control beyond per-role limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FatigueSpec {
    /// A new escalation for the same session, role and trigger within this time of an open one
    /// updates that one instead of opening another; `0s` turns grouping off.
    #[serde(default = "default_group_within", with = "humantime_serde")]
    pub group_within: Duration,
    /// The review queue's digest is sent this long after its first item.
    #[serde(default = "default_review_every", with = "humantime_serde")]
    pub review_every: Duration,
    /// Share (0..1) of `execute_log` actions copied to the review queue for spot checks
    /// (post-hoc sampling; chosen by a hash of the action id, so replays pick the same ones).
    #[serde(default)]
    pub sample_execute_log: f64,
}

fn default_group_within() -> Duration {
    Duration::from_secs(600)
}
fn default_review_every() -> Duration {
    Duration::from_secs(60)
}

impl Default for FatigueSpec {
    fn default() -> Self {
        FatigueSpec {
            group_within: default_group_within(),
            review_every: default_review_every(),
            sample_execute_log: 0.0,
        }
    }
}

/// Tier settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TiersSpec {
    /// `warm`.
    pub warm: TierSpec,
    /// `immediate`.
    pub immediate: TierSpec,
}
