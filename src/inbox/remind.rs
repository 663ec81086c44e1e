//! Reminders before the deadline (`[notify.reminders]`): which open escalations are due one —
//! nobody acknowledged them, their tier's share of the time to acknowledge has passed, their
//! deadline has not, and they were not reminded yet — and the escalation record the notice
//! announces, rebuilt as the processor built it. Pure; the notifier asks every second.

use super::board::{Board, Item};
use crate::config::notify::Reminders;
use crate::escalation::{escalation, Handover};
use crate::event::Escalation;
use crate::matrix::Matrix;
use std::collections::HashSet;

/// When `item` is due its reminder under `shares`, if it is reminded at all.
pub fn remind_at(item: &Item, shares: &Reminders) -> Option<i64> {
    let deadline = item.deadline_ms?;
    let share = shares.share(item.tier)?;
    let window = (deadline - item.created_at_ms).max(0) as f64;
    Some(item.created_at_ms + (window * share) as i64)
}

/// The items of `board` due a reminder at `now_ms` that are not in `reminded`.
pub fn due<'a>(
    board: &'a Board,
    shares: &Reminders,
    reminded: &HashSet<String>,
    now_ms: i64,
) -> Vec<&'a Item> {
    board
        .items()
        .filter(|i| !reminded.contains(&i.escalation_id))
        .filter(|i| {
            let (Some(at), Some(deadline)) = (remind_at(i, shares), i.deadline_ms) else {
                return false;
            };
            at <= now_ms && now_ms < deadline
        })
        .collect()
}

/// The escalation record of `item` for its notice (`None` when the matrix no longer has its
/// role).
pub fn escalation_of(matrix: &Matrix, item: &Item) -> Option<Escalation> {
    let role = matrix.role_index(&item.role)?;
    let a = &item.action;
    let decision = matrix.evaluate(&a.event, &a.before);
    let h = Handover {
        escalation_id: item.escalation_id.clone(),
        level: a.level,
        tier: item.tier,
        created_at_ms: item.created_at_ms,
        deadline_ms: item.deadline_ms?,
        sequence: item.sequence,
        history: item.history.clone(),
        drill: a.drill,
    };
    let mut x = escalation(matrix, role, &a.event, &decision, h);
    if !a.rule_version.is_empty() {
        x.rule_version.clone_from(&a.rule_version);
    }
    Some(x)
}
