//! The audit trail that proves the oversight: every action decided in a time range, joined from
//! what handoff and the inbox recorded — the verdicts, the escalations (what each role was
//! shown), the humans' decisions and the inbox's views — into one entry per action, written as
//! a hash-chained evidence pack ([`chain`]) and verified from the file alone.
//!
//! [`join`] is pure: records in, entries out. [`read`] fetches the records from the topics.

pub mod chain;
pub mod files;
pub mod read;

use crate::event::{
    AgentAction, DecisionKind, Escalation, HumanDecision, Level, Tier, Verdict, VerdictOutcome,
};
use crate::event::{AuditEntry, AuditKind};
use chain::sha256_hex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A trigger that fired, with what tripped it (as the first role was shown it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fired {
    /// Trigger name.
    pub trigger: String,
    /// Its detail; `None` when no escalation carried it (`execute_log` actions).
    pub detail: Option<String>,
}

/// One hand-over: to whom, and a hash of exactly what they were shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    /// The escalation.
    pub escalation_id: String,
    /// The role.
    pub role: String,
    /// Its tier.
    pub tier: Tier,
    /// 0 first, +1 per move along the chain or redirect.
    pub sequence: i32,
    /// When it was handed over, ms.
    pub created_at_ms: i64,
    /// Its acknowledgement deadline, ms.
    pub deadline_ms: i64,
    /// SHA-256 of the role's context package as published (canonical JSON).
    pub package_sha256: String,
    /// The rule version it was handed over with.
    pub rule_version: String,
}

/// One human answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    /// The escalation answered.
    pub escalation_id: String,
    /// The role answered for.
    pub role: String,
    /// Who.
    pub by: String,
    /// What.
    pub decision: DecisionKind,
    /// When they first opened its detail in the inbox, ms (`None`: never, as far as recorded).
    pub opened_at_ms: Option<i64>,
    /// When they answered, ms.
    pub answered_at_ms: i64,
    /// Their comment.
    pub comment: Option<String>,
    /// SHA-256 of a revision's text.
    pub revised_sha256: Option<String>,
    /// The role redirected to.
    pub redirect_role: Option<String>,
    /// The option chosen.
    pub chosen_option: Option<String>,
    /// SHA-256 of revised tool-call arguments, as the person sent them (absent when none; a
    /// pack written before tool calls has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revised_arguments_sha256: Option<String>,
}

/// Everything recorded about one action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The action (the decision's id).
    pub action_id: String,
    /// Its session.
    pub session_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Its type.
    pub action_type: String,
    /// When handoff first decided it, ms.
    pub decided_at_ms: i64,
    /// The rule version that decided it.
    pub rule_version: String,
    /// SHA-256 of the input event (canonical JSON of the decoded event), when it was read.
    pub event_sha256: Option<String>,
    /// The level decided.
    pub level: Level,
    /// The triggers that fired.
    pub triggers: Vec<Fired>,
    /// Every hand-over, in order.
    pub shown: Vec<Shown>,
    /// Every human answer, in order.
    pub answers: Vec<Answered>,
    /// The last outcome recorded (the final one when `is_final`).
    pub outcome: VerdictOutcome,
    /// A final verdict was recorded.
    pub is_final: bool,
    /// When the last verdict was made, ms.
    pub final_at_ms: i64,
    /// Who decided the last verdict (a human), if anyone.
    pub decided_by: Option<String>,
    /// Drill traffic.
    pub drill: bool,
    /// A canary (a synthetic escalation with a known answer).
    pub canary: bool,
}

/// What was read, for [`join`].
#[derive(Debug, Default)]
pub struct Records {
    /// Input events (hashed by action id).
    pub events: Vec<AgentAction>,
    /// Verdicts, in the order written.
    pub verdicts: Vec<Verdict>,
    /// Canaries' verdicts (from the canaries topic): their entries are marked `canary`.
    pub canaries: Vec<Verdict>,
    /// Escalations from the role topics.
    pub escalations: Vec<Escalation>,
    /// Human decisions.
    pub decisions: Vec<HumanDecision>,
    /// The inbox's views and answers.
    pub views: Vec<AuditEntry>,
}

/// SHA-256 of a value's canonical JSON (serde's field order, no spaces).
pub fn hash_json<T: Serialize>(v: &T) -> String {
    sha256_hex(&serde_json::to_vec(v).expect("records serialize"))
}

