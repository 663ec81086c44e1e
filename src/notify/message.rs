//! The webhook message of a notice: one JSON object, the escalation's summary (or a digest's
//! items, at most [`DIGEST_ITEMS`] of them) and a link to the inbox. Pure.
//!
//! ```json
//! {"type": "escalation", "escalation_id": "esc-…", "action_id": "…", "session_id": "…",
//!  "agent_id": "…", "action_type": "refund.issue", "role": "support", "tier": "warm",
//!  "level": "ask_first", "required_action": "approve", "headline": "…",
//!  "flags": [{"trigger": "low_confidence", "detail": "…"}], "deadline_ms": 0,
//!  "created_at_ms": 0, "rule_version": "…", "sequence": 0, "drill": false,
//!  "url": "https://inbox.example/e/esc-…"}
//! ```
//!
//! A reminder (`[notify.reminders]`) is the same object with `"type": "reminder"` and
//! `"left_ms"`, the time left before the deadline.

use super::route::Notice;
use crate::event::{Digest, DigestItem, Escalation, FlagOut, Level, RequiredAction, Tier};
use serde::Serialize;

/// Items of a digest listed in one message; the rest are counted (`more`).
pub const DIGEST_ITEMS: usize = 20;

/// Links into the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    base: String,
}

impl Links {
    /// Links under `base` (the inbox as people reach it, `InboxSettings::base_url`).
    pub fn new(base: &str) -> Links {
        Links {
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// The escalation's detail page: `{base}/e/{id}` (the id percent-encoded).
    pub fn escalation(&self, id: &str) -> String {
        format!("{}/e/{}", self.base, crate::escape::url_component(id))
    }

    /// The inbox's front page: `{base}/`.
    pub fn inbox(&self) -> String {
        format!("{}/", self.base)
    }
}

#[derive(Serialize)]
struct EscalationMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    escalation_id: &'a str,
    action_id: &'a str,
    session_id: &'a str,
    agent_id: &'a str,
    action_type: &'a str,
    role: &'a str,
    tier: Tier,
    level: Level,
    required_action: RequiredAction,
    headline: &'a str,
    flags: &'a [FlagOut],
    deadline_ms: i64,
    created_at_ms: i64,
    rule_version: &'a str,
    sequence: i32,
    drill: bool,
    url: String,
    /// A reminder's time left before the deadline, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    left_ms: Option<i64>,
}

#[derive(Serialize)]
struct DigestEntry<'a> {
    #[serde(flatten)]
    item: &'a DigestItem,
    /// The item's detail page, when it names an escalation.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

#[derive(Serialize)]
struct DigestMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    digest_id: &'a str,
    role: &'a str,
    first_at_ms: i64,
    sent_at_ms: i64,
    rule_version: &'a str,
    drill: bool,
    /// Items in the digest (for this receiver).
    count: usize,
    /// The first [`DIGEST_ITEMS`] of them.
    items: Vec<DigestEntry<'a>>,
    /// How many more there are.
    more: usize,
    url: String,
}

/// The JSON body of the webhook message of `notice`.
pub fn webhook_body(notice: &Notice, links: &Links) -> Vec<u8> {
    let json = match notice {
        Notice::Escalation(x) => serde_json::to_vec(&escalation(x, links)),
        Notice::Reminder(x, left_ms) => serde_json::to_vec(&EscalationMessage {
            kind: "reminder",
            left_ms: Some(*left_ms),
            ..escalation(x, links)
        }),
        Notice::Digest(d) => serde_json::to_vec(&digest(d, links)),
    };
    json.expect("a message of strings and numbers serializes")
}

