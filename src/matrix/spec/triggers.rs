//! Trigger settings as written in a file: each trigger's section, its outcome and the policy
//! defaults for whatever a file leaves out.

use super::TextField;
use crate::event::{CustomerTier, Level, Tier};
use crate::matrix::trigger::Trigger;
use serde::{Deserialize, Serialize};

/// What a trigger does when it fires. Fields left out keep the trigger's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutcome {
    /// Minimum execution level.
    #[serde(default)]
    pub level: Option<Level>,
    /// Roles to hand over to.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Urgency of the hand-over.
    #[serde(default)]
    pub tier: Option<Tier>,
    /// Send events this trigger fires on, when no human must act first, to the review queue
    /// (a digest on the review topic) instead of interrupting anyone: defer and log.
    #[serde(default)]
    pub review: Option<bool>,
    /// Four-eyes: how many distinct people must approve when this trigger fires.
    #[serde(default)]
    pub approvals: Option<u8>,
    /// With `approvals` above 1: from as many distinct roles.
    #[serde(default)]
    pub distinct_roles: Option<bool>,
}

/// A trigger's effect after defaults are applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Minimum execution level.
    pub level: Level,
    /// Roles to hand over to, sorted.
    pub roles: Vec<String>,
    /// Urgency.
    pub tier: Tier,
    /// Deferred to the review queue.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub review: bool,
    /// Approvals needed when it fires (four-eyes).
    #[serde(skip_serializing_if = "crate::matrix::Quorum::is_default")]
    pub quorum: crate::matrix::Quorum,
}

fn outcome(level: Level, roles: &[&str], tier: Tier) -> Outcome {
    Outcome {
        level,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        review: false,
        tier,
        quorum: crate::matrix::Quorum::default(),
    }
}

/// The policy default for each trigger's outcome, used for whatever a matrix leaves out.
pub fn default_outcome(t: Trigger) -> Outcome {
    use Level::*;
    use Tier::*;
    match t {
        Trigger::LowConfidence => outcome(AskFirst, &["owner"], Warm),
        Trigger::PolicyKeyword => outcome(HardStop, &["compliance"], Immediate),
        Trigger::MultipleOptions => outcome(AskFirst, &["owner"], Warm),
        Trigger::TaskFailure => outcome(AskFirst, &["it_ops"], Warm),
        Trigger::HighValueCustomer => outcome(AskFirst, &["support"], Warm),
        Trigger::AmountLimit => outcome(AskFirst, &["compliance"], Warm),
        Trigger::HumanRequested => outcome(AskFirst, &["support"], Immediate),
        Trigger::Irreversible => outcome(ExecuteLog, &[], Warm),
        Trigger::AffectsOthers => outcome(ExecuteLog, &[], Warm),
        Trigger::ConsecutiveLowConfidence => outcome(AskFirst, &["support"], Immediate),
        Trigger::Anomaly => outcome(HardStop, &["trader", "compliance", "it_ops"], Immediate),
        Trigger::UnknownAction => outcome(AskFirst, &["owner"], Warm),
    }
}

fn yes() -> bool {
    true
}
fn default_confidence_threshold() -> f64 {
    0.70
}
fn default_min_options() -> usize {
    2
}
fn default_amount_limit() -> f64 {
    10_000.0
}
fn default_turns() -> u32 {
    2
}
fn default_retention_complaints() -> i32 {
    3
}
fn default_anomaly_attribute() -> String {
    "anomaly".to_string()
}
fn default_keyword_fields() -> Vec<TextField> {
    vec![
        TextField::Request,
        TextField::Output,
        TextField::UserMessage,
    ]
}
fn default_phrase_fields() -> Vec<TextField> {
    vec![TextField::Request, TextField::UserMessage]
}
fn default_customer_tiers() -> Vec<CustomerTier> {
    vec![CustomerTier::Premium, CustomerTier::Vip]
}
fn default_customer_facing() -> Vec<String> {
    ["email.*", "refund.*", "payment.*"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// A confidence threshold for the action types matching a pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRule {
    /// Action type pattern.
    pub pattern: String,
    /// Confidence below this fires `low_confidence`.
    pub threshold: f64,
}

/// An amount limit for the action types matching a pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    /// Action type pattern.
    pub pattern: String,
    /// Amounts above this fire `amount_limit`.
    pub limit: f64,
}

/// `low_confidence`: the confidence gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LowConfidenceSpec {
    /// Whether the trigger fires (its threshold still feeds `consecutive_low_confidence`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Default threshold.
    #[serde(default = "default_confidence_threshold")]
    pub threshold: f64,
    /// Thresholds per action type pattern; the most specific wins.
    #[serde(default)]
    pub per_action: Vec<ThresholdRule>,
    /// What an action without a confidence counts as (most agent frameworks give none). Left
    /// out of the spec's JSON form when it is the default, so the rule version of a matrix
    /// written before it existed does not change.
    #[serde(default, skip_serializing_if = "WithoutConfidence::is_default")]
    pub without_confidence: WithoutConfidence,
    /// Effect when fired.
    #[serde(default)]
    pub then: RawOutcome,
}

