//! From an answer form to a `HumanDecision`: every field checked against the open escalation
//! and the matrix before anything is sent, each refusal saying what is wrong. Pure.

use super::board::Item;
use crate::event::{DecisionKind, HumanDecision};
use crate::matrix::Matrix;
use serde::Deserialize;

/// What the answer form posts.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AnswerForm {
    /// The form token.
    #[serde(default)]
    pub form_token: String,
    /// `approve`, `reject`, `revise`, `choose`, `redirect` or `acknowledge`.
    #[serde(default)]
    pub decision: String,
    /// A comment; the reason of a rejection.
    #[serde(default)]
    pub comment: String,
    /// The edited draft (revise).
    #[serde(default)]
    pub revised_output: String,
    /// The edited arguments of the tool call, a JSON object (revise).
    #[serde(default)]
    pub revised_arguments: String,
    /// The option chosen (choose).
    #[serde(default)]
    pub chosen_option: String,
    /// The role to hand it to (redirect).
    #[serde(default)]
    pub redirect_role: String,
}

/// A revision: of the draft, of the tool call's arguments (checked against the tool's argument
/// schema, sent canonical), or both.
fn revise(d: &mut HumanDecision, item: &Item, form: &AnswerForm) -> Result<(), String> {
    d.decision = DecisionKind::Revise;
    let text = form.revised_output.replace("\r\n", "\n");
    let arguments = form.revised_arguments.trim();
    if text.trim().is_empty() && arguments.is_empty() {
        return Err(
            "revise: give the revised text (revised_output) or arguments (revised_arguments)"
                .into(),
        );
    }
    if !text.trim().is_empty() {
        d.revised_output = Some(text);
    }
    if !arguments.is_empty() {
        let Some(call) = &item.action.event.tool_call else {
            return Err(
                "revise: this action is no tool call, it has no arguments to revise".into(),
            );
        };
        d.revised_arguments = Some(call.revise(arguments).map_err(|e| format!("revise: {e}"))?);
    }
    Ok(())
}

/// Longest text accepted in a comment or a revision.
pub const MAX_TEXT: usize = 64 * 1024;

/// Builds the decision `by` sends about `item`, or says what is wrong with the form.
pub fn decision(
    matrix: &Matrix,
    item: &Item,
    form: &AnswerForm,
    by: &str,
    now_ms: i64,
) -> Result<HumanDecision, String> {
    let comment = non_empty(&form.comment);
    for (field, text) in [
        ("comment", &form.comment),
        ("revised_output", &form.revised_output),
        ("revised_arguments", &form.revised_arguments),
    ] {
        if text.len() > MAX_TEXT {
            return Err(format!("{field}: {} bytes, at most {MAX_TEXT}", text.len()));
        }
    }
    let mut d = HumanDecision {
        escalation_id: item.escalation_id.clone(),
        action_id: item.action_id().to_string(),
        session_id: item.session_id.clone(),
        role: item.role.clone(),
        decided_by: by.to_string(),
        decision: DecisionKind::Approve,
        comment,
        revised_output: None,
        redirect_role: None,
        decided_at_ms: now_ms,
        drill: item.action.drill,
        chosen_option: None,
        revised_arguments: None,
    };
    match form.decision.as_str() {
        "approve" => {}
        "acknowledge" => d.decision = DecisionKind::Acknowledge,
        "reject" => {
            d.decision = DecisionKind::Reject;
            if d.comment.is_none() {
                return Err("reject: give a reason (comment), the agent and the audit need it".into());
            }
        }
        "revise" if item.action.quorum.approvals > 1 => {
            return Err(format!(
                "revise: this action needs {} approvals, and one person cannot approve a revision \
                 alone; reject it saying what to change, or approve it as proposed",
                item.action.quorum.approvals
            ))
        }
        "revise" => revise(&mut d, item, form)?,
        "choose" => {
            // The page shows the options as the role sees them (redacted): the one chosen is
            // found there, and the decision names the action's own.
            let options = &item.action.event.options;
            let role = matrix.role_index(&item.role).map(|i| &matrix.roles()[i]);
            let shown = |o: &String| match role {
                Some(r) => crate::context::redact(r, o).into_owned(),
                None => o.clone(),
            };
            let Some(at) = options.iter().position(|o| shown(o) == form.chosen_option) else {
                return Err(format!(
                    "choose: chosen_option = {:?} is not one of the action's {} option(s)",
                    form.chosen_option,
                    options.len()
                ));
            };
            d.chosen_option = Some(options[at].clone());
        }
        "redirect" => {
            d.decision = DecisionKind::Redirect;
            let to = form.redirect_role.as_str();
            if matrix.role_index(to).is_none() {
                return Err(format!("redirect: redirect_role = {to:?} is not a role of the matrix"));
            }
            if to == item.role {
                return Err(format!("redirect: {to:?} is the role it waits for already"));
            }
            d.redirect_role = Some(to.to_string());
        }
        other => {
            return Err(format!(
                "decision = {other:?}: expected approve, reject, revise, choose, redirect or acknowledge"
            ))
        }
    }
    Ok(d)
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.replace("\r\n", "\n"))
}
