//! Per-session state of one input partition, and what a human's answer — or their silence —
//! does with it. Pure: no I/O and no clock (the caller passes `now_ms`), so the stream, the
//! tests and the game-day's virtual clock all run the same code.
//!
//! A partition's state is the matrix's streak counters per session, the open escalations with
//! their acknowledgement deadlines, and the recently closed escalation ids (so a decision that
//! arrives twice acts once). Every change marks its session dirty; the processor writes dirty
//! sessions to the compacted changelog topic (key = session id), and a newly assigned partition
//! is restored from it before any of its records are processed.

use crate::event::{
    AgentAction, DecisionKind, DigestItem, Escalation, HistoryEntry, Level, Tier, Verdict,
    VerdictOutcome,
};
use crate::matrix::{Matrix, Quorum, SessionState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};

mod canary;
pub use canary::disguise;
mod deadline;
mod decide;
mod open;
mod record;
pub use record::{ChangelogFormat, RecordError, BINARY_V1};

/// Closed escalation ids kept per session, to recognise late and repeated decisions.
pub const CLOSED_KEPT: usize = 32;
/// (input offset, state before it) pairs kept per session, so that an event processed again
/// after a crash is decided with the state it was first decided with.
pub const OFFSETS_KEPT: usize = 8;

/// One session's durable state: what the changelog holds under its key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    /// The matrix's per-session memory after the last event applied.
    pub streak: SessionState,
    /// Input offsets whose event changed `streak`, oldest first, with the state before each.
    pub applied: Vec<(i64, SessionState)>,
    /// Actions waiting for a human.
    pub open: Vec<OpenAction>,
    /// Recently closed escalation ids, oldest first.
    pub closed: Vec<String>,
    /// Items folded into a digest that is not delivered yet: (target, item).
    #[serde(default)]
    pub queued: Vec<(String, DigestItem)>,
    /// When the record last changed (the processor's clock).
    #[serde(default)]
    pub touched_ms: i64,
}

impl SessionRecord {
    /// True when nothing worth keeping is left (the changelog gets a tombstone).
    pub fn is_idle(&self) -> bool {
        self.open.is_empty()
            && self.closed.is_empty()
            && self.queued.is_empty()
            && self.streak.consecutive_low == 0
    }

    fn close_ids(&mut self, ids: impl IntoIterator<Item = String>) {
        self.closed.extend(ids);
        let extra = self.closed.len().saturating_sub(CLOSED_KEPT);
        self.closed.drain(..extra);
    }
}

/// An action waiting for one or more humans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAction {
    /// The event as received (the next role's context package is built from it).
    pub event: AgentAction,
    /// The session state the event was decided with (re-deciding it gives the same flags).
    pub before: SessionState,
    /// Its level.
    pub level: Level,
    /// Whether an exhausted chain lets it proceed.
    pub fail_open: bool,
    /// Drill traffic.
    pub drill: bool,
    /// One per role handed to.
    pub escalations: Vec<OpenEscalation>,
    /// Names of the triggers that fired (grouping matches on them).
    #[serde(default)]
    pub triggers: Vec<String>,
    /// Later actions of the session grouped into these escalations; decided with them.
    #[serde(default)]
    pub members: Vec<GroupMember>,
    /// The rule version it was opened with: its verdicts and moves carry it, whatever rules
    /// are in force later. Empty in records written before rule reloads existed (the current
    /// version is used).
    #[serde(default)]
    pub rule_version: String,
    /// A canary's expected answer (see [`crate::event::canary`]); none for real actions.
    #[serde(default)]
    pub canary: Option<crate::event::canary::Expect>,
    /// Everyone who approved it so far, in order: one entry per person. Layout 3.
    #[serde(default, deserialize_with = "crate::event::layout::added_in_3")]
    pub approvals: Vec<Approved>,
    /// How many people must approve it, and whether from distinct roles. Layout 3 (before it,
    /// one approval per role handed to, which is the default).
    #[serde(default, deserialize_with = "crate::event::layout::added_in_3")]
    pub quorum: Quorum,
}

