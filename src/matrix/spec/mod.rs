//! The escalation matrix as written in a file: serde structs (`deny_unknown_fields`, a named
//! default for every field), read piecewise so that every problem is reported at once, then
//! validated and normalised into a [`MatrixSpec`] whose hash is the rule version.

mod read;
mod sections;
mod triggers;
mod validate;

pub use sections::{
    ApprovalsSpec, FatigueSpec, LevelRule, OnTimeout, RoleSpec, TierSpec, TiersSpec,
};
pub use triggers::{default_outcome, Outcome, RawOutcome, TriggersSpec, WithoutConfidence};

use super::trigger::Trigger;
use crate::problems::Problems;
use read::{read_map, read_tiers, read_triggers};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use validate::check_levels;

/// The matrix shipped with handoff (`deploy/matrix.toml`), built into the binary.
pub const DEFAULT_MATRIX_TOML: &str = include_str!("../../../deploy/matrix.toml");

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
    /// The tool call (its name and arguments).
    ToolCall,
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

    /// The rule version: a short hash of this normalised matrix.
    pub fn version(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).expect("a matrix spec always serializes");
        format!("rv-{}", hex::encode(&Sha256::digest(&json)[..6]))
    }
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
