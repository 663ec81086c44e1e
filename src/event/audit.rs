//! What the inbox records on `handoff.audit` (JSON, key = escalation id): who viewed or answered
//! which escalation, when, and how. The inbox writes these; the audit pack and the notifier
//! read them.

use super::DecisionKind;
use serde::{Deserialize, Serialize};

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A person opened the detail page of an escalation.
    Viewed,
    /// A person answered it (the decision was delivered to `human.decisions`).
    Answered,
    /// An answer was refused (stale, or not allowed): nothing was sent.
    Refused,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The web inbox.
    Web,
    /// A button in a Slack message.
    Slack,
}

/// One line of the audit trail: who did what with which escalation, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Viewed, answered or refused.
    pub kind: AuditKind,
    /// Who.
    pub person: String,
    /// The role the escalation waited for.
    pub role: String,
    /// Which escalation.
    pub escalation_id: String,
    /// Its action.
    pub action_id: String,
    /// Its session.
    pub session_id: String,
    /// When (wall clock, ms).
    pub at_ms: i64,
    /// The answer given (answered, refused).
    #[serde(default)]
    pub decision: Option<DecisionKind>,
    /// When this person first opened its detail page in this inbox process; `None` when they
    /// answered without opening it (a Slack button, a stale tab).
    #[serde(default)]
    pub first_viewed_at_ms: Option<i64>,
    /// Web or Slack.
    pub via: Via,
    /// Why an answer was refused.
    #[serde(default)]
    pub reason: Option<String>,
    /// The rule version the escalation was opened with.
    #[serde(default)]
    pub rule_version: String,
    /// The escalation's tier when it was viewed or answered.
    #[serde(default)]
    pub tier: Option<super::Tier>,
    /// The escalation is a canary (never shown to the person; kept apart in the figures).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canary: bool,
}
