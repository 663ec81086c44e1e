//! Fatigue control shared by the workers of one process: per-role rate limits over a sliding
//! window, and the digests that collect what the limits — and the review queue — fold. Pure
//! bookkeeping with the time passed in; the processor holds it behind a mutex.
//!
//! Nothing folded is dropped: a folded item is also queued in its session's durable state, and
//! leaves that queue only after the digest listing it is delivered ([`Digests::confirm`]). A
//! partition restored after a crash folds its queued items again, so an item can appear in two
//! digests, never in none.

use crate::event::DigestItem;
use crate::matrix::Matrix;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// The digest target of the review queue.
pub const REVIEW: &str = "review";

/// An item waiting for its digest, with the partition whose state holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    /// Input partition of the item's session.
    pub partition: i32,
    /// The item.
    pub item: DigestItem,
    /// Drill traffic.
    pub drill: bool,
}

/// The key of an item in its session's queue: the escalation id, or reason and action id.
pub fn item_key(item: &DigestItem) -> String {
    match &item.escalation_id {
        Some(id) => id.clone(),
        None => format!("{}:{}", item.reason.as_str(), item.action_id),
    }
}

/// A digest's id: `dig-` and 24 hex digits of a hash of the target and the item keys.
pub fn digest_id(target: &str, items: &[Folded]) -> String {
    let keys: Vec<String> = items.iter().map(|f| item_key(&f.item)).collect();
    let mut parts = vec![target];
    parts.extend(keys.iter().map(String::as_str));
    crate::escalation::hashed_id("dig-", &parts)
}

#[derive(Debug, Default)]
struct Pending {
    first_at_ms: i64,
    keys: HashSet<String>,
    items: Vec<Folded>,
}

/// A digest ready to send: its target, when its first item was folded, and the items.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDigest {
    /// Role name or [`REVIEW`].
    pub target: String,
    /// When the first item was folded.
    pub first_at_ms: i64,
    /// The items, in folding order.
    pub items: Vec<Folded>,
}

/// Rate limits and digests of one process.
#[derive(Debug, Default)]
pub struct Digests {
    /// Per limited role: (max messages, window in ms).
    limits: HashMap<String, (u32, i64)>,
    review_every_ms: i64,
    /// Per limited role: times of the messages sent within the last window.
    sent: HashMap<String, VecDeque<i64>>,
    pending: BTreeMap<String, Pending>,
    /// Per partition: (session, item key) of items whose digest was delivered.
    done: HashMap<i32, Vec<(String, String)>>,
}

impl Digests {
    /// Limits and windows from the matrix.
    pub fn new(matrix: &Matrix) -> Self {
        let spec = matrix.spec();
        Digests {
            limits: spec
                .roles
                .iter()
                .filter_map(|(name, r)| {
                    r.rate_limit
                        .as_ref()
                        .map(|l| (name.clone(), (l.max, l.per.as_millis() as i64)))
                })
                .collect(),
            review_every_ms: spec.fatigue.review_every.as_millis() as i64,
            ..Default::default()
        }
    }

    /// Takes the limits and windows of new rules; what was sent and folded carries over.
    pub fn reconfigure(&mut self, matrix: &Matrix) {
        let fresh = Digests::new(matrix);
        self.limits = fresh.limits;
        self.review_every_ms = fresh.review_every_ms;
    }

    /// True when one more escalation may go to `role` at `now_ms` (and counts it). A limited
    /// role gets at most `max - 1` escalations in any window, so that with the digest it gets at
    /// most `max` messages.
    pub fn admit(&mut self, role: &str, now_ms: i64) -> bool {
        let Some(&(max, per)) = self.limits.get(role) else {
            return true;
        };
        let log = self.sent.entry(role.to_string()).or_default();
        while log.front().is_some_and(|t| *t <= now_ms - per) {
            log.pop_front();
        }
        if (log.len() as u32) < max.saturating_sub(1) {
            log.push_back(now_ms);
            true
        } else {
            false
        }
    }

    /// Adds an item to `target`'s next digest (once per key).
    pub fn fold(&mut self, target: &str, folded: Folded, now_ms: i64) {
        let p = self.pending.entry(target.to_string()).or_default();
        if p.items.is_empty() {
            p.first_at_ms = now_ms;
        }
        if p.keys.insert(item_key(&folded.item)) {
            p.items.push(folded);
        }
    }

    /// The digests due at `now_ms`: a role's a window after its first folded item, the review
    /// queue's `review_every` after its first. Each counts as a message to its role.
    pub fn take_due(&mut self, now_ms: i64) -> Vec<DueDigest> {
        let mut due = Vec::new();
        for (target, p) in self.pending.iter_mut() {
            if p.items.is_empty() {
                continue;
            }
            let wait = match self.limits.get(target) {
                Some(&(_, per)) => per,
                None => self.review_every_ms,
            };
            if now_ms < p.first_at_ms + wait {
                continue;
            }
            p.keys.clear();
            due.push(DueDigest {
                target: target.clone(),
                first_at_ms: p.first_at_ms,
                items: std::mem::take(&mut p.items),
            });
            if self.limits.contains_key(target) {
                self.sent
                    .entry(target.clone())
                    .or_default()
                    .push_back(now_ms);
            }
        }
        due
    }

