//! Builders of escalations, digests and receivers, and readers of metrics, for the
//! notification tests.
#![allow(dead_code)]

use handoff::config::notify::{Receiver, ReceiverKind};
use handoff::event::{
    ContextPackage, Digest, DigestItem, DigestReason, Escalation, FlagOut, Level, RequiredAction,
    Tier,
};
use handoff::notify::ledger::{LedgerEntry, Status};
use handoff::notify::message::Links;
use handoff::notify::transport::Http;
use handoff::notify::{EngineConfig, ReceiverSpec};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn key() -> Vec<u8> {
    handoff::config::notify::signing_key(SECRET).unwrap()
}

pub fn escalation(i: usize, role: &str, tier: Tier) -> Escalation {
    Escalation {
        escalation_id: format!("esc-{role}-{i:03}"),
        action_id: format!("act-{i}"),
        session_id: format!("sess-{i}"),
        agent_id: "agent-7".into(),
        action_type: "refund.issue".into(),
        role: role.into(),
        tier,
        level: Level::AskFirst,
        required_action: RequiredAction::Approve,
        created_at_ms: 1_798_761_600_000,
        deadline_ms: 1_798_765_200_000,
        rule_version: "rv-test".into(),
        sequence: 0,
        drill: false,
        context: ContextPackage {
            view: role.into(),
            headline: format!("ask_first: refund.issue #{i} <@here> & more"),
            request: None,
            summary: None,
            output: None,
            user_message: None,
            confidence: Some(0.4),
            flags: vec![FlagOut {
                trigger: "low_confidence".into(),
                detail: "confidence 0.40 < 0.60".into(),
            }],
            options: vec![],
            error: None,
            amount: Some(25.0),
            currency: Some("EUR".into()),
            customer: None,
            retention_risk: false,
            attributes: BTreeMap::new(),
            event_timestamp_ms: 1_798_761_600_000,
            tool_call: None,
        },
        history: vec![],
        grouped_action_ids: vec![],
    }
}

pub fn digest(id: &str, role: &str, n: usize) -> Digest {
    Digest {
        digest_id: id.into(),
        target: role.into(),
        first_at_ms: 1_798_761_600_000,
        sent_at_ms: 1_798_761_660_000,
        rule_version: "rv-test".into(),
        drill: false,
        items: (0..n)
            .map(|i| DigestItem {
                reason: DigestReason::RateLimited,
                escalation_id: Some(format!("esc-folded-{i:03}")),
                action_id: format!("act-folded-{i}"),
                session_id: format!("sess-folded-{i}"),
                agent_id: "agent-7".into(),
                action_type: "refund.issue".into(),
                level: Level::AskFirst,
                tier: Some(Tier::Warm),
                headline: format!("folded refund #{i}"),
                triggers: vec!["low_confidence".into()],
                created_at_ms: 1_798_761_600_000,
                deadline_ms: Some(1_798_765_200_000),
            })
            .collect(),
    }
}

pub fn receiver(
    name: &str,
    kind: ReceiverKind,
    url: String,
    timeout_ms: u64,
    in_flight: usize,
) -> Receiver {
    Receiver {
        name: name.into(),
        kind,
        url,
        secret: (kind == ReceiverKind::Webhook).then(|| SECRET.to_string()),
        roles: vec![],
        tiers: vec![],
        timeout: Duration::from_millis(timeout_ms),
        max_in_flight: in_flight,
    }
}

pub fn spec(r: Receiver) -> ReceiverSpec {
    let transport = Arc::new(Http::new(r.timeout));
    ReceiverSpec {
        settings: r,
        transport,
    }
}

pub fn config() -> EngineConfig {
    EngineConfig {
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        links: Links::new("https://inbox.example"),
        sweep: Duration::from_millis(50),
    }
}

pub fn render(r: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&r.gather(), &mut buf)
        .unwrap();
    String::from_utf8(buf).unwrap()
}

/// The value of one sample in the exposition text.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

pub fn count(text: &str, receiver: &str, result: &str) -> f64 {
    sample(
        text,
        &format!("handoff_notifications_total{{receiver=\"{receiver}\",result=\"{result}\"}}"),
    )
}

pub async fn until(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < within,
            "{what} not reached within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn of(entries: &[LedgerEntry], receiver: &str) -> Vec<(u32, Status, Option<u16>)> {
    entries
        .iter()
        .filter(|e| e.receiver == receiver)
        .map(|e| (e.attempt, e.status, e.http_status))
        .collect()
}

pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}

pub fn percentile(mut v: Vec<u64>, p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}