/// One person's approval of an open action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approved {
    /// Who (`decided_by`).
    pub by: String,
    /// The role they answered for.
    pub role: String,
    /// When (the decision's time, or the processor's when it gave none).
    pub at_ms: i64,
    /// The key that signed the decision; `None` when unsigned decisions are allowed.
    pub via: Option<String>,
    /// SHA-256 (base64url) of the canonical JSON of the context package their role was shown.
    pub context_sha256: Option<String>,
    /// The option they chose, when they chose one (every approver must choose the same).
    pub chosen_option: Option<String>,
}

impl OpenAction {
    /// Stamps the version this action was opened with on `version` (an output built now).
    pub fn stamp(&self, version: &mut String) {
        if !self.rule_version.is_empty() && *version != self.rule_version {
            version.clone_from(&self.rule_version);
        }
    }
}

/// An action grouped into another's open escalations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMember {
    /// Its id.
    pub action_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Its type.
    pub action_type: String,
    /// Its level.
    pub level: Level,
    /// Its triggers.
    pub triggers: Vec<String>,
}

/// The open escalation of one role that a grouped action joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The role.
    pub role: String,
    /// The open escalation's id.
    pub escalation_id: String,
    /// When it was (last) handed over, ms.
    pub created_at_ms: i64,
    /// Its deadline, when one is running.
    pub deadline_ms: Option<i64>,
    /// Its place along the chain.
    pub sequence: i32,
}

/// What a decided action brings to its partition's state (see [`PartitionState::open`]).
#[derive(Debug, Clone, Copy)]
pub struct Opening<'a> {
    /// The level decided.
    pub level: Level,
    /// The triggers that fired (names).
    pub triggers: &'a [String],
    /// Drill traffic.
    pub drill: bool,
    /// The hand-overs planned: (role index, escalation).
    pub escalations: &'a [(usize, Escalation)],
    /// A new escalation within this of an open one of the session joins it (0: never).
    pub group_within_ms: i64,
    /// Now, ms.
    pub now_ms: i64,
    /// How many people must approve (four-eyes).
    pub quorum: Quorum,
}

/// What [`PartitionState::hand_over`] turns into effects: the plan and the context.
#[derive(Debug, Clone)]
pub struct HandOver<'a> {
    /// The triggers that fired (names; only needed for hand-overs).
    pub triggers: &'a [String],
    /// The verdict and the escalations planned.
    pub plan: crate::escalation::Plan,
    /// A new escalation within this of an open one of the session joins it (0: never).
    pub group_within_ms: i64,
    /// Now, ms.
    pub now_ms: i64,
}

/// Where an action's escalations went when it was grouped into an open action.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouped {
    /// Per role: the open escalation it joined.
    pub escalations: Vec<Joined>,
    /// Every action grouped there so far.
    pub members: Vec<String>,
    /// True when this action was grouped just now (false: seen before, a replay).
    pub new: bool,
}

/// One role's hand-over of an open action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenEscalation {
    /// Current id (changes when the escalation moves to the next role).
    pub escalation_id: String,
    /// Ids it had before moving on; a late answer to one of them still counts.
    pub previous_ids: Vec<String>,
    /// Current role.
    pub role: String,
    /// Current tier.
    pub tier: Tier,
    /// When the current role was called.
    pub created_at_ms: i64,
    /// When the first role was called (time-to-human is measured from here).
    pub first_created_at_ms: i64,
    /// Acknowledgement deadline; `None` once a human answered.
    pub deadline_ms: Option<i64>,
    /// Set when a human approved while another role's answer is still awaited.
    pub approved: bool,
    /// 0 for the first hand-over, +1 per move.
    pub sequence: i32,
    /// Where it went before.
    pub history: Vec<HistoryEntry>,
    /// Approved, and kept open for more people of its role (four-eyes): still pending, its
    /// deadline running. Layout 3.
    #[serde(default, deserialize_with = "crate::event::layout::added_in_3")]
    pub more: bool,
}

impl OpenEscalation {
    /// Still waiting for a person: not approved, or approved and kept open for more.
    pub fn is_pending(&self) -> bool {
        !self.approved || self.more
    }
}

