//! What a human's answer does with an open escalation.

use super::deadline::move_on;
use super::{verdicts, Effect, Ignored, OpenEscalation, PartitionState};
use crate::event::{DecisionKind, HumanDecision, VerdictOutcome};
use crate::matrix::Matrix;

impl PartitionState {
    /// Applies a human decision. Returns what to publish and count, or why it did nothing.
    /// An answer to a canary yields canary effects ([`super::disguise`]).
    pub fn decide(
        &mut self,
        matrix: &Matrix,
        d: &HumanDecision,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), Ignored> {
        let canary = self
            .find_escalation(d)
            .ok()
            .and_then(|(ai, _)| self.canary_at(&d.session_id, ai));
        let from = effects.len();
        let result = self.apply_decision(matrix, d, now_ms, effects);
        if let Some(expect) = canary {
            super::disguise(effects, from, expect);
        }
        result
    }

    fn apply_decision(
        &mut self,
        matrix: &Matrix,
        d: &HumanDecision,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), Ignored> {
        let (ai, ei) = self.find_escalation(d)?;
        let waits_for = &self.sessions[&d.session_id].open[ai].escalations[ei].role;
        if *waits_for != d.role {
            return Err(Ignored::RoleMismatch {
                id: d.escalation_id.clone(),
                role: d.role.clone(),
                now: waits_for.clone(),
            });
        }
        // Check the decision before changing anything.
        let redirect_to = check(matrix, d)?;
        let event = &self.sessions[&d.session_id].open[ai].event;
        check_option(&event.options, d)?;
        let revised_arguments = check_arguments(event, d)?;
        let main_action = event.action_id.clone();
        let esc = &self.sessions[&d.session_id].open[ai].escalations[ei];
        if repeated(esc, d.decision) {
            return Err(Ignored::Duplicate(d.escalation_id.clone()));
        }
        effects.push(answered(esc, d, now_ms));
        let session = d.session_id.clone();
        if let Some(dl) = esc.deadline_ms {
            self.deadlines
                .remove(&(dl, session.clone(), esc.escalation_id.clone()));
        }
        self.dirty.insert(session.clone());
        let r = self.sessions.get_mut(&session).expect("present");
        let action = &mut r.open[ai];
        let esc = &mut action.escalations[ei];
        esc.deadline_ms = None;
        let outcome = match d.decision {
            DecisionKind::Acknowledge => return Ok(()),
            DecisionKind::Approve => {
                esc.approved = true;
                effects.push(Effect::Closed(esc.role.clone(), esc.tier));
                if action.escalations.iter().any(|e| !e.approved) {
                    // Another role's answer is still awaited.
                    return Ok(());
                }
                VerdictOutcome::Approved
            }
            DecisionKind::Reject => VerdictOutcome::Rejected,
            DecisionKind::Revise => VerdictOutcome::Revised,
            DecisionKind::Redirect => {
                let to = redirect_to.expect("checked");
                self.redirect(matrix, d, ai, ei, to, now_ms, effects);
                return Ok(());
            }
        };
        for mut v in verdicts(matrix, &r.open[ai], outcome, now_ms) {
            v.decided_by = Some(d.decided_by.clone());
            v.comment = d.comment.clone();
            v.revised_output = d.revised_output.clone();
            v.chosen_option = d.chosen_option.clone();
            // The arguments are the answered action's call's, not a grouped action's.
            if v.action_id == main_action {
                v.revised_arguments = revised_arguments.clone();
            }
            effects.push(Effect::Verdict(Box::new(v)));
        }
        self.close_action(&session, ai, effects);
        Ok(())
    }

    /// The (action, escalation) indexes of the open escalation a decision answers, or why
    /// there is none.
    fn find_escalation(&self, d: &HumanDecision) -> Result<(usize, usize), Ignored> {
        let id = &d.escalation_id;
        let Some(r) = self.sessions.get(&d.session_id) else {
            return Err(Ignored::Unknown(id.clone()));
        };
        let found = r.open.iter().enumerate().find_map(|(ai, a)| {
            a.escalations
                .iter()
                .position(|e| &e.escalation_id == id || e.previous_ids.contains(id))
                .map(|ei| (ai, ei))
        });
        found.ok_or_else(|| {
            if r.closed.contains(id) {
                Ignored::Closed(id.clone())
            } else {
                Ignored::Unknown(id.clone())
            }
        })
    }

