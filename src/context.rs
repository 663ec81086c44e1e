//! The context package: everything a human needs to take over an action, cut to one role's
//! view. Hidden fields are left out, attributes are filtered to the role's keys, and every text
//! shown is passed through the role's redaction patterns.

use crate::event::{AgentAction, ContextPackage, FlagOut, Level};
use crate::matrix::{Decision, Matrix, PackageField, RoleView};
use std::borrow::Cow;

/// Masks every match of the role's redaction patterns.
pub fn redact<'a>(role: &RoleView, text: &'a str) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for (name, re) in &role.redact {
        if re.is_match(&out) {
            let replaced = re
                .replace_all(&out, format!("[{name} redacted]").as_str())
                .into_owned();
            out = Cow::Owned(replaced);
        }
    }
    out
}

/// One line for notifications: level, action type, reasons, confidence.
pub fn headline(event: &AgentAction, decision: &Decision) -> String {
    headline_of(
        decision.level,
        event,
        decision.triggers.iter().map(|t| t.as_str()),
    )
}

/// [`headline`] from a level and trigger names already known (an open action's).
pub fn headline_of<'a>(
    level: Level,
    event: &AgentAction,
    reasons: impl Iterator<Item = &'a str>,
) -> String {
    let reasons: Vec<&str> = reasons.collect();
    let confidence = match event.confidence {
        Some(c) => format!("confidence {c:.2}"),
        None => "no confidence given".to_string(),
    };
    format!(
        "{}: {} by {} ({confidence}){}{}",
        level.as_str(),
        event.action_type,
        event.agent_id,
        if reasons.is_empty() { "" } else { " — " },
        reasons.join(", ")
    )
}

/// Builds the package for one role.
pub fn package(
    matrix: &Matrix,
    role: &RoleView,
    event: &AgentAction,
    decision: &Decision,
) -> ContextPackage {
    let hidden = |f: PackageField| role.hide.contains(&f);
    let text = |f: PackageField, v: &str| -> Option<String> {
        if hidden(f) {
            None
        } else {
            Some(redact(role, v).into_owned())
        }
    };
    let flags = decision
        .flags
        .iter()
        .map(|f| FlagOut {
            trigger: f.trigger.as_str().to_string(),
            detail: redact(role, &matrix.describe(f, event)).into_owned(),
        })
        .collect();
    let attributes = event
        .attributes
        .iter()
        .filter(|(k, _)| match &role.attributes {
            None => true,
            Some(keys) => keys.iter().any(|x| x == *k),
        })
        .map(|(k, v)| (k.clone(), redact(role, v).into_owned()))
        .collect();
    ContextPackage {
        view: role.view.clone(),
        headline: headline(event, decision),
        request: text(PackageField::Request, &event.request),
        summary: text(PackageField::Summary, &event.summary),
        output: event
            .output
            .as_deref()
            .and_then(|o| text(PackageField::Output, o)),
        user_message: event
            .user_message
            .as_deref()
            .and_then(|m| text(PackageField::UserMessage, m)),
        confidence: event.confidence,
        flags,
        options: if hidden(PackageField::Options) {
            Vec::new()
        } else {
            event
                .options
                .iter()
                .map(|o| redact(role, o).into_owned())
                .collect()
        },
        error: event
            .error
            .as_deref()
            .and_then(|e| text(PackageField::Error, e)),
        amount: if hidden(PackageField::Amount) {
            None
        } else {
            event.amount
        },
        currency: if hidden(PackageField::Amount) {
            None
        } else {
            event.currency.clone()
        },
        customer: if hidden(PackageField::Customer) {
            None
        } else {
            event.customer.clone()
        },
        retention_risk: decision.retention_risk,
        attributes,
        event_timestamp_ms: event.timestamp_ms,
        tool_call: if hidden(PackageField::ToolCall) {
            None
        } else {
            event.tool_call.clone()
        },
    }
}