/// What an action that carries no confidence counts as against the confidence gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithoutConfidence {
    /// Below every gate: `low_confidence` fires and the session's streak below the gate grows
    /// (fail closed: nobody vouched for it).
    #[default]
    Below,
    /// The gate does not apply to it: nothing fires and the streak ends, as above the gate.
    Passes,
}

impl WithoutConfidence {
    fn is_default(&self) -> bool {
        *self == WithoutConfidence::default()
    }

    /// The name in the matrix.
    pub fn as_str(self) -> &'static str {
        match self {
            WithoutConfidence::Below => "below",
            WithoutConfidence::Passes => "passes",
        }
    }
}

/// `policy_keyword`: words and phrases that must reach compliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyKeywordSpec {
    /// Whether the trigger fires.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Words and phrases, matched case-insensitively (ASCII) on whole words.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Fields scanned.
    #[serde(default = "default_keyword_fields")]
    pub fields: Vec<TextField>,
    /// Extra roles when the action concerns a customer.
    #[serde(default)]
    pub customer_roles: Vec<String>,
    /// Effect when fired.
    #[serde(default)]
    pub then: RawOutcome,
}

/// `human_requested`: the user asks for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanRequestedSpec {
    /// Whether the trigger fires.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Phrases, matched like keywords.
    #[serde(default)]
    pub phrases: Vec<String>,
    /// Fields scanned (the agent's own output is left out by default).
    #[serde(default = "default_phrase_fields")]
    pub fields: Vec<TextField>,
    /// Effect when fired.
    #[serde(default)]
    pub then: RawOutcome,
}

/// `multiple_options`: a human chooses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultipleOptionsSpec {
    /// Whether the trigger fires.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Fires with at least this many options.
    #[serde(default = "default_min_options")]
    pub min_options: usize,
    /// Effect when fired.
    #[serde(default)]
    pub then: RawOutcome,
}

/// `high_value_customer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HighValueCustomerSpec {
    /// Whether the trigger fires.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Customer tiers that count as high value.
    #[serde(default = "default_customer_tiers")]
    pub tiers: Vec<CustomerTier>,
    /// Customer-facing action type patterns.
    #[serde(default = "default_customer_facing")]
    pub actions: Vec<String>,
    /// This many prior complaints or more flags a retention risk.
    #[serde(default = "default_retention_complaints")]
    pub retention_risk_complaints: i32,
    /// Effect when fired.
    #[serde(default)]
    pub then: RawOutcome,
}

/// `amount_limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountLimitSpec {
    /// Whether the trigger fires.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Default limit, in any currency.
    #[serde(default = "default_amount_limit")]
    pub limit: f64,
    /// Limits per action type pattern; the most specific wins.
    #[serde(default)]
    pub per_action: Vec<LimitRule>,
    /// Effect when fired.
    #[serde(default)]
    pub then: RawOutcome,
}

/// `consecutive_low_confidence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsecutiveSpec {
    /// Whether the trigger fires.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Fires on the Nth turn in a row below the confidence gate.
    #[serde(default = "default_turns")]
    pub turns: u32,
    /// Effect when fired.
    #[serde(default)]
    pub then: RawOutcome,
}

/// `anomaly`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalySpec {
    /// Whether the trigger fires.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Attribute whose presence (non-empty, not `none`/`false`) marks an anomaly.
    #[serde(default = "default_anomaly_attribute")]
    pub attribute: String,
    /// Effect when fired.
    #[serde(default)]
    pub then: RawOutcome,
}

/// Triggers with no parameters: `task_failure`, `irreversible`, `affects_others`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleSpec {
    /// Whether the trigger fires.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Effect when fired.
    #[serde(default)]
    pub then: RawOutcome,
}

/// `unknown_action`: always on, so unknown action types fail closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnknownActionSpec {
    /// Effect when fired; the level must be at least `ask_first`.
    #[serde(default)]
    pub then: RawOutcome,
}

/// Every trigger's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggersSpec {
    /// `low_confidence`.
    pub low_confidence: LowConfidenceSpec,
    /// `policy_keyword`.
    pub policy_keyword: PolicyKeywordSpec,
    /// `multiple_options`.
    pub multiple_options: MultipleOptionsSpec,
    /// `task_failure`.
    pub task_failure: SimpleSpec,
    /// `high_value_customer`.
    pub high_value_customer: HighValueCustomerSpec,
    /// `amount_limit`.
    pub amount_limit: AmountLimitSpec,
    /// `human_requested`.
    pub human_requested: HumanRequestedSpec,
    /// `irreversible`.
    pub irreversible: SimpleSpec,
    /// `affects_others`.
    pub affects_others: SimpleSpec,
    /// `consecutive_low_confidence`.
    pub consecutive_low_confidence: ConsecutiveSpec,
    /// `anomaly`.
    pub anomaly: AnomalySpec,
    /// `unknown_action`.
    pub unknown_action: UnknownActionSpec,
}
