//! What a human's answer does with an open escalation.

use super::deadline::move_on;
use super::{
    verdicts, ApprovalFacts, Approved, Effect, Ignored, OpenAction, OpenEscalation, PartitionState,
};
use crate::event::{DecisionKind, HumanDecision, VerdictOutcome};
use crate::matrix::Matrix;

impl PartitionState {
    /// Applies a human decision. Returns what to publish and count, or why it did nothing.
    /// An answer to a canary yields canary effects ([`super::disguise`]). The decision is
    /// taken as unsigned; see [`PartitionState::decide_signed`].
    pub fn decide(
        &mut self,
        matrix: &Matrix,
        d: &HumanDecision,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), Ignored> {
        self.decide_signed(matrix, d, None, now_ms, effects)
    }

    /// [`PartitionState::decide`] for a decision whose signature the key `via` vouched for
    /// (`None`: unsigned, where that is allowed): approvals and receipts name it.
    pub fn decide_signed(
        &mut self,
        matrix: &Matrix,
        d: &HumanDecision,
        via: Option<&str>,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), Ignored> {
        let canary = self
            .find_escalation(d)
            .ok()
            .and_then(|(ai, _)| self.canary_at(&d.session_id, ai));
        let from = effects.len();
        let result = self.apply_decision(matrix, d, via, now_ms, effects);
        if let Some(expect) = canary {
            super::disguise(effects, from, expect);
        }
        result
    }

