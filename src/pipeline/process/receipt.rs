//! Approval receipts on final verdicts: the claims a verdict and its approval facts make,
//! signed with `[trust] signing_key` ([`crate::trust::receipt`]).

use crate::config::trust::ReceiptSettings;
use crate::event::{Verdict, VerdictOutcome};
use crate::state::{ApprovalFacts, Approved};
use crate::trust::receipt::{self, Approval, Approver, Claims};
use crate::trust::Signer;

/// Issues receipts: the key, and the settings' expiries.
#[derive(Debug, Clone)]
pub(super) struct Issuer {
    signer: Signer,
    settings: ReceiptSettings,
}

impl Issuer {
    /// An issuer when a signing key is configured.
    pub(super) fn of(settings: &crate::config::Settings) -> Option<Issuer> {
        Some(Issuer {
            signer: settings.trust.signer()?,
            settings: settings.trust.receipts.clone(),
        })
    }

    /// Sets `v.receipt` when the verdict lets the action run: after people approved it
    /// (`facts` of the approval, when they are about this action or one grouped into it), or —
    /// with `for_auto_run` — because the rules let it run alone.
    pub(super) fn stamp(&self, v: &mut Verdict, facts: Option<&ApprovalFacts>) {
        let by_people = matches!(
            v.outcome,
            VerdictOutcome::Approved | VerdictOutcome::Revised
        );
        let alone = matches!(
            v.outcome,
            VerdictOutcome::Proceed | VerdictOutcome::ProceedAndLog
        );
        if !v.is_final || v.drill || !(by_people || alone && self.settings.for_auto_run) {
            return;
        }
        let claims = claims(v, facts, self.settings.ttl_s(v.level));
        v.receipt = Some(receipt::issue(&self.signer, &claims));
    }

    /// True when actions the rules let run alone get receipts.
    pub(super) fn for_auto_run(&self) -> bool {
        self.settings.for_auto_run
    }
}

/// The claims of `v`'s receipt. The call is bound only for the action people answered (a
/// grouped action's receipt names no tool).
fn claims(v: &Verdict, facts: Option<&ApprovalFacts>, ttl_s: i64) -> Claims {
    let iat = v.decided_at_ms.div_euclid(1000);
    let exp = iat.saturating_add(ttl_s);
    let call = facts
        .filter(|f| f.action_id == v.action_id)
        .and_then(|f| f.tool_call.as_ref());
    let arguments = match (&v.revised_arguments, call) {
        (Some(revised), Some(_)) => Some(revised.as_str()),
        (None, Some(c)) => Some(c.arguments.as_str()),
        _ => None,
    };
    let approvals: &[Approved] = facts.map(|f| f.approvals.as_slice()).unwrap_or_default();
    let id = receipt::receipt_id(&v.action_id, v.decided_at_ms);
    Claims {
        iss: receipt::ISSUER.to_string(),
        aud: v.agent_id.clone(),
        jti: id.clone(),
        iat,
        exp,
        action_id: v.action_id.clone(),
        session_id: v.session_id.clone(),
        agent_id: v.agent_id.clone(),
        action_type: v.action_type.clone(),
        tool_name: call.map(|c| c.name.clone()),
        arguments_sha256: arguments.and_then(|a| receipt::arguments_sha256(a).ok()),
        outcome: v.outcome.as_str().to_string(),
        chosen_option: v.chosen_option.clone(),
        approvers: approvals.iter().map(approver).collect(),
        rule_version: v.rule_version.clone(),
        level: v.level.as_str().to_string(),
        triggers: v.triggers.clone(),
        approval: Approval {
            id,
            approved_at: approvals.last().map(|a| receipt::rfc3339(a.at_ms, true)),
            approved_until: receipt::rfc3339(exp, false),
        },
    }
}

fn approver(a: &Approved) -> Approver {
    Approver {
        sub: a.by.clone(),
        role: a.role.clone(),
        at: receipt::rfc3339(a.at_ms, true),
        via: a.via.clone().unwrap_or_else(|| "unsigned".to_string()),
        context_sha256: a.context_sha256.clone(),
    }
}
