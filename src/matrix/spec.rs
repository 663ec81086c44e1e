//! The escalation matrix as written in a file: serde structs (`deny_unknown_fields`, a named
//! default for every field), read piecewise so that every problem is reported at once, then
//! validated and normalised into a [`MatrixSpec`] whose hash is the rule version.

use super::pattern::Pattern;
use super::trigger::Trigger;
use crate::event::{CustomerTier, Level, Tier};
use crate::problems::{join, Problems};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The matrix shipped with handoff (`deploy/matrix.toml`), built into the binary.
pub const DEFAULT_MATRIX_TOML: &str = include_str!("../../deploy/matrix.toml");

/// Most roles one matrix may define (role sets are 64-bit masks).
pub const MAX_ROLES: usize = 64;

/// A text field of an agent action that keyword lists can scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextField {
    /// What was asked.
    Request,
    /// What the agent did.
    Summary,
    /// The agent's draft.
    Output,
    /// The end user's latest words.
    UserMessage,
}

impl TextField {
    /// All fields, in scan order.
    pub const ALL: [TextField; 4] = [
        TextField::Request,
        TextField::Summary,
        TextField::Output,
        TextField::UserMessage,
    ];

    /// The field name.
    pub fn as_str(self) -> &'static str {
        match self {
            TextField::Request => "request",
            TextField::Summary => "summary",
            TextField::Output => "output",
            TextField::UserMessage => "user_message",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A field of the context package that a role view may hide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageField {
    /// What was asked.
    Request,
    /// What the agent did.
    Summary,
    /// The draft.
    Output,
    /// The end user's words.
    UserMessage,
    /// The options.
    Options,
    /// The error text.
    Error,
    /// Amount and currency.
    Amount,
    /// The customer record.
    Customer,
}

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
}

fn outcome(level: Level, roles: &[&str], tier: Tier) -> Outcome {
    Outcome {
        level,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        review: false,
        tier,
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
fn default_warm_ack() -> Duration {
    Duration::from_secs(3600)
}
fn default_immediate_ack() -> Duration {
    Duration::from_secs(300)
}
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
}

impl Default for ApprovalsSpec {
    fn default() -> Self {
        ApprovalsSpec {
            roles: default_approvers(),
            tier: default_approval_tier(),
        }
    }
}

fn default_approvers() -> Vec<String> {
    vec!["owner".to_string()]
}
fn default_approval_tier() -> Tier {
    Tier::Warm
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
    /// Effect when fired.
    #[serde(default)]
    pub then: RawOutcome,
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

/// Tier settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TiersSpec {
    /// `warm`.
    pub warm: TierSpec,
    /// `immediate`.
    pub immediate: TierSpec,
}

/// A validated, normalised matrix: lists sorted, keywords lower-cased and deduplicated, every
/// trigger's outcome resolved. Its JSON form is hashed into the rule version, so reordering or
/// reformatting a file does not change the version, and any effective change does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixSpec {
    /// Free name shown by `check`.
    pub name: String,
    /// Level rules, sorted by pattern.
    pub levels: Vec<LevelRule>,
    /// Approvers for action types whose own level needs a human.
    pub approvals: ApprovalsSpec,
    /// Trigger settings.
    pub triggers: TriggersSpec,
    /// Resolved outcome of every trigger, in canonical order.
    pub outcomes: BTreeMap<Trigger, Outcome>,
    /// Tier deadlines.
    pub tiers: TiersSpec,
    /// Roles by name.
    pub roles: BTreeMap<String, RoleSpec>,
    /// Redaction patterns (regular expressions) by name.
    pub redaction: BTreeMap<String, String>,
    /// Grouping, the review queue and sampling.
    pub fatigue: FatigueSpec,
}

/// Top-level keys of a matrix file.
const TOP_KEYS: &[&str] = &[
    "name",
    "levels",
    "approvals",
    "triggers",
    "tiers",
    "roles",
    "redaction",
    "fatigue",
];

impl MatrixSpec {
    /// Reads a matrix from its JSON-like value (as the `config` crate produced it), collecting
    /// every problem; `None` when there is any.
    pub fn from_value(value: &Value, problems: &mut Problems) -> Option<MatrixSpec> {
        let empty = Value::Object(Default::default());
        let value = if value.is_null() { &empty } else { value };
        if !value.is_object() {
            problems.push("", "a matrix must be a table of sections");
            return None;
        }
        problems.unknown_keys(value, "", TOP_KEYS);
        let get = |k: &str| value.get(k).filter(|v| !v.is_null());

        let name = match get("name") {
            None => "unnamed".to_string(),
            Some(v) => problems.take::<String>(v, "name").unwrap_or_default(),
        };
        let mut levels: Vec<(usize, LevelRule)> = problems.take_list(get("levels"), "levels");
        let level_roles = check_levels(&mut levels, problems);
        let levels: Vec<LevelRule> = levels.into_iter().map(|(_, r)| r).collect();
        let approvals = match get("approvals") {
            None => ApprovalsSpec::default(),
            Some(v) => problems.take(v, "approvals").unwrap_or_default(),
        };
        let triggers = read_triggers(get("triggers"), problems);
        let tiers = read_tiers(get("tiers"), problems);
        let roles = read_map::<RoleSpec>(get("roles"), "roles", problems);
        let redaction = read_map::<String>(get("redaction"), "redaction", problems);
        let fatigue = match get("fatigue") {
            None => FatigueSpec::default(),
            Some(v) => problems.take(v, "fatigue").unwrap_or_default(),
        };

        let mut spec = MatrixSpec {
            name,
            levels,
            approvals,
            outcomes: BTreeMap::new(),
            triggers,
            tiers,
            roles,
            redaction,
            fatigue,
        };
        spec.validate_and_normalise(level_roles, problems);
        if problems.is_empty() {
            Some(spec)
        } else {
            None
        }
    }

