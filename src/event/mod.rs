//! The event model: what agents send ([`AgentAction`]), what handoff answers ([`Verdict`],
//! [`Escalation`]) and what humans decide ([`HumanDecision`]). Field names are those of the
//! Avro schemas in `schemas/`; the JSON form uses the same names.

mod audit;
pub mod canary;
mod codec;
pub mod layout;
mod tool_call;
mod validate;
mod whole;
pub mod wire;

pub use audit::{AuditEntry, AuditKind, Via};
pub use codec::{Codec, CodecError, SchemaKind, DEFAULT_MAX_RECORD_BYTES, MAX_RECORD_BYTES_LIMIT};
pub use tool_call::ToolCall;
pub use validate::{is_action_type, EventError, EventLimits};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One action an AI agent proposes or has taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentAction {
    /// Unique id of this action.
    pub action_id: String,
    /// Conversation or task session the action belongs to.
    pub session_id: String,
    /// The agent that produced the action.
    pub agent_id: String,
    /// When the agent produced the event, milliseconds since the Unix epoch.
    #[serde(deserialize_with = "whole::int64")]
    pub timestamp_ms: i64,
    /// Dotted action type, e.g. `email.send`.
    pub action_type: String,
    /// The agent's confidence, 0..1; `None` when its framework gives none (what that means is
    /// the matrix's: `low_confidence.without_confidence`).
    #[serde(default, deserialize_with = "layout::confidence")]
    pub confidence: Option<f64>,
    /// What was asked of the agent.
    pub request: String,
    /// What the agent did or proposes to do.
    pub summary: String,
    /// The agent's draft or output.
    #[serde(default)]
    pub output: Option<String>,
    /// Set when the output comes from an approved template.
    #[serde(default)]
    pub template_id: Option<String>,
    /// Alternatives the agent considered valid.
    #[serde(default)]
    pub options: Vec<String>,
    /// Proposed, completed or failed.
    #[serde(default)]
    pub status: ActionStatus,
    /// Error text when the action failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Money involved.
    #[serde(default)]
    pub amount: Option<f64>,
    /// ISO 4217 currency of `amount`.
    #[serde(default)]
    pub currency: Option<String>,
    /// The customer the action concerns.
    #[serde(default)]
    pub customer: Option<Customer>,
    /// False when the action cannot be undone.
    pub reversible: bool,
    /// True when the action affects people other than the requester.
    pub affects_others: bool,
    /// The latest words of the human the agent talks with.
    #[serde(default)]
    pub user_message: Option<String>,
    /// Free context (market data, system name, anomaly markers). Ordered, so output never
    /// depends on map order.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The tool call behind the action, when an agent framework made one.
    #[serde(default, deserialize_with = "layout::added_in_2")]
    pub tool_call: Option<ToolCall>,
}

/// Lifecycle state of an agent action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// The agent wants to do it.
    #[default]
    Proposed,
    /// The agent has done it.
    Completed,
    /// The agent tried and failed.
    Failed,
}

/// The customer an action concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// Customer id (never used as a metric label).
    pub id: String,
    /// Commercial tier.
    #[serde(default)]
    pub tier: CustomerTier,
    /// Complaints on record; three or more is a retention risk in the default matrix.
    #[serde(default, deserialize_with = "whole::int32")]
    pub prior_complaints: i32,
}

/// Commercial tier of a customer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CustomerTier {
    /// Ordinary customer.
    #[default]
    Standard,
    /// Paying extra.
    Premium,
    /// Very important.
    Vip,
}

/// How far an agent may go alone, from least to most restrictive. `Ord` follows strictness,
/// so "the strictest level wins" is `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Run alone.
    Execute,
    /// Run alone, then report.
    ExecuteLog,
    /// A human approves before it runs.
    AskFirst,
    /// Must not run; a human decides.
    HardStop,
}

impl Level {
    /// All levels, least restrictive first.
    pub const ALL: [Level; 4] = [
        Level::Execute,
        Level::ExecuteLog,
        Level::AskFirst,
        Level::HardStop,
    ];

    /// The name used in configs, outputs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Execute => "execute",
            Level::ExecuteLog => "execute_log",
            Level::AskFirst => "ask_first",
            Level::HardStop => "hard_stop",
        }
    }

    /// The level named `name` (as [`Level::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == name)
    }

    /// True when a human must act before the action may run.
    pub fn needs_human(self) -> bool {
        self >= Level::AskFirst
    }
}

/// Urgency of a hand-over. `Ord` follows urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Context summarised, normal queue.
    Warm,
    /// Priority: someone now.
    Immediate,
}

impl Tier {
    /// The name used in configs, outputs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Warm => "warm",
            Tier::Immediate => "immediate",
        }
    }
}

