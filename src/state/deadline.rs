//! Deadlines that pass without acknowledgement: the escalation moves on, or the action times
//! out.

use super::{verdicts, Effect, OpenAction, OpenEscalation, PartitionState};
use crate::escalation::escalation_id_seq;
use crate::event::{HistoryEntry, Tier, VerdictOutcome};
use crate::matrix::Matrix;

impl PartitionState {
    /// Fires every deadline due at `now_ms`: the escalation moves to the next role of its chain,
    /// or — when the chain is exhausted — the action times out (fail closed unless its rule
    /// fails open). Each deadline fires once: it leaves the index as it fires.
    pub fn fire_due(&mut self, matrix: &Matrix, now_ms: i64, effects: &mut Vec<Effect>) -> usize {
        let mut fired = 0;
        while let Some(first) = self.deadlines.first().cloned() {
            if first.0 > now_ms {
                break;
            }
            self.deadlines.pop_first();
            let (due, session, id) = first;
            let Some(r) = self.sessions.get(&session) else {
                continue;
            };
            let Some((ai, ei)) = r.open.iter().enumerate().find_map(|(ai, a)| {
                a.escalations
                    .iter()
                    .position(|e| e.escalation_id == id && e.deadline_ms == Some(due))
                    .map(|ei| (ai, ei))
            }) else {
                continue;
            };
            fired += 1;
            let canary = self.canary_at(&session, ai);
            let from = effects.len();
            self.missed(matrix, session, ai, ei, now_ms, effects);
            if let Some(expect) = canary {
                super::disguise(effects, from, expect);
            }
        }
        fired
    }

    /// Escalation `ei` of action `ai` missed its deadline: it moves to the next role of its
    /// chain, or the action times out.
    fn missed(
        &mut self,
        matrix: &Matrix,
        session: String,
        ai: usize,
        ei: usize,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        self.dirty.insert(session.clone());
        let r = self.sessions.get_mut(&session).expect("present");
        let action = &mut r.open[ai];
        let esc = &action.escalations[ei];
        effects.push(Effect::DeadlineMissed {
            role: esc.role.clone(),
            tier: esc.tier,
            action_id: action.event.action_id.clone(),
        });
        let within = matrix.ack_within_ms(esc.tier);
        let next = matrix
            .role_index(&esc.role)
            .and_then(|i| matrix.roles()[i].escalate_to);
        if let Some(to) = next {
            let reason = format!(
                "no acknowledgement from {} within {}",
                esc.role,
                humantime::format_duration(std::time::Duration::from_millis(within as u64))
            );
            let esc = move_on(matrix, action, ei, to, now_ms, &reason, effects);
            let deadline = esc.deadline_ms.expect("just set");
            let new_id = esc.escalation_id.clone();
            self.deadlines.insert((deadline, session, new_id));
        } else {
            time_out(matrix, action, ei, now_ms, effects);
            self.close_action(&session, ai, effects);
        }
    }
}

/// The verdicts and effect of an action whose chain is exhausted at escalation `ei`.
fn time_out(
    matrix: &Matrix,
    action: &OpenAction,
    ei: usize,
    now_ms: i64,
    effects: &mut Vec<Effect>,
) {
    let fail_open = action.fail_open;
    let outcome = if fail_open {
        VerdictOutcome::TimedOutProceed
    } else {
        VerdictOutcome::TimedOutBlocked
    };
    let comment = format!(
        "no acknowledgement from {} (last of its chain) within its deadline",
        action.escalations[ei].role
    );
    for mut v in verdicts(matrix, action, outcome, now_ms) {
        v.comment = Some(comment.clone());
        effects.push(Effect::Verdict(Box::new(v)));
    }
    effects.push(Effect::TimedOut {
        fail_open,
        action_id: action.event.action_id.clone(),
    });
}

/// Moves escalation `ei` of `action` to role `to`: a new escalation with the full history,
/// tier `immediate`, a new deadline. Returns the moved escalation.
pub(super) fn move_on<'a>(
    matrix: &Matrix,
    action: &'a mut OpenAction,
    ei: usize,
    to: usize,
    now_ms: i64,
    reason: &str,
    effects: &mut Vec<Effect>,
) -> &'a OpenEscalation {
    let role = &matrix.roles()[to];
    let decision = matrix.evaluate(&action.event, &action.before);
    let mut version = matrix.version().to_string();
    action.stamp(&mut version);
    let esc = &mut action.escalations[ei];
    effects.push(Effect::Closed(esc.role.clone(), esc.tier));
    esc.history.push(HistoryEntry {
        role: esc.role.clone(),
        tier: esc.tier,
        escalated_at_ms: esc.created_at_ms,
        reason: reason.to_string(),
    });
    esc.previous_ids.push(esc.escalation_id.clone());
    esc.sequence += 1;
    esc.escalation_id = escalation_id_seq(&action.event.action_id, &role.name, esc.sequence);
    esc.role = role.name.clone();
    esc.tier = Tier::Immediate;
    esc.created_at_ms = now_ms;
    esc.deadline_ms = Some(now_ms.saturating_add(matrix.ack_within_ms(Tier::Immediate)));
    esc.approved = false;
    esc.more = false;
    effects.push(Effect::Opened(esc.role.clone(), esc.tier));
    let moved = crate::escalation::Handover {
        escalation_id: esc.escalation_id.clone(),
        level: action.level,
        tier: esc.tier,
        created_at_ms: now_ms,
        deadline_ms: esc.deadline_ms.expect("set above"),
        sequence: esc.sequence,
        history: esc.history.clone(),
        drill: action.drill,
    };
    let mut x = crate::escalation::escalation(matrix, to, &action.event, &decision, moved);
    x.rule_version = version;
    effects.push(Effect::Escalation(to, Box::new(x)));
    esc
}