    fn raw_outcome(&self, t: Trigger) -> (&RawOutcome, bool) {
        let tr = &self.triggers;
        match t {
            Trigger::LowConfidence => (&tr.low_confidence.then, tr.low_confidence.enabled),
            Trigger::PolicyKeyword => (&tr.policy_keyword.then, tr.policy_keyword.enabled),
            Trigger::MultipleOptions => (&tr.multiple_options.then, tr.multiple_options.enabled),
            Trigger::TaskFailure => (&tr.task_failure.then, tr.task_failure.enabled),
            Trigger::HighValueCustomer => {
                (&tr.high_value_customer.then, tr.high_value_customer.enabled)
            }
            Trigger::AmountLimit => (&tr.amount_limit.then, tr.amount_limit.enabled),
            Trigger::HumanRequested => (&tr.human_requested.then, tr.human_requested.enabled),
            Trigger::Irreversible => (&tr.irreversible.then, tr.irreversible.enabled),
            Trigger::AffectsOthers => (&tr.affects_others.then, tr.affects_others.enabled),
            Trigger::ConsecutiveLowConfidence => (
                &tr.consecutive_low_confidence.then,
                tr.consecutive_low_confidence.enabled,
            ),
            Trigger::Anomaly => (&tr.anomaly.then, tr.anomaly.enabled),
            Trigger::UnknownAction => (&tr.unknown_action.then, true),
        }
    }

    /// True when the trigger can fire.
    pub fn enabled(&self, t: Trigger) -> bool {
        self.raw_outcome(t).1
    }

