//! The pages: view models filled from the board and the matrix, rendered by askama templates
//! (`src/inbox/templates/`, compiled in; every value is HTML-escaped, attributes included).
//! Untrusted text — anything an agent or an end user wrote — is only ever shown as text, in
//! `<bdi>`/`dir=auto` so right-to-left marks stay inside it, and wraps anywhere.

use super::board::Item;
use crate::event::{ContextPackage, CustomerTier, RequiredAction};
use crate::matrix::Matrix;
use askama::Template;

/// A page with a message (errors, stale answers, not found).
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    /// Signed-in person.
    pub who: Option<&'a str>,
    /// Their form token (sign-out).
    pub form_token: &'a str,
    /// Heading.
    pub title: &'a str,
    /// Text.
    pub text: &'a str,
    /// CSS class (`stale`, `error`).
    pub class: &'a str,
    /// A link onwards (`href`, label), when there is one beside "Back to the inbox".
    pub next: Option<(&'a str, &'a str)>,
}

/// The sign-in form.
#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage<'a> {
    /// Nobody yet.
    pub who: Option<&'a str>,
    /// Unused.
    pub form_token: &'a str,
    /// Why the last attempt failed.
    pub error: &'a str,
    /// The token of a sign-in link, to confirm with a button (never signed in by the link
    /// alone: a native app or an old browser may have opened it).
    pub link_token: &'a str,
}

/// One row of the list.
pub struct Row<'a> {
    /// Escalation id.
    pub id: &'a str,
    /// `warm` or `immediate`.
    pub tier: &'static str,
    /// Its role.
    pub role: &'a str,
    /// Moves along the chain so far.
    pub sequence: i32,
    /// Level, action, agent, confidence, reasons.
    pub headline: String,
    /// The agent.
    pub agent: &'a str,
    /// Deadline (ms) for the countdown.
    pub deadline_ms: Option<i64>,
    /// Time left as text when rendered.
    pub left: String,
    /// Acknowledged.
    pub acknowledged: bool,
    /// Actions grouped into it.
    pub grouped: usize,
    /// Folded into a digest of its role.
    pub in_digest: bool,
    /// Four-eyes progress (`1 of 2 approvals`), empty for a single approval.
    pub approvals: String,
    /// Its receivers were reminded before the deadline.
    pub reminded: bool,
}

/// Four-eyes progress of an action needing several approvers — `1 of 2 approvals from
/// distinct roles` — and who approved so far (`olga (owner)`); `None` for one needing one.
pub fn approvals(a: &crate::state::OpenAction) -> Option<(String, Vec<String>)> {
    let q = a.quorum;
    if q.approvals <= 1 {
        return None;
    }
    let progress = format!(
        "{} of {} approvals{}",
        a.approvals.len(),
        q.approvals,
        if q.distinct_roles {
            " from distinct roles"
        } else {
            ""
        }
    );
    let who = a
        .approvals
        .iter()
        .map(|x| format!("{} ({})", x.by, x.role))
        .collect();
    Some((progress, who))
}

impl<'a> Row<'a> {
    /// The row of an item at `now_ms`.
    pub fn of(item: &'a Item, now_ms: i64) -> Row<'a> {
        let a = &item.action;
        Row {
            id: &item.escalation_id,
            tier: item.tier.as_str(),
            role: &item.role,
            sequence: item.sequence,
            headline: crate::context::headline_of(
                a.level,
                &a.event,
                a.triggers.iter().map(String::as_str),
            ),
            agent: &a.event.agent_id,
            deadline_ms: item.deadline_ms,
            left: item
                .deadline_ms
                .map(|d| left(d - now_ms))
                .unwrap_or_default(),
            acknowledged: item.acknowledged(),
            grouped: a.members.len(),
            in_digest: item.in_digest,
            approvals: approvals(a).map(|(p, _)| p).unwrap_or_default(),
            reminded: false,
        }
    }

    /// The row, marked reminded or not.
    pub fn reminded(mut self, reminded: bool) -> Row<'a> {
        self.reminded = reminded;
        self
    }
}