/// One entry per action first decided in `[from_ms, to_ms)` — the action's first verdict (the
/// level's own answer, [`VerdictOutcome::is_first`]) was made then — oldest first, with
/// everything recorded about it: its later verdicts, every hand-over of it (grouped into another
/// action's escalation too) and every answer to those hand-overs. An action whose first verdict
/// was not read (made before the range) has no entry, whatever was read of it later. Every
/// decision recorded for an action is listed once (a repeat of the same answer by the same
/// person is one).
pub fn join(r: &Records, from_ms: i64, to_ms: i64) -> Vec<Entry> {
    let all = || r.verdicts.iter().chain(&r.canaries);
    let mut first: HashMap<&str, i64> = HashMap::new();
    for v in all().filter(|v| v.outcome.is_first()) {
        let t = first.entry(v.action_id.as_str()).or_insert(v.decided_at_ms);
        *t = (*t).min(v.decided_at_ms);
    }
    let mut by_action: BTreeMap<(i64, &str), Vec<&Verdict>> = BTreeMap::new();
    for v in all() {
        match first.get(v.action_id.as_str()) {
            Some(&t) if (from_ms..to_ms).contains(&t) => {
                by_action.entry((t, &v.action_id)).or_default().push(v)
            }
            _ => {}
        }
    }
    let canaries: HashSet<&str> = r.canaries.iter().map(|v| v.action_id.as_str()).collect();
    let events: HashMap<&str, String> = r
        .events
        .iter()
        .map(|e| (e.action_id.as_str(), hash_json(e)))
        .collect();
    let mut shown: HashMap<&str, Vec<&Escalation>> = HashMap::new();
    for e in &r.escalations {
        let mut ids: Vec<&str> = vec![&e.action_id];
        ids.extend(e.grouped_action_ids.iter().map(String::as_str));
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            shown.entry(id).or_default().push(e);
        }
    }
    // An answer counts for the escalation it names only from the role that escalation was
    // handed to (the processor refuses any other: `role_mismatch`).
    let role_of: HashMap<&str, &str> = r
        .escalations
        .iter()
        .map(|e| (e.escalation_id.as_str(), e.role.as_str()))
        .collect();
    let mut answered: HashMap<&str, Vec<&HumanDecision>> = HashMap::new();
    for d in &r.decisions {
        if role_of
            .get(d.escalation_id.as_str())
            .is_some_and(|role| *role != d.role)
        {
            continue;
        }
        answered
            .entry(d.escalation_id.as_str())
            .or_default()
            .push(d);
    }
    let opened = opened(&r.views);
    by_action
        .into_iter()
        .map(|((_, id), mut vs)| {
            vs.sort_by_key(|v| (v.decided_at_ms, !v.outcome.is_first(), v.is_final));
            let escs = shown.remove(id).unwrap_or_default();
            let ids: HashSet<&str> = vs
                .iter()
                .flat_map(|v| v.escalation_ids.iter())
                .map(String::as_str)
                .chain(escs.iter().map(|e| e.escalation_id.as_str()))
                .collect();
            // Every answer to an escalation that covered it: a person answering an open
            // escalation answers for every action grouped into it by the time the processor
            // applies the answer, which may be after the person gave it.
            let decisions = ids
                .iter()
                .flat_map(|x| answered.get(x).into_iter().flatten().copied())
                .collect();
            let mut e = entry(&vs, events.get(id).cloned(), escs, decisions, &opened);
            e.canary = canaries.contains(id);
            e
        })
        .collect()
}

/// When each person first opened each escalation in the inbox.
fn opened(views: &[AuditEntry]) -> HashMap<(&str, &str), i64> {
    let mut opened: HashMap<(&str, &str), i64> = HashMap::new();
    for a in views.iter().filter(|a| a.kind == AuditKind::Viewed) {
        let t = opened
            .entry((a.person.as_str(), a.escalation_id.as_str()))
            .or_insert(a.at_ms);
        *t = (*t).min(a.at_ms);
    }
    opened
}