    /// Moves escalation `ei` of action `ai` to role `to` as `d` asks, with a non-final
    /// `redirected` verdict for the action and every action grouped into it.
    #[allow(clippy::too_many_arguments)] // each is a distinct input of the move
    fn redirect(
        &mut self,
        matrix: &Matrix,
        d: &HumanDecision,
        ai: usize,
        ei: usize,
        to: usize,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        let r = self.sessions.get_mut(&d.session_id).expect("present");
        let action = &mut r.open[ai];
        let reason = format!(
            "redirected by {} to {}",
            d.decided_by,
            matrix.roles()[to].name
        );
        let esc = move_on(matrix, action, ei, to, now_ms, &reason, effects);
        let deadline = esc.deadline_ms.expect("just set");
        let id = esc.escalation_id.clone();
        for mut v in verdicts(matrix, action, VerdictOutcome::Redirected, now_ms) {
            v.is_final = false;
            v.decided_by = Some(d.decided_by.clone());
            v.comment = d.comment.clone();
            v.redirect_role = d.redirect_role.clone();
            v.escalation_ids = vec![id.clone()];
            effects.push(Effect::Verdict(Box::new(v)));
        }
        self.deadlines.insert((deadline, d.session_id.clone(), id));
    }
}

/// Checks a decision's own fields; for a redirect, returns the index of the role it names.
fn check(matrix: &Matrix, d: &HumanDecision) -> Result<Option<usize>, Ignored> {
    let id = &d.escalation_id;
    match d.decision {
        DecisionKind::Revise if d.revised_output.is_none() && d.revised_arguments.is_none() => {
            Err(Ignored::Invalid(format!(
                "decision `revise` for {id} needs `revised_output` or `revised_arguments`, \
                 found neither"
            )))
        }
        DecisionKind::Redirect => match d.redirect_role.as_deref() {
            Some(role) => match matrix.role_index(role) {
                Some(i) => Ok(Some(i)),
                None => Err(Ignored::Invalid(format!(
                    "`redirect_role` = {role:?} is not a role of the matrix (roles: {})",
                    matrix
                        .roles()
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            },
            None => Err(Ignored::Invalid(format!(
                "decision `redirect` for {id} needs `redirect_role`, found null"
            ))),
        },
        _ => Ok(None),
    }
}

/// A chosen option must come with `approve` and be one of the action's options.
fn check_option(options: &[String], d: &HumanDecision) -> Result<(), Ignored> {
    let Some(chosen) = d.chosen_option.as_deref() else {
        return Ok(());
    };
    let id = &d.escalation_id;
    if d.decision != DecisionKind::Approve {
        return Err(Ignored::Invalid(format!(
            "`chosen_option` for {id} comes with decision `approve`, found `{}`",
            d.decision.as_str()
        )));
    }
    if !options.iter().any(|o| o == chosen) {
        return Err(Ignored::Invalid(format!(
            "`chosen_option` = {chosen:?} for {id} is not one of the action's {} option(s)",
            options.len()
        )));
    }
    Ok(())
}

/// Revised arguments come with `revise`, for an action with a tool call, and must be arguments
/// its tool accepts; returns them in canonical form.
fn check_arguments(
    event: &crate::event::AgentAction,
    d: &HumanDecision,
) -> Result<Option<String>, Ignored> {
    let Some(revised) = d.revised_arguments.as_deref() else {
        return Ok(None);
    };
    let id = &d.escalation_id;
    if d.decision != DecisionKind::Revise {
        return Err(Ignored::Invalid(format!(
            "`revised_arguments` for {id} come with decision `revise`, found `{}`",
            d.decision.as_str()
        )));
    }
    let Some(call) = &event.tool_call else {
        return Err(Ignored::Invalid(format!(
            "`revised_arguments` for {id}: the action has no tool call to revise"
        )));
    };
    call.revise(revised)
        .map(Some)
        .map_err(|why| Ignored::Invalid(format!("`revised_arguments` for {id}: {why}")))
}

/// True when the escalation already has this answer.
fn repeated(esc: &OpenEscalation, decision: DecisionKind) -> bool {
    match decision {
        DecisionKind::Acknowledge => esc.deadline_ms.is_none(),
        DecisionKind::Approve => esc.approved,
        _ => false,
    }
}

/// The `Answered` effect of a decision; the first human response carries the time waited.
fn answered(esc: &OpenEscalation, d: &HumanDecision, now_ms: i64) -> Effect {
    let first = esc.deadline_ms.is_some();
    Effect::Answered {
        role: esc.role.clone(),
        tier: esc.tier,
        decision: d.decision,
        waited_ms: first.then(|| {
            let at = if d.decided_at_ms > 0 {
                d.decided_at_ms
            } else {
                now_ms
            };
            (at - esc.first_created_at_ms).max(0)
        }),
    }
}