    fn apply_decision(
        &mut self,
        matrix: &Matrix,
        d: &HumanDecision,
        via: Option<&str>,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), Ignored> {
        let (ai, ei) = self.find_escalation(d)?;
        let action = &self.sessions[&d.session_id].open[ai];
        let esc = &action.escalations[ei];
        if esc.role != d.role {
            return Err(Ignored::RoleMismatch {
                id: d.escalation_id.clone(),
                role: d.role.clone(),
                now: esc.role.clone(),
            });
        }
        // Check the decision before changing anything.
        let redirect_to = check(matrix, d)?;
        check_option(&action.event.options, d)?;
        let revised_arguments = check_arguments(&action.event, d)?;
        check_approver(action, esc, d)?;
        let four_eyes = action.quorum.approvals > 1;
        if d.decision == DecisionKind::Acknowledge && esc.deadline_ms.is_none() {
            return Err(Ignored::Duplicate(d.escalation_id.clone()));
        }
        // An approval counts; so does a revision (its author approved what they wrote), once.
        let approves = match d.decision {
            DecisionKind::Approve => true,
            DecisionKind::Revise => !action.approvals.iter().any(|a| a.by == d.decided_by),
            _ => false,
        };
        let mut approval = approves.then(|| approval_by(matrix, action, d, via, now_ms));
        let main_action = action.event.action_id.clone();
        let first =
            esc.deadline_ms.is_some() && !action.approvals.iter().any(|a| a.role == esc.role);
        let tier = esc.tier;
        effects.push(answered(esc, d, first, now_ms));
        let session = d.session_id.clone();
        self.dirty.insert(session.clone());
        let outcome = match d.decision {
            DecisionKind::Approve => {
                let approval = approval.take().expect("an approval");
                let restart_ms = now_ms.saturating_add(matrix.ack_within_ms(tier));
                if !self.approve(&session, (ai, ei), approval, restart_ms, effects) {
                    return Ok(());
                }
                VerdictOutcome::Approved
            }
            DecisionKind::Acknowledge => {
                // Under four-eyes the deadline is the whole's: someone looking does not stop it.
                if !four_eyes {
                    self.stop_clock(&session, ai, ei);
                }
                return Ok(());
            }
            DecisionKind::Reject => VerdictOutcome::Rejected,
            DecisionKind::Revise => VerdictOutcome::Revised,
            DecisionKind::Redirect => {
                self.stop_clock(&session, ai, ei);
                let to = redirect_to.expect("checked");
                self.redirect(matrix, d, ai, ei, to, now_ms, effects);
                return Ok(());
            }
        };
        self.stop_clock(&session, ai, ei);
        let r = self.sessions.get_mut(&session).expect("present");
        let action = &mut r.open[ai];
        if outcome == VerdictOutcome::Revised {
            action.approvals.extend(approval);
        }
        if matches!(outcome, VerdictOutcome::Approved | VerdictOutcome::Revised) {
            effects.push(Effect::Approval(Box::new(ApprovalFacts {
                action_id: main_action.clone(),
                tool_call: action.event.tool_call.clone(),
                approvals: action.approvals.clone(),
            })));
        }
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

    /// Records `approval` on escalation `ei` of action `ai`. True when the action has all the
    /// approvals it needs (every role handed to, and its quorum). Otherwise the escalation
    /// stays open — pending, its deadline running — while more people of its role may still
    /// count, or while no other role is left to answer (the deadline is the whole's: when it
    /// passes, the chain moves on or the action times out, as for any escalation).
    fn approve(
        &mut self,
        session: &str,
        (ai, ei): (usize, usize),
        approval: Approved,
        restart_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> bool {
        let action = &mut self.sessions.get_mut(session).expect("present").open[ai];
        let was_pending = action.escalations[ei].is_pending();
        action.approvals.push(approval);
        action.escalations[ei].approved = true;
        let done = quorum_met(action);
        let others_wait = action
            .escalations
            .iter()
            .enumerate()
            .any(|(i, e)| i != ei && e.is_pending());
        let keep_open = !done && (wants_more_from_role(action) || !others_wait);
        let esc = &mut action.escalations[ei];
        esc.more = keep_open;
        match (was_pending, keep_open) {
            (true, false) => effects.push(Effect::Closed(esc.role.clone(), esc.tier)),
            (false, true) => effects.push(Effect::Opened(esc.role.clone(), esc.tier)),
            _ => {}
        }
        if !keep_open {
            self.stop_clock(session, ai, ei);
        } else if esc.deadline_ms.is_none() {
            // Waiting again (more people of this role count now): the clock runs again.
            esc.deadline_ms = Some(restart_ms);
            let id = esc.escalation_id.clone();
            self.deadlines.insert((restart_ms, session.to_string(), id));
        }
        done
    }

    /// A human answered escalation `ei` of action `ai`: its deadline no longer runs.
    fn stop_clock(&mut self, session: &str, ai: usize, ei: usize) {
        let esc = &mut self.sessions.get_mut(session).expect("present").open[ai].escalations[ei];
        if let Some(dl) = esc.deadline_ms.take() {
            self.deadlines
                .remove(&(dl, session.to_string(), esc.escalation_id.clone()));
        }
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

/// Under a quorum of several, an approval counts once per person (a second click by the same
/// person is refused, whichever role they answer for); a role whose approval is in counts
/// again only while the quorum still wants more people of it. (With one approval per role, as
/// before quorums, one person holding two roles may answer for both.)
fn check_approver(
    action: &OpenAction,
    esc: &OpenEscalation,
    d: &HumanDecision,
) -> Result<(), Ignored> {
    let n = action.quorum.approvals;
    if d.decision == DecisionKind::Revise && n > 1 {
        return Err(Ignored::Invalid(format!(
            "decision `revise` for {}: this action needs {n} approvals, and one person cannot \
             approve a revision alone; reject it saying what to change, or approve it as proposed",
            d.escalation_id
        )));
    }
    if d.decision != DecisionKind::Approve {
        return Ok(());
    }
    if let Some(other) = action.approvals.iter().find(|a| {
        a.chosen_option.is_some() && d.chosen_option.is_some() && a.chosen_option != d.chosen_option
    }) {
        return Err(Ignored::Invalid(format!(
            "`chosen_option` = {:?} for {}: {} approved {:?}; every approver who chooses must choose the same",
            d.chosen_option, d.escalation_id, other.by, other.chosen_option
        )));
    }
    let again = action.approvals.iter().any(|a| a.by == d.decided_by);
    if again && action.quorum.approvals > 1 {
        return Err(Ignored::Duplicate(d.escalation_id.clone()));
    }
    if esc.approved && !wants_more_from_role(action) {
        return Err(Ignored::Duplicate(d.escalation_id.clone()));
    }
    Ok(())
}

/// People who approved, each once.
fn people(action: &OpenAction) -> usize {
    let mut p: Vec<&str> = action.approvals.iter().map(|a| a.by.as_str()).collect();
    p.sort_unstable();
    p.dedup();
    p.len()
}

/// Roles that approved, each once.
fn roles(action: &OpenAction) -> usize {
    let mut r: Vec<&str> = action.approvals.iter().map(|a| a.role.as_str()).collect();
    r.sort_unstable();
    r.dedup();
    r.len()
}

/// How many distinct roles the approvals must come from: the quorum's count with distinct
/// roles, but never more than the roles handed to (a quorum raised by a level or a trigger
/// beyond them asks for more people, not for roles nobody was asked).
fn roles_needed(action: &OpenAction) -> usize {
    let q = action.quorum;
    if !q.distinct_roles {
        return 0;
    }
    usize::from(q.approvals).min(action.escalations.len())
}

/// Every role handed to approved, and the quorum is met.
fn quorum_met(action: &OpenAction) -> bool {
    action.escalations.iter().all(|e| e.approved)
        && people(action) >= usize::from(action.quorum.approvals)
        && roles(action) >= roles_needed(action)
}

/// More people of a role that already approved may still count: more approvals are needed, and
/// the distinct roles asked for (if any) have approved.
fn wants_more_from_role(action: &OpenAction) -> bool {
    people(action) < usize::from(action.quorum.approvals) && roles(action) >= roles_needed(action)
}

/// SHA-256 of the context package `role` is shown for `action` (rebuilt as the escalation
/// built it: the same event, decided with the same session state).
fn context_sha256(matrix: &Matrix, action: &OpenAction, role: &str) -> Option<String> {
    let i = matrix.role_index(role)?;
    let decision = matrix.evaluate(&action.event, &action.before);
    let package = crate::context::package(matrix, &matrix.roles()[i], &action.event, &decision);
    crate::trust::receipt::json_sha256(&package)
}

/// `d`'s author's approval of `action`, as the state keeps it.
fn approval_by(
    matrix: &Matrix,
    action: &OpenAction,
    d: &HumanDecision,
    via: Option<&str>,
    now_ms: i64,
) -> Approved {
    Approved {
        by: d.decided_by.clone(),
        role: d.role.clone(),
        at_ms: if d.decided_at_ms > 0 {
            d.decided_at_ms
        } else {
            now_ms
        },
        via: via.map(str::to_string),
        context_sha256: context_sha256(matrix, action, &d.role),
        chosen_option: d.chosen_option.clone(),
    }
}

/// The `Answered` effect of a decision; the first human response carries the time waited.
fn answered(esc: &OpenEscalation, d: &HumanDecision, first: bool, now_ms: i64) -> Effect {
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