/// What the processor must publish or count after a change of state.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A verdict for the agent.
    Verdict(Box<Verdict>),
    /// An escalation to the role with this index.
    Escalation(usize, Box<Escalation>),
    /// An escalation (role, tier) was opened: pending +1.
    Opened(String, Tier),
    /// An escalation (role, tier) stopped waiting: pending −1.
    Closed(String, Tier),
    /// A human answered an escalation of (role, tier). `waited_ms` is set for the first human
    /// response to it (time-to-human).
    Answered {
        /// Role answered for.
        role: String,
        /// Its tier.
        tier: Tier,
        /// The answer.
        decision: DecisionKind,
        /// Escalation → this answer, when it is the first.
        waited_ms: Option<i64>,
    },
    /// A deadline of (role, tier) passed without acknowledgement.
    DeadlineMissed {
        /// The role that let it pass.
        role: String,
        /// Its tier.
        tier: Tier,
        /// The action waiting.
        action_id: String,
    },
    /// A chain was exhausted: the action timed out (`fail_open` tells which way).
    TimedOut {
        /// True for `timed_out_proceed`.
        fail_open: bool,
        /// The action.
        action_id: String,
    },
    /// The hand-over to this role joined an open escalation.
    Grouped(String),
    /// A decided action goes to the review queue's digest.
    Review(Box<crate::event::DigestItem>),
    /// People approved an action: what its receipt binds, for the final verdicts that follow
    /// (the main action's first, then any grouped into it).
    Approval(Box<ApprovalFacts>),
    /// A canary's verdict (for the canaries topic, never the agents'), with its expected answer.
    CanaryVerdict(Box<Verdict>, crate::event::canary::Expect),
    /// A canary's escalation: sent like any other, counted only as a canary.
    CanaryEscalation(usize, Box<Escalation>),
    /// A human's first answer to a canary of `role`, `waited_ms` after it was handed over.
    CanaryAnswered {
        /// The role answering.
        role: String,
        /// Escalation → this answer.
        waited_ms: i64,
    },
}

/// What an approval receipt binds beyond the verdict: the call that may run and who approved.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalFacts {
    /// The action people answered (grouped actions' receipts carry no call).
    pub action_id: String,
    /// Its tool call as the agent proposed it (the verdict's revised arguments replace its
    /// arguments when set).
    pub tool_call: Option<crate::event::ToolCall>,
    /// Everyone who approved, in order.
    pub approvals: Vec<Approved>,
}

/// Why a decision did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// No such escalation in this partition's state.
    #[error("escalation {0} is unknown (never opened here, or expired)")]
    Unknown(String),
    /// It was already closed (decided, timed out, or this decision came twice).
    #[error("escalation {0} is already closed")]
    Closed(String),
    /// The same answer was already applied (e.g. a second acknowledgement).
    #[error("escalation {0} already has this answer")]
    Duplicate(String),
    /// The decision itself is wrong (names the field and value).
    #[error("{0}")]
    Invalid(String),
    /// It answers for a role the escalation no longer waits for (it moved on along the chain,
    /// or was redirected, before the answer came): the role it waits for now decides.
    #[error("field `role` has value {role:?}: escalation {id} waits for {now:?} now")]
    RoleMismatch {
        /// The escalation named.
        id: String,
        /// The decision's role.
        role: String,
        /// The role it waits for.
        now: String,
    },
}

impl Ignored {
    /// Metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Ignored::Unknown(_) => "unknown",
            Ignored::Closed(_) => "closed",
            Ignored::Duplicate(_) => "duplicate",
            Ignored::Invalid(_) => "invalid",
            Ignored::RoleMismatch { .. } => "role_mismatch",
        }
    }
}

/// The state of one input partition.
#[derive(Debug, Default, Clone)]
pub struct PartitionState {
    sessions: HashMap<String, SessionRecord>,
    /// (deadline, session, escalation id) of every escalation waiting for acknowledgement.
    deadlines: BTreeSet<(i64, String, String)>,
    dirty: HashSet<String>,
}

