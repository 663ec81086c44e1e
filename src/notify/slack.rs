//! Slack: the Block Kit message of a notice (for an incoming webhook), and the two checks of
//! the inbox's `POST /slack/actions` route — [`verify`] (Slack's `v0` request signature) and
//! [`parse_action`] (which button of which escalation, pressed by whom). Pure.
//!
//! Everything that comes from an event or a person is untrusted: it is cut to a bounded
//! length and its mrkdwn control characters (`&`, `<`, `>`) are escaped, so a headline cannot
//! mention `<!channel>`, forge a link or break the message.

use super::message::{Links, DIGEST_ITEMS};
use super::route::Notice;
use crate::event::{DecisionKind, Digest, Escalation};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::{Duration, SystemTime};

/// Slack refuses requests older than this; so does [`verify`].
pub const MAX_AGE_S: i64 = 300;
/// Longest untrusted text put in a message, in characters.
const MAX_TEXT: usize = 300;
/// Slack's limit for a section's text.
const MAX_SECTION: usize = 3000;

/// The buttons on an escalation message; their `action_id` is the decision.
pub const BUTTONS: [DecisionKind; 3] = [
    DecisionKind::Approve,
    DecisionKind::Reject,
    DecisionKind::Acknowledge,
];
/// The `action_id` of the "Open in inbox" link button.
pub const OPEN_ACTION: &str = "open";

/// `text` with Slack's mrkdwn control characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Untrusted text for a message: control characters turned into spaces, cut to
/// [`MAX_TEXT`] characters (with `…`), then escaped.
fn untrusted(text: &str) -> String {
    let mut cut: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_TEXT)
        .collect();
    if text.chars().count() > MAX_TEXT {
        cut.push('…');
    }
    escape(&cut)
}

/// A deadline as Slack's date token (shown in the reader's time zone), with UTC as fallback.
fn deadline(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    format!(
        "<!date^{secs}^{{date_short_pretty}} {{time}}|{} UTC>",
        humantime::format_rfc3339_seconds(at)
    )
}

/// A section of `text`, `verbatim`: Slack turns no bare URL or channel name of the agent's text
/// into a link (what handoff means as a link is written as one).
fn mrkdwn(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": true}})
}

fn drill_mark(drill: bool) -> &'static str {
    if drill {
        "[DRILL] "
    } else {
        ""
    }
}

/// The Block Kit message (an incoming webhook's JSON body) of `notice`.
pub fn message(notice: &Notice, links: &Links) -> Value {
    match notice {
        Notice::Escalation(x) => escalation_message(x, links),
        Notice::Digest(d) => digest_message(d, links),
        Notice::Reminder(x, left_ms) => reminder_message(x, *left_ms, links),
    }
}

/// The escalation's message, headed by how long is left ("⏰ Reminder: 5m left").
fn reminder_message(x: &Escalation, left_ms: i64, links: &Links) -> Value {
    let left = humantime::format_duration(Duration::from_secs((left_ms.max(0) / 1000) as u64));
    let head = format!("⏰ Reminder: {left} left to acknowledge");
    let mut m = escalation_message(x, links);
    if let Some(blocks) = m["blocks"].as_array_mut() {
        blocks.insert(0, mrkdwn(format!("*{head}*")));
    }
    m["text"] = json!(format!(
        "{head} · {}",
        m["text"].as_str().unwrap_or_default()
    ));
    m
}