/// The list of open escalations.
#[derive(Template)]
#[template(path = "list.html")]
pub struct ListPage<'a> {
    /// Signed-in person.
    pub who: Option<&'a str>,
    /// Their form token.
    pub form_token: &'a str,
    /// A note after an answer.
    pub flash: &'a str,
    /// Their roles (filter choices).
    pub roles: &'a [String],
    /// Action types open for them (filter choices).
    pub action_types: Vec<String>,
    /// Current filter.
    pub filter_role: &'a str,
    /// Current filter.
    pub filter_tier: &'a str,
    /// Current filter.
    pub filter_type: &'a str,
    /// Open for them under the filter.
    pub total: usize,
    /// Rows shown.
    pub shown: usize,
    /// The same list, all rows.
    pub all_link: String,
    /// The rows, most urgent first.
    pub rows: Vec<Row<'a>>,
}

/// The list's live part only (what the script fetches again).
#[derive(Template)]
#[template(path = "list_items.html")]
pub struct ListItems<'a> {
    /// Open for them under the filter.
    pub total: usize,
    /// Rows shown.
    pub shown: usize,
    /// The same list, all rows.
    pub all_link: String,
    /// The rows, most urgent first.
    pub rows: Vec<Row<'a>>,
}

/// The detail page: the context package in the order a person reads it.
pub struct Detail<'a> {
    /// Escalation id.
    pub id: &'a str,
    /// Its action.
    pub action_id: &'a str,
    /// Its session.
    pub session: &'a str,
    /// The agent.
    pub agent: &'a str,
    /// The action type.
    pub action_type: &'a str,
    /// Role it waits for.
    pub role: &'a str,
    /// `warm` or `immediate`.
    pub tier: &'static str,
    /// What the person must do.
    pub required_action: &'static str,
    /// Which answer is the obvious button: approve, choose, revise or acknowledge.
    pub primary: &'static str,
    /// The role's view of the package.
    pub pkg: ContextPackage,
    /// Confidence, two decimals; `None` when the agent gave none.
    pub confidence: Option<String>,
    /// The tool call behind the action: its name, and its arguments laid out one per line.
    pub tool_call: Option<(String, String)>,
    /// The gate for this action type.
    pub gate: String,
    /// Below the gate.
    pub below_gate: bool,
    /// Amount with currency.
    pub amount: Option<String>,
    /// The customer's tier.
    pub customer_tier: &'static str,
    /// Visible attributes.
    pub attributes: Vec<(String, String)>,
    /// Grouped actions: "type by agent (id)".
    pub grouped: Vec<String>,
    /// Earlier hand-overs: (when, role, tier, reason).
    pub history: Vec<(String, String, &'static str, String)>,
    /// When this role was called.
    pub created_text: String,
    /// Deadline (ms).
    pub deadline_ms: Option<i64>,
    /// Deadline as a UTC time.
    pub deadline_text: String,
    /// Time left when rendered.
    pub left: String,
    /// Acknowledged already.
    pub acknowledged: bool,
    /// The draft to revise (the output, or empty).
    pub draft: String,
    /// Roles it can be redirected to.
    pub redirect_roles: Vec<String>,
    /// Rule version it was opened with.
    pub rule_version: &'a str,
    /// Four-eyes progress, and who approved so far.
    pub approvals: Option<(String, Vec<String>)>,
}

/// The detail page.
#[derive(Template)]
#[template(path = "detail.html")]
pub struct DetailPage<'a> {
    /// Signed-in person.
    pub who: Option<&'a str>,
    /// Their form token.
    pub form_token: &'a str,
    /// The content.
    pub p: Detail<'a>,
}