fn entry(
    vs: &[&Verdict],
    event_sha256: Option<String>,
    mut escs: Vec<&Escalation>,
    mut decisions: Vec<&HumanDecision>,
    opened: &HashMap<(&str, &str), i64>,
) -> Entry {
    let (first, last) = (vs[0], vs[vs.len() - 1]);
    escs.sort_by_key(|e| (e.created_at_ms, e.sequence, e.escalation_id.clone()));
    escs.dedup_by(|a, b| a.escalation_id == b.escalation_id);
    let details: HashMap<&str, &str> = escs
        .iter()
        .find(|e| e.action_id == first.action_id)
        .or(escs.first())
        .map(|e| {
            e.context
                .flags
                .iter()
                .map(|f| (f.trigger.as_str(), f.detail.as_str()))
                .collect()
        })
        .unwrap_or_default();
    decisions.sort_by_key(|d| (d.decided_at_ms, d.escalation_id.clone()));
    decisions.dedup_by(|a, b| {
        a.escalation_id == b.escalation_id
            && a.decision == b.decision
            && a.decided_by == b.decided_by
    });
    Entry {
        action_id: first.action_id.clone(),
        session_id: first.session_id.clone(),
        agent_id: first.agent_id.clone(),
        action_type: first.action_type.clone(),
        decided_at_ms: first.decided_at_ms,
        rule_version: first.rule_version.clone(),
        event_sha256,
        level: first.level,
        triggers: first
            .triggers
            .iter()
            .map(|t| Fired {
                trigger: t.clone(),
                detail: details.get(t.as_str()).map(|d| d.to_string()),
            })
            .collect(),
        shown: escs
            .iter()
            .map(|e| Shown {
                escalation_id: e.escalation_id.clone(),
                role: e.role.clone(),
                tier: e.tier,
                sequence: e.sequence,
                created_at_ms: e.created_at_ms,
                deadline_ms: e.deadline_ms,
                package_sha256: hash_json(&e.context),
                rule_version: e.rule_version.clone(),
            })
            .collect(),
        answers: decisions
            .into_iter()
            .map(|d| Answered {
                escalation_id: d.escalation_id.clone(),
                role: d.role.clone(),
                by: d.decided_by.clone(),
                decision: d.decision,
                opened_at_ms: opened
                    .get(&(d.decided_by.as_str(), d.escalation_id.as_str()))
                    .copied(),
                answered_at_ms: d.decided_at_ms,
                comment: d.comment.clone(),
                revised_sha256: d
                    .revised_output
                    .as_deref()
                    .map(|t| sha256_hex(t.as_bytes())),
                redirect_role: d.redirect_role.clone(),
                chosen_option: d.chosen_option.clone(),
                revised_arguments_sha256: d
                    .revised_arguments
                    .as_deref()
                    .map(|t| sha256_hex(t.as_bytes())),
            })
            .collect(),
        outcome: last.outcome,
        is_final: last.is_final,
        final_at_ms: last.decided_at_ms,
        decided_by: last.decided_by.clone(),
        drill: first.drill,
        canary: false,
    }
}

/// What a pack says about the oversight, in figures (the summary `audit export` prints).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Actions.
    pub actions: usize,
    /// Handed to a human.
    pub escalated: usize,
    /// Answered by a human.
    pub answered: usize,
    /// Answers given without the detail having been opened (as recorded by the inbox).
    pub answered_unopened: usize,
    /// Timed out (nobody answered in time).
    pub timed_out: usize,
    /// Decided by a verdict without a rule version.
    pub unversioned: usize,
    /// Still waiting for a final verdict.
    pub open: usize,
    /// Canaries among the actions (counted in the figures above too).
    pub canaries: usize,
}

/// The summary of `entries`.
pub fn summary(entries: &[Entry]) -> Summary {
    let mut s = Summary {
        actions: entries.len(),
        ..Summary::default()
    };
    for e in entries {
        s.escalated += usize::from(!e.shown.is_empty());
        s.answered += usize::from(!e.answers.is_empty());
        s.answered_unopened += e
            .answers
            .iter()
            .filter(|a| a.opened_at_ms.is_none())
            .count();
        s.timed_out += usize::from(matches!(
            e.outcome,
            VerdictOutcome::TimedOutBlocked | VerdictOutcome::TimedOutProceed
        ));
        s.unversioned += usize::from(
            e.rule_version.is_empty() || e.shown.iter().any(|x| x.rule_version.is_empty()),
        );
        s.open += usize::from(!e.is_final);
        s.canaries += usize::from(e.canary);
    }
    s
}