impl PartitionState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sessions held.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// A session's record, if any.
    pub fn session(&self, id: &str) -> Option<&SessionRecord> {
        self.sessions.get(id)
    }

    /// Every open escalation's (role, tier), canaries aside.
    pub fn pending(&self) -> Vec<(String, Tier)> {
        self.sessions
            .values()
            .flat_map(|s| s.open.iter())
            .filter(|a| a.canary.is_none())
            .flat_map(|a| a.escalations.iter())
            .filter(|e| e.is_pending())
            .map(|e| (e.role.clone(), e.tier))
            .collect()
    }

    /// The earliest deadline waiting.
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.iter().next().map(|d| d.0)
    }

    /// Loads one changelog record (the last one per key wins; `None` is a tombstone).
    pub fn restore(&mut self, session_id: &str, record: Option<SessionRecord>) {
        self.unindex(session_id);
        match record {
            Some(r) => {
                self.sessions.insert(session_id.to_string(), r);
                self.index(session_id);
            }
            None => {
                self.sessions.remove(session_id);
            }
        }
    }

    fn index(&mut self, session_id: &str) {
        if let Some(r) = self.sessions.get(session_id) {
            for a in &r.open {
                for e in &a.escalations {
                    if let Some(d) = e.deadline_ms {
                        self.deadlines
                            .insert((d, session_id.to_string(), e.escalation_id.clone()));
                    }
                }
            }
        }
    }

    fn unindex(&mut self, session_id: &str) {
        if let Some(r) = self.sessions.get(session_id) {
            for a in &r.open {
                for e in &a.escalations {
                    if let Some(d) = e.deadline_ms {
                        self.deadlines.remove(&(
                            d,
                            session_id.to_string(),
                            e.escalation_id.clone(),
                        ));
                    }
                }
            }
        }
    }

    /// Sessions changed since the last call, with their records (`None`: delete), stamped as
    /// changed at `now_ms`.
    pub fn take_dirty(&mut self, now_ms: i64) -> Vec<(String, Option<&SessionRecord>)> {
        let mut ids: Vec<String> = self.dirty.drain().collect();
        ids.sort_unstable();
        for id in &ids {
            if let Some(r) = self.sessions.get_mut(id) {
                r.touched_ms = now_ms;
            }
        }
        ids.into_iter()
            .map(|id| {
                let r = self.sessions.get(&id).filter(|r| !r.is_idle());
                (id, r)
            })
            .collect()
    }

    /// Forgets sessions with nothing open or queued whose record has not changed for
    /// `retention_ms` (their streaks and closed ids with them); each gets a tombstone at the
    /// next [`PartitionState::take_dirty`]. Returns how many.
    pub fn expire(&mut self, now_ms: i64, retention_ms: i64) -> usize {
        let old: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, r)| {
                r.open.is_empty() && r.queued.is_empty() && r.touched_ms + retention_ms < now_ms
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &old {
            self.sessions.remove(id);
            self.dirty.insert(id.clone());
        }
        old.len()
    }

    /// The session state to decide the event at `offset` with. An event applied before (the
    /// same offset seen again after a crash or a partition move) gets the state it was first
    /// decided with, and `apply` is then false: the state already includes it.
    pub fn state_for(&self, session_id: &str, offset: i64) -> (SessionState, bool) {
        let Some(r) = self.sessions.get(session_id) else {
            return (SessionState::default(), true);
        };
        let last = r.applied.last().map_or(i64::MIN, |a| a.0);
        if offset > last {
            return (r.streak, true);
        }
        // Seen before: its own entry, or — for an event that changed nothing — the state before
        // the next event that changed something, which equals the state after it.
        let s = r
            .applied
            .iter()
            .find(|(o, _)| *o >= offset)
            .map_or(r.streak, |(_, s)| *s);
        (s, false)
    }

    /// Records the matrix's new session state after the event at `offset`. A session that
    /// has no record and whose streak stays at zero gets none: nothing about it matters to a
    /// later decision (this keeps quiet sessions out of memory and out of the changelog).
    pub fn apply_streak(
        &mut self,
        session_id: &str,
        offset: i64,
        before: SessionState,
        after: SessionState,
    ) {
        let changed = before.consecutive_low != after.consecutive_low;
        let r = match self.sessions.get_mut(session_id) {
            Some(r) => r,
            None if changed => self.sessions.entry(session_id.to_string()).or_default(),
            None => return,
        };
        r.streak = after;
        if changed {
            r.applied.push((offset, before));
            let extra = r.applied.len().saturating_sub(OFFSETS_KEPT);
            r.applied.drain(..extra);
            self.dirty.insert(session_id.to_string());
        }
    }

    /// Queues an item for a digest in its session's durable state.
    pub fn queue(&mut self, session_id: &str, target: &str, item: DigestItem) {
        let r = self.sessions.entry(session_id.to_string()).or_default();
        let key = crate::fatigue::item_key(&item);
        if !r
            .queued
            .iter()
            .any(|(_, i)| crate::fatigue::item_key(i) == key)
        {
            r.queued.push((target.to_string(), item));
            self.dirty.insert(session_id.to_string());
        }
    }

    /// Drops an item whose digest was delivered.
    pub fn unqueue(&mut self, session_id: &str, key: &str) {
        if let Some(r) = self.sessions.get_mut(session_id) {
            let before = r.queued.len();
            r.queued.retain(|(_, i)| crate::fatigue::item_key(i) != key);
            if r.queued.len() != before {
                self.dirty.insert(session_id.to_string());
            }
        }
    }

    /// Every queued item: (target, item), oldest first.
    pub fn queued(&self) -> Vec<(String, DigestItem)> {
        let mut v: Vec<(String, DigestItem)> = self
            .sessions
            .values()
            .flat_map(|r| r.queued.iter().cloned())
            .collect();
        v.sort_by_key(|(_, i)| i.created_at_ms);
        v
    }

    /// Closes action `ai` of a session: its deadlines leave the index, its escalations stop
    /// waiting and their ids are kept as closed.
    fn close_action(&mut self, session: &str, ai: usize, effects: &mut Vec<Effect>) {
        let r = self.sessions.get_mut(session).expect("present");
        let action = r.open.remove(ai);
        let mut ids = Vec::new();
        for e in action.escalations {
            if let Some(dl) = e.deadline_ms {
                self.deadlines
                    .remove(&(dl, session.to_string(), e.escalation_id.clone()));
            }
            if e.is_pending() {
                effects.push(Effect::Closed(e.role.clone(), e.tier));
            }
            ids.extend(e.previous_ids);
            ids.push(e.escalation_id);
        }
        r.close_ids(ids);
        self.dirty.insert(session.to_string());
    }
}