/// What the agent must do after this verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictOutcome {
    /// Go ahead (level `execute`).
    Proceed,
    /// Go ahead and report (level `execute_log`).
    ProceedAndLog,
    /// Wait: a human must approve (level `ask_first`).
    AwaitHuman,
    /// Do not run: a human decides (level `hard_stop`).
    Stopped,
    /// A human approved.
    Approved,
    /// A human rejected.
    Rejected,
    /// A human revised the output; use `revised_output`.
    Revised,
    /// A human handed the action to another role.
    Redirected,
    /// Nobody acknowledged in time; the action is blocked (fail closed).
    TimedOutBlocked,
    /// Nobody acknowledged in time; the rule allowed the action to proceed (fail open).
    TimedOutProceed,
}

impl VerdictOutcome {
    /// The name used in outputs (as the schema spells it).
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictOutcome::Proceed => "proceed",
            VerdictOutcome::ProceedAndLog => "proceed_and_log",
            VerdictOutcome::AwaitHuman => "await_human",
            VerdictOutcome::Stopped => "stopped",
            VerdictOutcome::Approved => "approved",
            VerdictOutcome::Rejected => "rejected",
            VerdictOutcome::Revised => "revised",
            VerdictOutcome::Redirected => "redirected",
            VerdictOutcome::TimedOutBlocked => "timed_out_blocked",
            VerdictOutcome::TimedOutProceed => "timed_out_proceed",
        }
    }

    /// True for the outcome of a first verdict (the level's own answer, before any person or
    /// deadline), false for one that follows it.
    pub fn is_first(self) -> bool {
        matches!(
            self,
            VerdictOutcome::Proceed
                | VerdictOutcome::ProceedAndLog
                | VerdictOutcome::AwaitHuman
                | VerdictOutcome::Stopped
        )
    }
}

/// handoff's answer to the agent about one action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// The action this verdict is about.
    pub action_id: String,
    /// Its session.
    pub session_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Its action type.
    pub action_type: String,
    /// Level decided by the matrix.
    pub level: Level,
    /// What the agent must do now.
    pub outcome: VerdictOutcome,
    /// True when no further verdict follows.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Names of the triggers that fired.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// Roles the action was handed to.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Ids of the escalations opened for it.
    #[serde(default)]
    pub escalation_ids: Vec<String>,
    /// Hash of the matrix that decided.
    pub rule_version: String,
    /// When the verdict was made.
    pub decided_at_ms: i64,
    /// The human who decided.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// The human's comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// The human's revision of the output.
    #[serde(default)]
    pub revised_output: Option<String>,
    /// The role the action was redirected to.
    #[serde(default)]
    pub redirect_role: Option<String>,
    /// Game-day drill traffic.
    #[serde(default)]
    pub drill: bool,
    /// The option a human chose (run that one).
    #[serde(default)]
    pub chosen_option: Option<String>,
    /// The tool call's arguments as a human revised them (call the tool with these): a JSON
    /// object in canonical form (RFC 8785).
    #[serde(default)]
    pub revised_arguments: Option<String>,
    /// The approval receipt (a compact JWS, [`crate::trust::receipt`]) on a final verdict that
    /// lets the action run after people approved it. Version 3.
    #[serde(default)]
    pub receipt: Option<String>,
}

/// What the human receiving an escalation must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequiredAction {
    /// Approve or reject the proposed action.
    Approve,
    /// Choose between the agent's options.
    Choose,
    /// Diagnose a failure.
    Troubleshoot,
    /// Decide what happens: the agent must not act.
    Decide,
    /// Look after the fact (`execute_log`).
    Review,
}

impl RequiredAction {
    /// The name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            RequiredAction::Approve => "approve",
            RequiredAction::Choose => "choose",
            RequiredAction::Troubleshoot => "troubleshoot",
            RequiredAction::Decide => "decide",
            RequiredAction::Review => "review",
        }
    }
}

/// One reason an action was escalated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagOut {
    /// Trigger name (fixed set, see `matrix::Trigger`).
    pub trigger: String,
    /// Human-readable detail: the value that tripped it and the limit.
    pub detail: String,
}

/// Everything a human needs to take over, cut to one role's view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextPackage {
    /// The role view this package was cut to.
    pub view: String,
    /// One line: level, action, reasons.
    pub headline: String,
    /// What was asked (None when hidden from this role).
    #[serde(default)]
    pub request: Option<String>,
    /// What the agent did.
    #[serde(default)]
    pub summary: Option<String>,
    /// The agent's draft.
    #[serde(default)]
    pub output: Option<String>,
    /// The end user's latest words.
    #[serde(default)]
    pub user_message: Option<String>,
    /// The agent's confidence; `None` when it gave none.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Every trigger that fired, with detail.
    pub flags: Vec<FlagOut>,
    /// The agent's options.
    #[serde(default)]
    pub options: Vec<String>,
    /// The failure, as diagnosis.
    #[serde(default)]
    pub error: Option<String>,
    /// Money involved.
    #[serde(default)]
    pub amount: Option<f64>,
    /// Its currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// The customer.
    #[serde(default)]
    pub customer: Option<Customer>,
    /// Three or more prior complaints (by default).
    #[serde(default)]
    pub retention_risk: bool,
    /// The attributes this role may see.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The agent's event time.
    pub event_timestamp_ms: i64,
    /// The tool call behind the action, as the agent sent it.
    #[serde(default)]
    pub tool_call: Option<ToolCall>,
}

