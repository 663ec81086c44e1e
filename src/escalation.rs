//! From a decision to what handoff publishes: the verdict for the agent and one escalation per
//! role, each with a deterministic id so that re-processing an event (at-least-once delivery)
//! produces recognisable duplicates rather than new hand-overs.

use crate::context;
use crate::event::{AgentAction, Escalation, Level, Verdict, VerdictOutcome};
use crate::matrix::{Decision, Matrix};
use sha2::{Digest, Sha256};

/// `prefix` and 24 hex digits of SHA-256 over `parts` joined by 0x1f: the ids of escalations
/// (`esc-`) and digests (`dig-`), stable across runs, processes and versions.
pub fn hashed_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(prefix.len() + 24);
    s.push_str(prefix);
    for b in &digest[..12] {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `esc-` and 24 hex digits of SHA-256(action_id, 0x1f, role): stable across runs, processes
/// and versions.
pub fn escalation_id(action_id: &str, role: &str) -> String {
    hashed_id("esc-", &[action_id, role])
}

/// The id of the `sequence`-th hand-over of an action to a role: [`escalation_id`] for the
/// first (0), and the same hash with the sequence number appended after a move along a chain or
/// a redirect.
pub fn escalation_id_seq(action_id: &str, role: &str, sequence: i32) -> String {
    if sequence == 0 {
        return escalation_id(action_id, role);
    }
    escalation_id(&format!("{action_id}\x1f{sequence}"), role)
}

/// The first verdict's outcome for a level.
pub fn outcome_for(level: Level) -> VerdictOutcome {
    match level {
        Level::Execute => VerdictOutcome::Proceed,
        Level::ExecuteLog => VerdictOutcome::ProceedAndLog,
        Level::AskFirst => VerdictOutcome::AwaitHuman,
        Level::HardStop => VerdictOutcome::Stopped,
    }
}

/// What a verdict says beyond the action it is about.
#[derive(Debug, Clone)]
pub struct VerdictParts {
    /// Level.
    pub level: Level,
    /// Outcome.
    pub outcome: VerdictOutcome,
    /// Final, or a human must still act.
    pub is_final: bool,
    /// Trigger names.
    pub triggers: Vec<String>,
    /// Roles handed to.
    pub roles: Vec<String>,
    /// Their escalation ids.
    pub escalation_ids: Vec<String>,
    /// Drill traffic.
    pub drill: bool,
}

/// A verdict about `event`, stamped with the matrix's rule version, decided at `now_ms`; the
/// human fields (`decided_by`, `comment`, …) are left empty for the caller.
pub fn verdict(matrix: &Matrix, event: &AgentAction, parts: VerdictParts, now_ms: i64) -> Verdict {
    Verdict {
        action_id: event.action_id.clone(),
        session_id: event.session_id.clone(),
        agent_id: event.agent_id.clone(),
        action_type: event.action_type.clone(),
        level: parts.level,
        outcome: parts.outcome,
        is_final: parts.is_final,
        triggers: parts.triggers,
        roles: parts.roles,
        escalation_ids: parts.escalation_ids,
        rule_version: matrix.version().to_string(),
        decided_at_ms: now_ms,
        decided_by: None,
        comment: None,
        revised_output: None,
        redirect_role: None,
        drill: parts.drill,
        chosen_option: None,
        revised_arguments: None,
        receipt: None,
    }
}

/// What differs between hand-overs of one action: the first, and each move along a chain or
/// redirect.
#[derive(Debug, Clone)]
pub struct Handover {
    /// Its id ([`escalation_id_seq`]).
    pub escalation_id: String,
    /// The action's level.
    pub level: Level,
    /// Urgency.
    pub tier: crate::event::Tier,
    /// When it is made.
    pub created_at_ms: i64,
    /// Acknowledge by then.
    pub deadline_ms: i64,
    /// 0 first, then one more with each move.
    pub sequence: i32,
    /// Earlier hand-overs, oldest first.
    pub history: Vec<crate::event::HistoryEntry>,
    /// Drill traffic.
    pub drill: bool,
}

/// The escalation of `event` to the role with index `role` (its view of the context package):
/// the one constructor for first hand-overs and moves along a chain.
pub fn escalation(
    matrix: &Matrix,
    role: usize,
    event: &AgentAction,
    decision: &Decision,
    h: Handover,
) -> Escalation {
    let r = &matrix.roles()[role];
    Escalation {
        escalation_id: h.escalation_id,
        action_id: event.action_id.clone(),
        session_id: event.session_id.clone(),
        agent_id: event.agent_id.clone(),
        action_type: event.action_type.clone(),
        role: r.name.clone(),
        tier: h.tier,
        level: h.level,
        required_action: decision
            .required_action
            .unwrap_or(crate::event::RequiredAction::Approve),
        created_at_ms: h.created_at_ms,
        deadline_ms: h.deadline_ms,
        rule_version: matrix.version().to_string(),
        sequence: h.sequence,
        drill: h.drill,
        context: context::package(matrix, r, event, decision),
        history: h.history,
        grouped_action_ids: Vec::new(),
    }
}

/// Everything one event produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The verdict for the agent.
    pub verdict: Verdict,
    /// One escalation per role, with the index of the role in [`Matrix::roles`].
    pub escalations: Vec<(usize, Escalation)>,
    /// How many people must approve (four-eyes).
    pub quorum: crate::matrix::Quorum,
}

/// Builds the verdict and escalations for a decided event. `now_ms` comes from the caller's
/// clock (the event time offline, the wall clock in the stream, a virtual clock in drills).
pub fn plan(
    matrix: &Matrix,
    event: &AgentAction,
    decision: &Decision,
    now_ms: i64,
    drill: bool,
) -> Plan {
    let mut escalations = Vec::with_capacity(decision.roles.len());
    for i in decision.roles.iter() {
        let role = &matrix.roles()[i].name;
        let tier = decision.role_tier(i);
        let first = Handover {
            escalation_id: escalation_id(&event.action_id, role),
            level: decision.level,
            tier,
            created_at_ms: now_ms,
            deadline_ms: now_ms.saturating_add(matrix.ack_within_ms(tier)),
            sequence: 0,
            history: Vec::new(),
            drill,
        };
        escalations.push((i, escalation(matrix, i, event, decision, first)));
    }
    let outcome = outcome_for(decision.level);
    let verdict = verdict(
        matrix,
        event,
        VerdictParts {
            level: decision.level,
            outcome,
            is_final: !decision.level.needs_human(),
            triggers: decision.triggers.names(),
            roles: matrix.role_names(decision.roles),
            escalation_ids: escalations
                .iter()
                .map(|(_, e)| e.escalation_id.clone())
                .collect(),
            drill,
        },
        now_ms,
    );
    Plan {
        verdict,
        escalations,
        quorum: decision.quorum,
    }
}
