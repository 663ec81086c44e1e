//! Opening the escalations of a newly decided action, or grouping it into an open one.

use super::{
    Effect, GroupMember, Grouped, HandOver, Joined, OpenAction, OpenEscalation, Opening,
    PartitionState,
};
use crate::event::{AgentAction, Escalation};
use crate::matrix::{Matrix, SessionState};
use std::collections::BTreeSet;

impl PartitionState {
    /// Opens the escalations of a newly decided action. An action already open or closed
    /// (the same event processed again) is left as it is. With `group_within_ms` > 0, an action
    /// whose every escalation matches an open one of the session (same role, the same reason —
    /// a shared trigger, or the same action type when no trigger fired —, opened within that
    /// time) joins it instead: the return value says where.
    pub fn open(
        &mut self,
        matrix: &Matrix,
        event: &AgentAction,
        before: SessionState,
        o: &Opening<'_>,
        effects: &mut Vec<Effect>,
    ) -> Option<Grouped> {
        let Opening {
            level,
            triggers,
            drill,
            escalations,
            group_within_ms,
            now_ms,
            quorum,
        } = *o;
        if escalations.is_empty() {
            return None;
        }
        let r = self.sessions.entry(event.session_id.clone()).or_default();
        // Seen before as a member: a replay.
        if let Some(a) = r
            .open
            .iter()
            .find(|a| a.members.iter().any(|m| m.action_id == event.action_id))
        {
            return Some(joined(a, escalations, false));
        }
        if group_within_ms > 0 && r.open.iter().all(|a| a.event.action_id != event.action_id) {
            // An action needing more approvers never rides on one needing fewer; a tool call is
            // never grouped (its arguments are what a person approves, and an approval of the
            // escalation shows the first action's only).
            let fits = |a: &OpenAction| {
                a.quorum == quorum
                    && event.tool_call.is_none()
                    && a.event.tool_call.is_none()
                    && fits_group(a, event, triggers, escalations, group_within_ms, now_ms)
            };
            if let Some(a) = r.open.iter_mut().find(|a| fits(a)) {
                a.members.push(GroupMember {
                    action_id: event.action_id.clone(),
                    agent_id: event.agent_id.clone(),
                    action_type: event.action_type.clone(),
                    level,
                    triggers: triggers.to_vec(),
                });
                let g = joined(a, escalations, true);
                self.dirty.insert(event.session_id.clone());
                return Some(g);
            }
        }
        let known = |id: &String| {
            r.closed.contains(id)
                || r.open
                    .iter()
                    .any(|a| a.escalations.iter().any(|e| &e.escalation_id == id))
        };
        if escalations.iter().any(|(_, e)| known(&e.escalation_id)) {
            return None;
        }
        let open = open_escalations(&mut self.deadlines, event, escalations, effects);
        r.open.push(OpenAction {
            event: event.clone(),
            before,
            level,
            fail_open: matrix.fails_open(&event.action_type, level),
            drill,
            escalations: open,
            triggers: triggers.to_vec(),
            members: Vec::new(),
            rule_version: matrix.version().to_string(),
            canary: None,
            approvals: Vec::new(),
            quorum,
        });
        self.dirty.insert(event.session_id.clone());
        None
    }

    /// Opens the hand-overs of a decided event ([`PartitionState::open`]) and turns the plan
    /// into effects: each escalation — carrying the identity of the open escalation it joined
    /// when grouped — then the verdict, whose escalation ids follow.
    pub fn hand_over(
        &mut self,
        matrix: &Matrix,
        event: &AgentAction,
        before: SessionState,
        h: HandOver<'_>,
        effects: &mut Vec<Effect>,
    ) {
        let crate::escalation::Plan {
            mut verdict,
            mut escalations,
            quorum,
        } = h.plan;
        let opening = Opening {
            level: verdict.level,
            triggers: h.triggers,
            drill: verdict.drill,
            escalations: &escalations,
            group_within_ms: h.group_within_ms,
            now_ms: h.now_ms,
            quorum,
        };
        let grouped = self.open(matrix, event, before, &opening, effects);
        if let Some(g) = grouped {
            join_group(&g, &mut escalations, effects);
            verdict.escalation_ids = escalations
                .iter()
                .map(|(_, e)| e.escalation_id.clone())
                .collect();
        }
        for (role, esc) in escalations {
            effects.push(Effect::Escalation(role, Box::new(esc)));
        }
        effects.push(Effect::Verdict(Box::new(verdict)));
    }
}

