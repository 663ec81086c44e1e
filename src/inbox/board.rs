//! The inbox's view of the open escalations, rebuilt from the changelog (`handoff.state`, one
//! record per session: its open actions and their escalations) and kept by following it. Pure:
//! the follower feeds it records, the pages read it.
//!
//! An escalation is listed while the processor holds it open and unapproved (or approved by
//! fewer people than its rule asks for). When a session's
//! record no longer has it, it is gone for everyone — closed (a final verdict, whoever answered)
//! or moved on along its chain — and the board remembers which, so that a late answer gets a
//! clear message.

use crate::event::{HistoryEntry, Tier};
use crate::state::{OpenAction, SessionRecord};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Gone escalations remembered for late answers, at most.
const GONE_KEPT: usize = 100_000;

/// One open escalation, as a person sees it in the list.
#[derive(Debug, Clone)]
pub struct Item {
    /// Its id (what an answer names).
    pub escalation_id: String,
    /// Its session.
    pub session_id: String,
    /// The role it waits for.
    pub role: String,
    /// Urgency.
    pub tier: Tier,
    /// When this role was called.
    pub created_at_ms: i64,
    /// Acknowledge by then; `None` once someone acknowledged it.
    pub deadline_ms: Option<i64>,
    /// 0 for the first hand-over, +1 per move along the chain or redirect.
    pub sequence: i32,
    /// Earlier hand-overs, oldest first.
    pub history: Vec<HistoryEntry>,
    /// It reached its role folded into a digest (the role's rate limit).
    pub in_digest: bool,
    /// The action, with the event and the actions grouped into it.
    pub action: Arc<OpenAction>,
}

impl Item {
    /// The action's id.
    pub fn action_id(&self) -> &str {
        &self.action.event.action_id
    }

    /// The action's type.
    pub fn action_type(&self) -> &str {
        &self.action.event.action_type
    }

    /// Acknowledged: someone is on it, its deadline stopped.
    pub fn acknowledged(&self) -> bool {
        self.deadline_ms.is_none()
    }
}

/// What became of an escalation no longer open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gone {
    /// Its action has a final verdict, or it was approved while another role still decides.
    Closed {
        /// The role it waited for.
        role: String,
    },
    /// It moved to another role (a missed deadline or a redirect).
    Moved {
        /// The role it waited for.
        role: String,
        /// The role it waits for now.
        to: String,
        /// Its id there.
        escalation_id: String,
    },
}

impl Gone {
    /// The role it waited for.
    pub fn role(&self) -> &str {
        match self {
            Gone::Closed { role } | Gone::Moved { role, .. } => role,
        }
    }
}

/// Looking an escalation up.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// Open.
    Open(&'a Item),
    /// No longer open.
    Gone(&'a Gone),
    /// Never seen (or forgotten).
    Unknown,
}

/// Which items a list shows, beyond the person's roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// One of the person's roles.
    pub role: Option<String>,
    /// One tier.
    pub tier: Option<Tier>,
    /// One action type.
    pub action_type: Option<String>,
}

/// The open escalations of every session.
#[derive(Debug, Default)]
pub struct Board {
    items: HashMap<String, Item>,
    by_session: HashMap<String, Vec<String>>,
    gone: HashMap<String, Gone>,
    gone_order: VecDeque<String>,
    generation: u64,
}

impl Board {
    /// An empty board.
    pub fn new() -> Board {
        Board::default()
    }

    /// Takes a session's changelog record (`None`: a tombstone, nothing open).
    pub fn apply(&mut self, session: &str, record: Option<SessionRecord>) {
        let fresh = record.map(|r| items_of(session, r)).unwrap_or_default();
        let before = self.by_session.remove(session).unwrap_or_default();
        // Live pages reload on a change they would show, not on every state write.
        let mut was: Vec<Look> = before
            .iter()
            .filter_map(|id| self.items.get(id))
            .map(look)
            .collect();
        let mut now: Vec<Look> = fresh.iter().map(look).collect();
        was.sort();
        now.sort();
        let changed = was != now;
        for id in before {
            if fresh.iter().any(|i| i.escalation_id == id) {
                continue;
            }
            let Some(old) = self.items.remove(&id) else {
                continue;
            };
            let moved = fresh.iter().find(|i| {
                i.action_id() == old.action_id()
                    && i.sequence > old.sequence
                    && i.history.last().is_some_and(|h| h.role == old.role)
            });
            let gone = match moved {
                Some(m) => Gone::Moved {
                    role: old.role,
                    to: m.role.clone(),
                    escalation_id: m.escalation_id.clone(),
                },
                None => Gone::Closed { role: old.role },
            };
            self.remember(id, gone);
        }
        let ids: Vec<String> = fresh.iter().map(|i| i.escalation_id.clone()).collect();
        for item in fresh {
            self.items.insert(item.escalation_id.clone(), item);
        }
        if !ids.is_empty() {
            self.by_session.insert(session.to_string(), ids);
        }
        if changed {
            self.generation += 1;
        }
    }