/// An earlier hand-over of the same action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// Role it went to.
    pub role: String,
    /// Its tier.
    pub tier: Tier,
    /// When.
    pub escalated_at_ms: i64,
    /// Why it moved on.
    pub reason: String,
}

/// One hand-over to one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Deterministic id: hash(action_id, role).
    pub escalation_id: String,
    /// The action.
    pub action_id: String,
    /// Its session.
    pub session_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Its action type.
    pub action_type: String,
    /// The owning role.
    pub role: String,
    /// Urgency.
    pub tier: Tier,
    /// Level decided.
    pub level: Level,
    /// What the human must do.
    pub required_action: RequiredAction,
    /// When the escalation was made.
    pub created_at_ms: i64,
    /// Acknowledge by then.
    pub deadline_ms: i64,
    /// Hash of the matrix that decided.
    pub rule_version: String,
    /// 0 first, then grows with each re-escalation.
    #[serde(default)]
    pub sequence: i32,
    /// Game-day drill traffic.
    #[serde(default)]
    pub drill: bool,
    /// The role's view of the context package.
    pub context: ContextPackage,
    /// Earlier hand-overs, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// Later actions grouped into this open escalation.
    #[serde(default)]
    pub grouped_action_ids: Vec<String>,
}

/// What a human decided about an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Let the action run as proposed.
    Approve,
    /// Do not run it.
    Reject,
    /// Run it with `revised_output` and/or, for a tool call, `revised_arguments`.
    Revise,
    /// Hand it to `redirect_role`.
    Redirect,
    /// Seen; working on it (stops the deadline).
    Acknowledge,
}

impl DecisionKind {
    /// Every kind, in schema order.
    pub const ALL: [DecisionKind; 5] = [
        DecisionKind::Approve,
        DecisionKind::Reject,
        DecisionKind::Revise,
        DecisionKind::Redirect,
        DecisionKind::Acknowledge,
    ];

    /// The schema's name, also the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Approve => "approve",
            DecisionKind::Reject => "reject",
            DecisionKind::Revise => "revise",
            DecisionKind::Redirect => "redirect",
            DecisionKind::Acknowledge => "acknowledge",
        }
    }
}

/// A human's answer to an escalation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanDecision {
    /// The escalation answered.
    pub escalation_id: String,
    /// Its action.
    pub action_id: String,
    /// Its session.
    pub session_id: String,
    /// The role that answered.
    pub role: String,
    /// Who decided.
    pub decided_by: String,
    /// What was decided.
    pub decision: DecisionKind,
    /// Free comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Required with `revise`.
    #[serde(default)]
    pub revised_output: Option<String>,
    /// Required with `redirect`.
    #[serde(default)]
    pub redirect_role: Option<String>,
    /// When.
    pub decided_at_ms: i64,
    /// Game-day drill traffic.
    #[serde(default)]
    pub drill: bool,
    /// With `approve`: the option chosen, one of the action's `options` verbatim.
    #[serde(default)]
    pub chosen_option: Option<String>,
    /// With `revise`, for an action with a tool call: its arguments as edited, a JSON object as
    /// text.
    #[serde(default)]
    pub revised_arguments: Option<String>,
}

/// Why an item is in a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestReason {
    /// An escalation beyond its role's rate limit.
    RateLimited,
    /// A low-stakes event a rule sent to the review queue.
    Deferred,
    /// An `execute_log` action picked for a spot check.
    Sampled,
}

impl DigestReason {
    /// The schema's name, also the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestReason::RateLimited => "rate_limited",
            DigestReason::Deferred => "deferred",
            DigestReason::Sampled => "sampled",
        }
    }
}

/// One entry of a digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestItem {
    /// Why it is here.
    pub reason: DigestReason,
    /// The folded escalation, for `rate_limited`.
    pub escalation_id: Option<String>,
    /// The action.
    pub action_id: String,
    /// Its session.
    pub session_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Its type.
    pub action_type: String,
    /// Its level.
    pub level: Level,
    /// The escalation's tier, for `rate_limited`.
    pub tier: Option<Tier>,
    /// One line: level, action, reasons.
    pub headline: String,
    /// Triggers that fired.
    pub triggers: Vec<String>,
    /// When the item was folded.
    pub created_at_ms: i64,
    /// The escalation's acknowledgement deadline, for `rate_limited`.
    pub deadline_ms: Option<i64>,
}

/// Many items in one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Digest {
    /// `dig-` + hash of the target and item ids.
    pub digest_id: String,
    /// Role name, or `review`.
    pub target: String,
    /// When the first item was folded.
    pub first_at_ms: i64,
    /// When sent.
    pub sent_at_ms: i64,
    /// Rule version.
    pub rule_version: String,
    /// Drill traffic.
    pub drill: bool,
    /// The items.
    pub items: Vec<DigestItem>,
}