fn escalation<'a>(x: &'a Escalation, links: &Links) -> EscalationMessage<'a> {
    EscalationMessage {
        kind: "escalation",
        escalation_id: &x.escalation_id,
        action_id: &x.action_id,
        session_id: &x.session_id,
        agent_id: &x.agent_id,
        action_type: &x.action_type,
        role: &x.role,
        tier: x.tier,
        level: x.level,
        required_action: x.required_action,
        headline: &x.context.headline,
        flags: &x.context.flags,
        deadline_ms: x.deadline_ms,
        created_at_ms: x.created_at_ms,
        rule_version: &x.rule_version,
        sequence: x.sequence,
        drill: x.drill,
        url: links.escalation(&x.escalation_id),
        left_ms: None,
    }
}

fn digest<'a>(d: &'a Digest, links: &Links) -> DigestMessage<'a> {
    DigestMessage {
        kind: "digest",
        digest_id: &d.digest_id,
        role: &d.target,
        first_at_ms: d.first_at_ms,
        sent_at_ms: d.sent_at_ms,
        rule_version: &d.rule_version,
        drill: d.drill,
        count: d.items.len(),
        items: d
            .items
            .iter()
            .take(DIGEST_ITEMS)
            .map(|item| DigestEntry {
                item,
                url: item.escalation_id.as_deref().map(|id| links.escalation(id)),
            })
            .collect(),
        more: d.items.len().saturating_sub(DIGEST_ITEMS),
        url: links.inbox(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::route::tests::{digest as a_digest, escalation as an_escalation};
    use serde_json::{json, Value};

    #[test]
    fn links_point_at_the_detail_page_and_encode_the_id() {
        let l = Links::new("https://inbox.example/");
        let table = [
            ("esc-0123abcd", "https://inbox.example/e/esc-0123abcd"),
            ("a/b?c#d", "https://inbox.example/e/a%2Fb%3Fc%23d"),
            ("é <x>", "https://inbox.example/e/%C3%A9%20%3Cx%3E"),
        ];
        for (id, url) in table {
            assert_eq!(l.escalation(id), url);
        }
        assert_eq!(l.inbox(), "https://inbox.example/");
    }

    #[test]
    fn the_escalation_message_carries_the_summary_and_the_link() {
        let x = an_escalation("esc-1", "support", Tier::Warm);
        let n = Notice::Escalation(Box::new(x));
        let v: Value =
            serde_json::from_slice(&webhook_body(&n, &Links::new("http://inbox:9870"))).unwrap();
        assert_eq!(
            v,
            json!({
                "type": "escalation",
                "escalation_id": "esc-1",
                "action_id": "act-1",
                "session_id": "sess-1",
                "agent_id": "agent-1",
                "action_type": "refund.issue",
                "role": "support",
                "tier": "warm",
                "level": "ask_first",
                "required_action": "approve",
                "headline": "ask_first: refund.issue of 500 EUR <low confidence>",
                "flags": [{"trigger": "low_confidence", "detail": "confidence 0.40 < 0.60 & falling"}],
                "deadline_ms": 1_798_765_200_000i64,
                "created_at_ms": 1_798_761_600_000i64,
                "rule_version": "rv-1",
                "sequence": 0,
                "drill": false,
                "url": "http://inbox:9870/e/esc-1"
            })
        );
    }

    #[test]
    fn a_digest_is_one_message_listing_at_most_twenty_items() {
        let links = Links::new("http://inbox");
        for (n, listed, more) in [(1, 1, 0), (20, 20, 0), (21, 20, 1), (45, 20, 25)] {
            let d = a_digest("dig-1", "support", &vec![Tier::Warm; n]);
            let v: Value =
                serde_json::from_slice(&webhook_body(&Notice::Digest(Box::new(d)), &links))
                    .unwrap();
            assert_eq!(v["type"], "digest");
            assert_eq!(v["count"], n);
            assert_eq!(v["items"].as_array().unwrap().len(), listed, "{n} items");
            assert_eq!(v["more"], more, "{n} items");
            assert_eq!(v["items"][0]["url"], "http://inbox/e/esc-dig-1-0");
            assert_eq!(v["items"][0]["reason"], "rate_limited");
            assert_eq!(v["url"], "http://inbox/");
        }
    }
}