fn escalation_message(x: &Escalation, links: &Links) -> Value {
    let headline = untrusted(&x.context.headline);
    let mark = drill_mark(x.drill);
    let facts = format!(
        "*Role:* {} · *Tier:* {} · *Level:* {} · *Required:* {}\n*Acknowledge by:* {}\n*Action:* `{}` by agent `{}`",
        untrusted(&x.role),
        x.tier.as_str(),
        x.level.as_str(),
        x.required_action.as_str(),
        deadline(x.deadline_ms),
        untrusted(&x.action_type),
        untrusted(&x.agent_id),
    );
    let flags: Vec<String> = x
        .context
        .flags
        .iter()
        .map(|f| format!("• *{}*: {}", untrusted(&f.trigger), untrusted(&f.detail)))
        .collect();
    let mut blocks = vec![mrkdwn(format!("{mark}*{headline}*")), mrkdwn(facts)];
    if !flags.is_empty() {
        blocks.push(mrkdwn(bounded(&flags.join("\n"))));
    }
    let mut buttons: Vec<Value> = BUTTONS
        .iter()
        .map(|d| {
            let mut b = json!({
                "type": "button",
                "text": {"type": "plain_text", "text": title(*d)},
                "action_id": d.as_str(),
                "value": x.escalation_id,
            });
            match d {
                DecisionKind::Approve => b["style"] = json!("primary"),
                DecisionKind::Reject => b["style"] = json!("danger"),
                _ => {}
            }
            b
        })
        .collect();
    buttons.push(json!({
        "type": "button",
        "text": {"type": "plain_text", "text": "Open in inbox"},
        "action_id": OPEN_ACTION,
        "value": x.escalation_id,
        "url": links.escalation(&x.escalation_id),
    }));
    blocks.push(json!({"type": "actions", "elements": buttons}));
    json!({
        "text": format!("{mark}[{}] {headline}", x.tier.as_str()),
        "blocks": blocks,
    })
}

fn title(d: DecisionKind) -> &'static str {
    match d {
        DecisionKind::Approve => "Approve",
        DecisionKind::Reject => "Reject",
        DecisionKind::Acknowledge => "Acknowledge",
        DecisionKind::Revise => "Revise",
        DecisionKind::Redirect => "Redirect",
    }
}

/// Text cut to fit one section.
fn bounded(text: &str) -> String {
    if text.len() <= MAX_SECTION {
        return text.to_string();
    }
    let mut end = MAX_SECTION - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn digest_message(d: &Digest, links: &Links) -> Value {
    let mark = drill_mark(d.drill);
    let n = d.items.len();
    let head = format!(
        "{mark}*{n} escalation(s) for {} were held back by its rate limit*",
        untrusted(&d.target)
    );
    let lines: Vec<String> = d
        .items
        .iter()
        .take(DIGEST_ITEMS)
        .map(|i| {
            let tier = i.tier.map_or("-", |t| t.as_str());
            let text = untrusted(&i.headline);
            let shown = match &i.escalation_id {
                Some(id) => format!("<{}|{text}>", links.escalation(id)),
                None => text,
            };
            let by = i.deadline_ms.map(deadline).unwrap_or_default();
            format!("• `{tier}` {shown} {by}")
        })
        .collect();
    let mut blocks = vec![mrkdwn(head)];
    blocks.extend(sections(&lines).into_iter().map(mrkdwn));
    if n > DIGEST_ITEMS {
        blocks.push(mrkdwn(format!("…and {} more", n - DIGEST_ITEMS)));
    }
    blocks.push(json!({"type": "actions", "elements": [{
        "type": "button",
        "text": {"type": "plain_text", "text": "Open inbox"},
        "action_id": OPEN_ACTION,
        "value": d.digest_id,
        "url": links.inbox(),
    }]}));
    json!({
        "text": format!("{mark}{n} escalation(s) for {}", untrusted(&d.target)),
        "blocks": blocks,
    })
}

/// Lines grouped into texts of at most [`MAX_SECTION`] bytes.
fn sections(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let line = bounded(line);
        match out.last_mut() {
            Some(s) if s.len() + 1 + line.len() <= MAX_SECTION => {
                s.push('\n');
                s.push_str(&line);
            }
            _ => out.push(line),
        }
    }
    out
}