    fn remember(&mut self, id: String, gone: Gone) {
        if self.gone.insert(id.clone(), gone).is_none() {
            self.gone_order.push_back(id);
        }
        while self.gone_order.len() > GONE_KEPT {
            if let Some(old) = self.gone_order.pop_front() {
                self.gone.remove(&old);
            }
        }
    }

    /// An escalation by id.
    pub fn get(&self, id: &str) -> Lookup<'_> {
        if let Some(i) = self.items.get(id) {
            return Lookup::Open(i);
        }
        match self.gone.get(id) {
            Some(g) => Lookup::Gone(g),
            None => Lookup::Unknown,
        }
    }

    /// True while the escalation is open.
    pub fn is_open(&self, id: &str) -> bool {
        self.items.contains_key(id)
    }

    /// Every open escalation, all roles, in no order.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values()
    }

    /// Open escalations, all roles.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is open.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Grows with every change: live pages reload when it moves.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The open escalations of `roles` that pass `filter`: the most urgent first — the
    /// earliest deadline, immediate before warm at the same deadline, acknowledged ones last.
    pub fn list<'a>(&'a self, roles: &[String], filter: &Filter) -> Vec<&'a Item> {
        let mut v: Vec<&Item> = self
            .items
            .values()
            .filter(|i| roles.contains(&i.role))
            .filter(|i| filter.role.as_ref().is_none_or(|r| *r == i.role))
            .filter(|i| filter.tier.is_none_or(|t| t == i.tier))
            .filter(|i| {
                filter
                    .action_type
                    .as_deref()
                    .is_none_or(|t| t == i.action_type())
            })
            .collect();
        v.sort_by(|a, b| {
            let key = |i: &Item| {
                (
                    i.deadline_ms.is_none(),
                    i.deadline_ms.unwrap_or(i64::MAX),
                    i.tier != Tier::Immediate,
                    i.created_at_ms,
                )
            };
            key(a)
                .cmp(&key(b))
                .then_with(|| a.escalation_id.cmp(&b.escalation_id))
        });
        v
    }

    /// The action types open for `roles`, sorted (the filter's choices).
    pub fn action_types(&self, roles: &[String]) -> Vec<String> {
        let mut v: Vec<String> = self
            .items
            .values()
            .filter(|i| roles.contains(&i.role))
            .map(|i| i.action_type().to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// What a list shows of an item.
type Look = (String, Option<i64>, Tier, i32, bool, usize);

fn look(i: &Item) -> Look {
    (
        i.escalation_id.clone(),
        i.deadline_ms,
        i.tier,
        i.sequence,
        i.in_digest,
        i.action.members.len(),
    )
}

/// The open escalations of a session's record: unapproved, or approved and kept open for more
/// approvers (four-eyes: its deadline still runs).
fn items_of(session: &str, record: SessionRecord) -> Vec<Item> {
    let digested: Vec<String> = record
        .queued
        .iter()
        .filter_map(|(_, item)| item.escalation_id.clone())
        .collect();
    let mut out = Vec::new();
    for action in record.open {
        let action = Arc::new(action);
        for e in action.escalations.iter().filter(|e| e.is_pending()) {
            out.push(Item {
                escalation_id: e.escalation_id.clone(),
                session_id: session.to_string(),
                role: e.role.clone(),
                tier: e.tier,
                created_at_ms: e.created_at_ms,
                deadline_ms: e.deadline_ms,
                sequence: e.sequence,
                history: e.history.clone(),
                in_digest: digested.contains(&e.escalation_id),
                action: action.clone(),
            });
        }
    }
    out
}