/// Where `escalations` went in the open action `a` (`new`: grouped just now).
fn joined(a: &OpenAction, escalations: &[(usize, Escalation)], new: bool) -> Grouped {
    Grouped {
        escalations: escalations
            .iter()
            .filter_map(|(_, x)| {
                a.escalations
                    .iter()
                    .find(|e| e.role == x.role)
                    .map(|e| Joined {
                        role: e.role.clone(),
                        escalation_id: e.escalation_id.clone(),
                        created_at_ms: e.created_at_ms,
                        deadline_ms: e.deadline_ms,
                        sequence: e.sequence,
                    })
            })
            .collect(),
        members: a.members.iter().map(|m| m.action_id.clone()).collect(),
        new,
    }
}

/// True when an action with these triggers and escalations may join the open action `a`:
/// the same reason, and every role still waiting there, first called within the window.
fn fits_group(
    a: &OpenAction,
    event: &AgentAction,
    triggers: &[String],
    escalations: &[(usize, Escalation)],
    group_within_ms: i64,
    now_ms: i64,
) -> bool {
    // The same reason: a shared trigger, or — when no trigger fired and the action
    // type's own level asked for a human — the same action type.
    let same_reason = a.triggers.iter().any(|t| triggers.contains(t))
        || (a.triggers.is_empty()
            && triggers.is_empty()
            && a.event.action_type == event.action_type);
    same_reason
        && escalations.iter().all(|(_, x)| {
            a.escalations.iter().any(|e| {
                e.role == x.role && !e.approved && now_ms - e.first_created_at_ms <= group_within_ms
            })
        })
}

/// The open escalations of a new action, each with its deadline indexed.
fn open_escalations(
    deadlines: &mut BTreeSet<(i64, String, String)>,
    event: &AgentAction,
    escalations: &[(usize, Escalation)],
    effects: &mut Vec<Effect>,
) -> Vec<OpenEscalation> {
    let mut open = Vec::with_capacity(escalations.len());
    for (_, e) in escalations {
        deadlines.insert((
            e.deadline_ms,
            event.session_id.clone(),
            e.escalation_id.clone(),
        ));
        effects.push(Effect::Opened(e.role.clone(), e.tier));
        open.push(OpenEscalation {
            escalation_id: e.escalation_id.clone(),
            previous_ids: Vec::new(),
            role: e.role.clone(),
            tier: e.tier,
            created_at_ms: e.created_at_ms,
            first_created_at_ms: e.created_at_ms,
            deadline_ms: Some(e.deadline_ms),
            approved: false,
            more: false,
            sequence: e.sequence,
            history: e.history.clone(),
        });
    }
    open
}

/// Gives each escalation of a grouped action the identity of the open escalation it joined.
fn join_group(g: &Grouped, escalations: &mut [(usize, Escalation)], effects: &mut Vec<Effect>) {
    for (_, esc) in escalations.iter_mut() {
        let Some(j) = g.escalations.iter().find(|j| j.role == esc.role) else {
            continue;
        };
        esc.escalation_id = j.escalation_id.clone();
        esc.created_at_ms = j.created_at_ms;
        esc.deadline_ms = j.deadline_ms.unwrap_or(esc.deadline_ms);
        esc.sequence = j.sequence;
        esc.grouped_action_ids = g.members.clone();
        if g.new {
            effects.push(Effect::Grouped(esc.role.clone()));
        }
    }
}