/// Why a Slack request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// `X-Slack-Request-Timestamp` is not Unix seconds.
    #[error("X-Slack-Request-Timestamp {0:?} is not Unix seconds")]
    BadTimestamp(String),
    /// The request is older (or newer) than [`MAX_AGE_S`]: a replay, or a clock off.
    #[error("request timestamp is {0} s away from now (at most {MAX_AGE_S} s)")]
    Stale(i64),
    /// `X-Slack-Signature` is not `v0=` and 64 hex digits, or does not match.
    #[error("X-Slack-Signature does not match")]
    BadSignature,
    /// The form has no `payload`, or it is not the JSON of an interaction.
    #[error("not a Slack interaction payload: {0}")]
    BadPayload(String),
    /// An interaction other than a button press (`block_actions`).
    #[error("interaction type {0:?} is not block_actions")]
    WrongType(String),
    /// A button that is not one of handoff's.
    #[error("action {0:?} is not a button of handoff")]
    UnknownAction(String),
}

/// Checks Slack's signature of a request: `signature_header` must be `v0=` + hex
/// HMAC-SHA256(`signing_secret`, `v0:{timestamp}:{body}`), compared in constant time, and the
/// timestamp within [`MAX_AGE_S`] of `now_unix`.
pub fn verify(
    signing_secret: &[u8],
    timestamp_header: &str,
    body: &[u8],
    signature_header: &str,
    now_unix: i64,
) -> Result<(), SlackError> {
    let ts: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| SlackError::BadTimestamp(timestamp_header.to_string()))?;
    let off = now_unix.saturating_sub(ts);
    if off.abs() > MAX_AGE_S {
        return Err(SlackError::Stale(off));
    }
    let tag = signature_header
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok().filter(|tag| tag.len() == 32))
        .ok_or(SlackError::BadSignature)?;
    let mut m =
        Hmac::<Sha256>::new_from_slice(signing_secret).expect("HMAC takes a key of any length");
    m.update(b"v0:");
    m.update(ts.to_string().as_bytes());
    m.update(b":");
    m.update(body);
    m.verify_slice(&tag).map_err(|_| SlackError::BadSignature)
}

/// Which button was pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    /// A decision: approve, reject or acknowledge.
    Decide(DecisionKind),
    /// "Open in inbox" (a link: Slack reports the click too; nothing to do).
    Open,
}

/// A button press in a Slack message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackAction {
    /// The Slack user who pressed it (`user.id`): map it to a person (`inbox.people[].slack_user`).
    pub user_id: String,
    /// The button.
    pub button: Button,
    /// Its value: the escalation id (a digest's id for a digest's "Open inbox").
    pub escalation_id: String,
    /// Where to answer the user (replace or follow up the message), if given.
    pub response_url: Option<String>,
    /// The workspace it was pressed in (`team.id`).
    pub team_id: Option<String>,
}

/// The button press in an interactivity request's form body (`payload=` + JSON).
pub fn parse_action(form_body: &[u8]) -> Result<SlackAction, SlackError> {
    let payload = form_urlencoded::parse(form_body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| SlackError::BadPayload("no payload field".into()))?;
    let v: Value =
        serde_json::from_str(&payload).map_err(|e| SlackError::BadPayload(e.to_string()))?;
    let kind = v["type"].as_str().unwrap_or_default();
    if kind != "block_actions" {
        return Err(SlackError::WrongType(kind.to_string()));
    }
    let field = |v: &Value, name: &str| -> Result<String, SlackError> {
        v.as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| SlackError::BadPayload(format!("no {name}")))
    };
    let user_id = field(&v["user"]["id"], "user.id")?;
    let action = &v["actions"][0];
    let action_id = field(&action["action_id"], "actions[0].action_id")?;
    let escalation_id = field(&action["value"], "actions[0].value")?;
    let button = if action_id == OPEN_ACTION {
        Button::Open
    } else {
        BUTTONS
            .iter()
            .find(|d| d.as_str() == action_id)
            .map(|d| Button::Decide(*d))
            .ok_or(SlackError::UnknownAction(action_id))?
    };
    Ok(SlackAction {
        user_id,
        button,
        escalation_id,
        response_url: v["response_url"].as_str().map(str::to_string),
        team_id: v["team"]["id"].as_str().map(str::to_string),
    })
}

#[cfg(test)]
mod tests;