impl<'a> Detail<'a> {
    /// The detail of `item` as its role sees it, or `None` when the matrix no longer has the
    /// role.
    pub fn of(matrix: &Matrix, item: &'a Item, now_ms: i64) -> Option<Detail<'a>> {
        let role = &matrix.roles()[matrix.role_index(&item.role)?];
        let a = &item.action;
        let decision = matrix.evaluate(&a.event, &a.before);
        let pkg = crate::context::package(matrix, role, &a.event, &decision);
        let gate = matrix.threshold(&a.event.action_type);
        let required = decision.required_action.unwrap_or(RequiredAction::Approve);
        let primary = match required {
            RequiredAction::Choose if !pkg.options.is_empty() => "choose",
            RequiredAction::Troubleshoot => "acknowledge",
            _ => "approve",
        };
        Some(Detail {
            id: &item.escalation_id,
            action_id: &a.event.action_id,
            session: &item.session_id,
            agent: &a.event.agent_id,
            action_type: &a.event.action_type,
            role: &item.role,
            tier: item.tier.as_str(),
            required_action: required.as_str(),
            primary,
            confidence: pkg.confidence.map(|c| format!("{c:.2}")),
            tool_call: pkg.tool_call.as_ref().map(tool_call_view),
            gate: format!("{gate:.2}"),
            below_gate: match pkg.confidence {
                Some(c) => c < gate,
                None => pkg.flags.iter().any(|f| f.trigger == "low_confidence"),
            },
            amount: pkg.amount.map(|x| match &pkg.currency {
                Some(c) => format!("{x:.2} {c}"),
                None => format!("{x:.2}"),
            }),
            customer_tier: pkg.customer.as_ref().map_or("", |c| match c.tier {
                CustomerTier::Standard => "standard",
                CustomerTier::Premium => "premium",
                CustomerTier::Vip => "VIP",
            }),
            attributes: pkg
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            grouped: a
                .members
                .iter()
                .map(|m| format!("{} by {} ({})", m.action_type, m.agent_id, m.action_id))
                .collect(),
            history: item
                .history
                .iter()
                .map(|h| {
                    (
                        utc(h.escalated_at_ms),
                        h.role.clone(),
                        h.tier.as_str(),
                        h.reason.clone(),
                    )
                })
                .collect(),
            created_text: utc(item.created_at_ms),
            deadline_ms: item.deadline_ms,
            deadline_text: item.deadline_ms.map(utc).unwrap_or_default(),
            left: item
                .deadline_ms
                .map(|d| left(d - now_ms))
                .unwrap_or_default(),
            acknowledged: item.acknowledged(),
            draft: pkg.output.clone().unwrap_or_default(),
            redirect_roles: matrix
                .roles()
                .iter()
                .filter(|r| r.name != item.role)
                .map(|r| r.name.clone())
                .collect(),
            rule_version: &a.rule_version,
            approvals: approvals(a),
            pkg,
        })
    }
}

/// Time left as people read it: `1h 5m`, `4m 10s`, `12s`, `overdue 30s`.
pub fn left(ms: i64) -> String {
    let s = (ms.unsigned_abs() + 500) / 1000;
    let (h, m) = (s / 3600, s % 3600 / 60);
    let t = if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{}s", s % 60)
    };
    if ms < 0 {
        format!("overdue {t}")
    } else {
        t
    }
}

/// A wall-clock time as `2026-12-01 17:05:34 UTC`.
pub fn utc(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} UTC", s.trim_end_matches('Z').replace('T', " "))
}

/// A tool call as a person reads it: its name, and its arguments as indented JSON (as sent
/// when they do not parse: validation let them through, so they do).
fn tool_call_view(call: &crate::event::ToolCall) -> (String, String) {
    let arguments = serde_json::from_str::<serde_json::Value>(&call.arguments)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| call.arguments.clone());
    (call.name.clone(), arguments)
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_left_reads_like_a_person_would_say_it() {
        let table = [
            (0, "0s"),
            (12_400, "12s"),
            (250_000, "4m 10s"),
            (3_900_000, "1h 5m"),
            (-30_000, "overdue 30s"),
        ];
        for (ms, want) in table {
            assert_eq!(super::left(ms), want, "{ms}");
        }
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
    }
}