    /// Records that a digest listing `items` was delivered: their sessions may drop them.
    pub fn confirm(&mut self, items: &[Folded]) {
        for f in items {
            self.done
                .entry(f.partition)
                .or_default()
                .push((f.item.session_id.clone(), item_key(&f.item)));
        }
    }

    /// Items of `partition` whose digest was delivered, to drop from the sessions' queues.
    pub fn take_done(&mut self, partition: i32) -> Vec<(String, String)> {
        self.done.remove(&partition).unwrap_or_default()
    }
}

/// True when an `execute_log` action is picked for a spot check: a hash of its id below the
/// share, so the same action is always picked or never.
pub fn sampled(action_id: &str, share: f64) -> bool {
    if share <= 0.0 {
        return false;
    }
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(action_id.as_bytes());
    let x = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (x as f64 / u64::MAX as f64) < share
}

/// The digest item of an escalation folded by its role's rate limit: still open, answerable
/// and under its deadline.
pub fn rate_limited(x: &crate::event::Escalation, now_ms: i64) -> DigestItem {
    DigestItem {
        reason: crate::event::DigestReason::RateLimited,
        escalation_id: Some(x.escalation_id.clone()),
        action_id: x.action_id.clone(),
        session_id: x.session_id.clone(),
        agent_id: x.agent_id.clone(),
        action_type: x.action_type.clone(),
        level: x.level,
        tier: Some(x.tier),
        headline: x.context.headline.clone(),
        triggers: x.context.flags.iter().map(|f| f.trigger.clone()).collect(),
        created_at_ms: now_ms,
        deadline_ms: Some(x.deadline_ms),
    }
}

/// The digest item of a decided action sent to the review queue (deferred or sampled).
pub fn review_item(
    event: &crate::event::AgentAction,
    decision: &crate::matrix::Decision,
    reason: crate::event::DigestReason,
    now_ms: i64,
) -> DigestItem {
    DigestItem {
        reason,
        escalation_id: None,
        action_id: event.action_id.clone(),
        session_id: event.session_id.clone(),
        agent_id: event.agent_id.clone(),
        action_type: event.action_type.clone(),
        level: decision.level,
        tier: None,
        headline: crate::context::headline(event, decision),
        triggers: decision.triggers.names(),
        created_at_ms: now_ms,
        deadline_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DigestReason, Level};

    fn item(id: &str) -> Folded {
        Folded {
            partition: 1,
            drill: false,
            item: DigestItem {
                reason: DigestReason::RateLimited,
                escalation_id: Some(format!("esc-{id}")),
                action_id: format!("act-{id}"),
                session_id: "s".into(),
                agent_id: "a".into(),
                action_type: "refund.issue".into(),
                level: Level::AskFirst,
                tier: None,
                headline: "h".into(),
                triggers: vec![],
                created_at_ms: 0,
                deadline_ms: None,
            },
        }
    }

    fn limited(max: u32, per_ms: i64) -> Digests {
        Digests {
            limits: HashMap::from([("support".to_string(), (max, per_ms))]),
            review_every_ms: 1_000,
            ..Default::default()
        }
    }

    #[test]
    fn a_limited_role_gets_max_messages_per_window_digest_included() {
        let mut d = limited(5, 60_000);
        let admitted = (0..100).filter(|i| d.admit("support", *i)).count();
        assert_eq!(admitted, 4, "one slot is kept for the digest");
        assert!(d.admit("other", 0), "roles without a limit are never held");
        // The window slides: a minute after the first, its slot frees up, and only its.
        assert!(d.admit("support", 60_000));
        assert!(!d.admit("support", 60_000));
    }

    #[test]
    fn a_digest_is_due_a_window_after_its_first_item_and_lists_each_item_once() {
        let mut d = limited(5, 10_000);
        d.fold("support", item("1"), 100);
        d.fold("support", item("2"), 5_000);
        d.fold("support", item("1"), 6_000);
        assert!(d.take_due(10_099).is_empty());
        let due = d.take_due(10_100);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].first_at_ms, 100);
        assert_eq!(due[0].items.len(), 2);
        assert!(d.take_due(99_999).is_empty(), "taken once");
        d.confirm(&due[0].items);
        assert_eq!(
            d.take_done(1),
            vec![("s".into(), "esc-1".into()), ("s".into(), "esc-2".into())]
        );
        assert!(d.take_done(1).is_empty());
    }

    #[test]
    fn sampling_is_stable_and_near_its_share() {
        let picked = (0..10_000)
            .filter(|i| sampled(&format!("act-{i}"), 0.1))
            .count();
        assert!((800..1200).contains(&picked), "{picked}");
        assert_eq!(sampled("act-7", 0.1), sampled("act-7", 0.1));
        assert!(!sampled("act-7", 0.0));
    }
}