    /// Checks what needs the whole matrix and sorts its lists. `approver_refs` are the roles
    /// the `[[levels]]` entries name, with their paths (see [`check_levels`]).
    fn validate_and_normalise(
        &mut self,
        mut approver_refs: Vec<(String, String)>,
        problems: &mut Problems,
    ) {
        self.levels.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        self.approvals.roles.sort();
        self.approvals.roles.dedup();
        for r in &self.approvals.roles {
            approver_refs.push(("approvals.roles".into(), r.clone()));
        }
        if self.approvals.roles.is_empty() {
            problems.push(
                "approvals.roles",
                "must name at least one role: action types at ask_first or hard_stop need an \
                 approver",
            );
        }

        let t = &mut self.triggers;
        let lc = "triggers.low_confidence";
        check_unit(
            t.low_confidence.threshold,
            &format!("{lc}.threshold"),
            problems,
        );
        check_rules(
            t.low_confidence
                .per_action
                .iter()
                .map(|r| (&r.pattern, r.threshold)),
            &format!("{lc}.per_action"),
            problems,
            check_unit,
        );
        t.low_confidence
            .per_action
            .sort_by(|a, b| a.pattern.cmp(&b.pattern));

        let al = "triggers.amount_limit";
        check_positive(t.amount_limit.limit, &format!("{al}.limit"), problems);
        check_rules(
            t.amount_limit
                .per_action
                .iter()
                .map(|r| (&r.pattern, r.limit)),
            &format!("{al}.per_action"),
            problems,
            check_positive,
        );
        t.amount_limit
            .per_action
            .sort_by(|a, b| a.pattern.cmp(&b.pattern));

        normalise_phrases(
            &mut t.policy_keyword.keywords,
            "triggers.policy_keyword.keywords",
            problems,
        );
        normalise_phrases(
            &mut t.human_requested.phrases,
            "triggers.human_requested.phrases",
            problems,
        );
        for (fields, path) in [
            (
                &mut t.policy_keyword.fields,
                "triggers.policy_keyword.fields",
            ),
            (
                &mut t.human_requested.fields,
                "triggers.human_requested.fields",
            ),
        ] {
            fields.sort();
            fields.dedup();
            if fields.is_empty() {
                problems.push(path, "must name at least one field to scan");
            }
        }
        if t.multiple_options.min_options < 2 {
            problems.push(
                "triggers.multiple_options.min_options",
                format!(
                    "{} is too small: several options means at least 2",
                    t.multiple_options.min_options
                ),
            );
        }
        if t.consecutive_low_confidence.turns < 2 {
            problems.push(
                "triggers.consecutive_low_confidence.turns",
                format!(
                    "{} is too small: \"in a row\" means at least 2 turns",
                    t.consecutive_low_confidence.turns
                ),
            );
        }
        if t.high_value_customer.retention_risk_complaints < 1 {
            problems.push(
                "triggers.high_value_customer.retention_risk_complaints",
                format!(
                    "{} must be 1 or more",
                    t.high_value_customer.retention_risk_complaints
                ),
            );
        }
        for (i, p) in t.high_value_customer.actions.iter().enumerate() {
            check_pattern(
                p,
                &format!("triggers.high_value_customer.actions[{i}]"),
                problems,
            );
        }
        t.high_value_customer.actions.sort();
        t.high_value_customer.actions.dedup();
        t.high_value_customer.tiers.sort();
        t.high_value_customer.tiers.dedup();
        if t.anomaly.attribute.trim().is_empty() {
            problems.push("triggers.anomaly.attribute", "must not be empty");
        }
        t.policy_keyword.customer_roles.sort();
        t.policy_keyword.customer_roles.dedup();
        let customer_roles = t.policy_keyword.customer_roles.clone();
        if !self.roles.is_empty() {
            for r in &customer_roles {
                self.check_role(r, "triggers.policy_keyword.customer_roles", problems);
            }
        }

        // Outcomes: defaults merged, roles defined, levels sensible.
        let mut wanted_roles = BTreeSet::new();
        for (path, r) in &approver_refs {
            if self.roles.is_empty() {
                wanted_roles.insert(r.clone());
            } else {
                self.check_role(r, path, problems);
            }
        }
        for trig in Trigger::ALL {
            let (raw, enabled) = self.raw_outcome(trig);
            let raw = raw.clone();
            let mut out = default_outcome(trig);
            if let Some(l) = raw.level {
                out.level = l;
            }
            if let Some(r) = raw.roles {
                out.roles = r;
            }
            if let Some(tier) = raw.tier {
                out.tier = tier;
            }
            if let Some(review) = raw.review {
                out.review = review;
            }
            out.roles.sort();
            out.roles.dedup();
            let path = format!("triggers.{trig}.then");
            if enabled {
                for r in &out.roles {
                    if self.roles.is_empty() {
                        wanted_roles.insert(r.clone());
                    } else {
                        self.check_role(r, &format!("{path}.roles"), problems);
                    }
                }
                if out.level.needs_human() && out.roles.is_empty() {
                    problems.push(
                        format!("{path}.roles"),
                        format!(
                            "level {} needs a human, but no role is named to hand over to",
                            out.level.as_str()
                        ),
                    );
                }
            }
            if trig == Trigger::UnknownAction && !out.level.needs_human() {
                problems.push(
                    format!("{path}.level"),
                    format!(
                        "{} would let unknown action types run alone; it must be ask_first or \
                         hard_stop (fail closed)",
                        out.level.as_str()
                    ),
                );
            }
            self.outcomes.insert(trig, out);
        }

        if !wanted_roles.is_empty() {
            problems.push(
                "roles",
                format!(
                    "no roles are defined, but the triggers hand over to {}: define each under \
                     [roles.NAME]",
                    wanted_roles.into_iter().collect::<Vec<_>>().join(", ")
                ),
            );
        }

        // Tiers.
        for (name, tier) in [
            ("warm", &self.tiers.warm),
            ("immediate", &self.tiers.immediate),
        ] {
            if tier.ack_within.is_zero() {
                problems.push(
                    format!("tiers.{name}.ack_within"),
                    "0s is no time to acknowledge; give a duration such as 5m",
                );
            }
        }

        // Roles.
        if self.roles.len() > MAX_ROLES {
            problems.push(
                "roles",
                format!("{} roles defined; at most {MAX_ROLES}", self.roles.len()),
            );
        }
        for (name, role) in &mut self.roles {
            let path = format!("roles.{name}");
            if !is_role_name(name) {
                problems.push(
                    path.clone(),
                    format!("role name {name:?} must be lower-case letters, digits and _"),
                );
            }
            for r in &role.redact {
                if !self.redaction.contains_key(r) {
                    problems.push(
                        format!("{path}.redact"),
                        format!(
                            "redaction pattern {r:?} is not defined in [redaction] (defined: {})",
                            list_or_none(self.redaction.keys())
                        ),
                    );
                }
            }
            role.redact.sort();
            role.redact.dedup();
            role.hide.sort();
            role.hide.dedup();
            role.attributes.sort();
            role.attributes.dedup();
            if let Some(topic) = &role.topic {
                if !is_topic_name(topic) {
                    problems.push(
                        format!("{path}.topic"),
                        format!(
                            "{topic:?} is not a valid Kafka topic name (letters, digits, . _ -; \
                             at most 249)"
                        ),
                    );
                }
            }
        }
        // Rate limits and fatigue settings.
        for (name, role) in &self.roles {
            if let Some(l) = &role.rate_limit {
                if l.max < 2 {
                    problems.push(
                        format!("roles.{name}.rate_limit.max"),
                        format!("{} is too few: one message of each window is kept for the digest; at least 2", l.max),
                    );
                }
                if l.per.is_zero() {
                    problems.push(
                        format!("roles.{name}.rate_limit.per"),
                        "0s is no window; give a duration such as 1m",
                    );
                }
            }
        }
        let f = &self.fatigue;
        if !(f.sample_execute_log.is_finite() && (0.0..=1.0).contains(&f.sample_execute_log)) {
            problems.push(
                "fatigue.sample_execute_log",
                format!("{} is not a share between 0 and 1", f.sample_execute_log),
            );
        }
        if f.review_every.is_zero() {
            problems.push("fatigue.review_every", "0s: give a duration such as 1m");
        }
        // Escalation chains: each next role defined, and no chain comes back to a role it left.
        for (name, role) in &self.roles {
            let Some(next) = &role.escalate_to else {
                continue;
            };
            let path = format!("roles.{name}.escalate_to");
            if !self.roles.contains_key(next) {
                self.check_role(next, &path, problems);
                continue;
            }
            let mut seen = vec![name.as_str()];
            let mut at = Some(next.as_str());
            while let Some(r) = at {
                if seen.contains(&r) {
                    seen.push(r);
                    problems.push(
                        path.clone(),
                        format!("the escalation chain loops: {}", seen.join(" → ")),
                    );
                    break;
                }
                seen.push(r);
                at = self.roles.get(r).and_then(|x| x.escalate_to.as_deref());
            }
        }
        for (name, re) in &self.redaction {
            if let Err(e) = regex::Regex::new(re) {
                problems.push(
                    format!("redaction.{name}"),
                    format!("{re:?} is not a valid regular expression: {e}"),
                );
            }
        }
    }