/// The verdicts for an open action and every action grouped into it.
fn verdicts(
    matrix: &Matrix,
    action: &OpenAction,
    outcome: VerdictOutcome,
    now_ms: i64,
) -> Vec<Verdict> {
    let main = verdict(matrix, action, outcome, now_ms);
    let mut all = Vec::with_capacity(1 + action.members.len());
    for m in &action.members {
        let mut v = main.clone();
        v.action_id = m.action_id.clone();
        v.agent_id = m.agent_id.clone();
        v.action_type = m.action_type.clone();
        v.level = m.level;
        v.triggers = m.triggers.clone();
        all.push(v);
    }
    all.insert(0, main);
    all
}

/// A final (or redirect) verdict for an open action.
fn verdict(matrix: &Matrix, action: &OpenAction, outcome: VerdictOutcome, now_ms: i64) -> Verdict {
    let mut v = crate::escalation::verdict(
        matrix,
        &action.event,
        crate::escalation::VerdictParts {
            level: action.level,
            outcome,
            is_final: true,
            triggers: action.triggers.clone(),
            roles: action.escalations.iter().map(|x| x.role.clone()).collect(),
            escalation_ids: action
                .escalations
                .iter()
                .map(|x| x.escalation_id.clone())
                .collect(),
            drill: action.drill,
        },
        now_ms,
    );
    action.stamp(&mut v.rule_version);
    v
}