    fn check_role(&self, role: &str, path: &str, problems: &mut Problems) {
        if !self.roles.contains_key(role) {
            problems.push(
                path,
                format!(
                    "role {role:?} is not defined in [roles] (defined: {})",
                    list_or_none(self.roles.keys())
                ),
            );
        }
    }

    /// The rule version: a short hash of this normalised matrix.
    pub fn version(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).expect("a matrix spec always serializes");
        let digest = Sha256::digest(&json);
        let mut s = String::from("rv-");
        for b in &digest[..6] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(|s| s.as_str()).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

fn is_role_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Kafka's rule for topic names.
pub fn is_topic_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 249
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Checks each `[[levels]]` entry on its own, naming it by its index in the file (entries are
/// sorted by pattern later, and entries that did not read are missing), and sorts each entry's
/// roles. Returns the roles the entries name, with their paths, to be checked against `[roles]`.
fn check_levels(
    levels: &mut [(usize, LevelRule)],
    problems: &mut Problems,
) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut role_refs = Vec::new();
    for (i, rule) in levels.iter_mut() {
        let at = format!("levels[{i}]");
        check_pattern(&rule.pattern, &format!("{at}.pattern"), problems);
        if !seen.insert(rule.pattern.clone()) {
            problems.push(
                format!("{at}.pattern"),
                format!(
                    "pattern {:?} is listed twice; each pattern gets one level",
                    rule.pattern
                ),
            );
        }
        check_level_roles(rule, &at, problems, &mut role_refs);
        check_on_timeout(rule, &at, problems);
    }
    role_refs
}

/// Sorts an entry's roles, refuses an empty list where a human is needed, and adds each role
/// to `role_refs`.
fn check_level_roles(
    rule: &mut LevelRule,
    at: &str,
    problems: &mut Problems,
    role_refs: &mut Vec<(String, String)>,
) {
    let needs = rule.level.needs_human() || rule.templated.is_some_and(|t| t.needs_human());
    let Some(roles) = &mut rule.roles else {
        return;
    };
    roles.sort();
    roles.dedup();
    role_refs.extend(roles.iter().map(|r| (format!("{at}.roles"), r.clone())));
    if needs && roles.is_empty() {
        problems.push(
            format!("{at}.roles"),
            format!("{:?} needs a human, but no role is named", rule.pattern),
        );
    }
}

/// Refuses `fail_open` on an entry whose level (or templated level) is `hard_stop`.
fn check_on_timeout(rule: &LevelRule, at: &str, problems: &mut Problems) {
    let hard = rule.level == Level::HardStop || rule.templated == Some(Level::HardStop);
    if rule.on_timeout == Some(OnTimeout::FailOpen) && hard {
        problems.push(
            format!("{at}.on_timeout"),
            format!(
                "fail_open is not allowed for {:?}: its level is hard_stop, which always fails \
                 closed",
                rule.pattern
            ),
        );
    }
}

fn check_pattern(p: &str, path: &str, problems: &mut Problems) {
    if let Err(e) = Pattern::parse(p) {
        problems.push(path, e);
    }
}

fn check_unit(v: f64, path: &str, problems: &mut Problems) {
    if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
        problems.push(path, format!("{v} is not a confidence between 0 and 1"));
    }
}

fn check_positive(v: f64, path: &str, problems: &mut Problems) {
    if !(v.is_finite() && v > 0.0) {
        problems.push(path, format!("{v} must be a number above 0"));
    }
}

fn check_rules<'a>(
    rules: impl Iterator<Item = (&'a String, f64)>,
    path: &str,
    problems: &mut Problems,
    check_value: impl Fn(f64, &str, &mut Problems),
) {
    let mut seen = BTreeSet::new();
    for (i, (pattern, value)) in rules.enumerate() {
        let at = format!("{path}[{i}]");
        check_pattern(pattern, &format!("{at}.pattern"), problems);
        if !seen.insert(pattern.clone()) {
            problems.push(
                format!("{at}.pattern"),
                format!("pattern {pattern:?} is listed twice"),
            );
        }
        check_value(value, &at, problems);
    }
}

fn normalise_phrases(list: &mut Vec<String>, path: &str, problems: &mut Problems) {
    for (i, p) in list.iter_mut().enumerate() {
        let norm = p.split_whitespace().collect::<Vec<_>>().join(" ");
        if norm.is_empty() {
            problems.push(format!("{path}[{i}]"), "empty phrase");
        }
        *p = norm.to_ascii_lowercase();
    }
    list.sort();
    list.dedup();
}

fn read_map<T: serde::de::DeserializeOwned>(
    value: Option<&Value>,
    path: &str,
    problems: &mut Problems,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    match value {
        None => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if let Some(t) = problems.take(v, &join(path, k)) {
                    out.insert(k.clone(), t);
                }
            }
        }
        Some(other) => problems.push(
            path,
            format!("expected a table, found {}", crate::problems::kind(other)),
        ),
    }
    out
}

/// Reads every trigger; a trigger that fails to deserialize is recorded and replaced by its
/// defaults, so that validation still checks the rest of the file.
fn read_triggers(value: Option<&Value>, problems: &mut Problems) -> TriggersSpec {
    let empty = Value::Object(Default::default());
    let mut value = value.unwrap_or(&empty);
    if !value.is_object() {
        problems.push(
            "triggers",
            format!("expected a table, found {}", crate::problems::kind(value)),
        );
        value = &empty;
    }
    let names: Vec<&str> = Trigger::ALL.iter().map(|t| t.as_str()).collect();
    problems.unknown_keys(value, "triggers", &names);
    fn one<T: serde::de::DeserializeOwned>(
        value: &Value,
        name: &str,
        problems: &mut Problems,
    ) -> T {
        let empty = Value::Object(Default::default());
        let v = value.get(name).filter(|v| !v.is_null()).unwrap_or(&empty);
        problems
            .take(v, &format!("triggers.{name}"))
            .unwrap_or_else(|| serde_json::from_value(empty).expect("every field has a default"))
    }
    TriggersSpec {
        low_confidence: one(value, "low_confidence", problems),
        policy_keyword: one(value, "policy_keyword", problems),
        multiple_options: one(value, "multiple_options", problems),
        task_failure: one(value, "task_failure", problems),
        high_value_customer: one(value, "high_value_customer", problems),
        amount_limit: one(value, "amount_limit", problems),
        human_requested: one(value, "human_requested", problems),
        irreversible: one(value, "irreversible", problems),
        affects_others: one(value, "affects_others", problems),
        consecutive_low_confidence: one(value, "consecutive_low_confidence", problems),
        anomaly: one(value, "anomaly", problems),
        unknown_action: one(value, "unknown_action", problems),
    }
}

/// Reads the tiers; a bad one is recorded and replaced by its default.
fn read_tiers(value: Option<&Value>, problems: &mut Problems) -> TiersSpec {
    let empty = Value::Object(Default::default());
    let value = value.unwrap_or(&empty);
    problems.unknown_keys(value, "tiers", &["warm", "immediate"]);
    let mut tier = |name: &str, default: Duration| {
        let fallback = TierSpec {
            ack_within: default,
        };
        match value.get(name) {
            None | Some(Value::Null) => fallback,
            Some(v) => problems
                .take::<TierSpec>(v, &format!("tiers.{name}"))
                .unwrap_or(fallback),
        }
    };
    TiersSpec {
        warm: tier("warm", default_warm_ack()),
        immediate: tier("immediate", default_immediate_ack()),
    }
}
