//! Reading what [`super::join`] needs from the topics, for the actions first decided in a
//! [`Window`]: verdicts, human decisions, the inbox's audit and the escalations of every role
//! topic of the matrix from the window's start to its end plus its settling time (an action
//! decided in the window may be answered later), and the input events of those actions (to hash
//! them) from an hour before the window. Every read ends where the topic ended when it started
//! (see [`crate::kafka::range`]), so a live topic is read in bounded time. Records that cannot
//! be decoded are counted, not fatal.

use super::Records;
use crate::config::Settings;
use crate::event::wire::KIND_HEADER;
use crate::event::{Codec, HumanDecision, SchemaKind};
use crate::kafka::range::{self as source, Range, SourceError};
use crate::kafka::record::{header, schema_version};
use crate::matrix::Matrix;
use crate::trust::DecisionTrust;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// How far before the window input events are read: an action's event precedes its first
/// verdict by the processor's lag, which an hour covers.
pub const EVENTS_BEFORE_MS: i64 = 3600 * 1000;

/// The actions first decided in `[from_ms, to_ms)`, followed for `settle_ms` after `to_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First decision time included, ms.
    pub from_ms: i64,
    /// First decision time excluded, ms.
    pub to_ms: i64,
    /// How long after `to_ms` answers and later verdicts are still read, ms.
    pub settle_ms: i64,
}

impl Window {
    /// What is read of the topics that follow the actions: the window and its settling time.
    fn followed(&self) -> Range {
        Range {
            from_ms: Some(self.from_ms),
            to_ms: Some(self.to_ms.saturating_add(self.settle_ms)),
        }
    }
}

/// Records read from one topic, for the pack's header.
#[derive(Debug, Default, Clone, Copy)]
struct Count {
    records: usize,
    unreadable: usize,
}

/// The records for the actions first decided in `w`, and what was read (for the header).
pub fn read(
    settings: &Settings,
    matrix: &Matrix,
    w: Window,
) -> Result<(Records, Value), SourceError> {
    let codec = Codec::new(Default::default()).expect("the shipped schemas parse");
    let t = &settings.topics;
    let after = w.followed();
    let mut sources = serde_json::Map::new();
    let mut note = |topic: &str, c: Count| {
        sources.insert(
            topic.to_string(),
            json!({"records": c.records, "unreadable": c.unreadable}),
        );
    };
    let mut r = Records::default();
    let verdict = |b: &[u8], v| {
        codec
            .decode_header_version(SchemaKind::Verdict, v, b)
            .map(Some)
            .map_err(drop)
    };
    let c;
    (r.verdicts, c) = collect(settings, &t.verdicts, after, |_| true, verdict)?;
    note(&t.verdicts, c);
    let c;
    (r.canaries, c) = collect(settings, &t.canaries, after, |_| true, verdict)?;
    note(&t.canaries, c);
    let c;
    (r.decisions, c) = decisions(settings, &codec, after)?;
    note(&t.decisions, c);
    let c;
    (r.views, c) = collect(
        settings,
        &t.audit,
        after,
        |_| true,
        |b, _| serde_json::from_slice(b).map(Some).map_err(drop),
    )?;
    note(&t.audit, c);
    let escalation = |b: &[u8], v| {
        codec
            .decode_header_version(SchemaKind::Escalation, v, b)
            .map(Some)
            .map_err(drop)
    };
    for role in matrix.roles() {
        let name = t.role_topic(&role.topic);
        let (v, c) = collect(settings, &name, after, is_escalation, escalation)?;
        note(&name, c);
        r.escalations.extend(v);
    }
    let wanted = first_decided(&r, w);
    let events = Range {
        from_ms: Some(w.from_ms.saturating_sub(EVENTS_BEFORE_MS)),
        to_ms: Some(w.to_ms),
    };
    let c;
    (r.events, c) = collect(
        settings,
        &t.input,
        events,
        |_| true,
        |b, v| {
            codec
                .decode_action_version(v, b)
                .map(|e| wanted.contains(e.action_id.as_str()).then_some(e))
                .map_err(drop)
        },
    )?;
    note(&t.input, c);
    Ok((r, Value::Object(sources)))
}

/// The ids of the actions whose first verdict was made in the window.
fn first_decided(r: &Records, w: Window) -> HashSet<String> {
    r.verdicts
        .iter()
        .chain(&r.canaries)
        .filter(|v| v.outcome.is_first() && (w.from_ms..w.to_ms).contains(&v.decided_at_ms))
        .map(|v| v.action_id.clone())
        .collect()
}

/// The values of `name` in `range` whose record passes `wanted` and that `decode` keeps
/// (`Ok(Some)`); a missing topic is no records. A value `decode` cannot read (`Err`), or a
/// record without one, is counted unreadable.
fn collect<T>(
    settings: &Settings,
    name: &str,
    range: Range,
    wanted: impl Fn(&BorrowedMessage<'_>) -> bool,
    decode: impl Fn(&[u8], Result<u32, String>) -> Result<Option<T>, ()>,
) -> Result<(Vec<T>, Count), SourceError> {
    let mut out = Vec::new();
    let mut c = Count::default();
    let scanned = source::scan(settings, name, range, &HashMap::new(), |m, _| {
        if !wanted(m) {
            return;
        }
        c.records += 1;
        let version = schema_version(m);
        match m.payload().ok_or(()).and_then(|b| decode(b, version)) {
            Ok(v) => out.extend(v),
            Err(()) => c.unreadable += 1,
        }
    });
    match scanned {
        Ok(_) | Err(SourceError::MissingTopic(..)) => Ok((out, c)),
        Err(e) => Err(e),
    }
}

/// The decisions the processor takes (only those are answers: a forged one changed nothing).
fn decisions(
    settings: &Settings,
    codec: &Codec,
    range: Range,
) -> Result<(Vec<HumanDecision>, Count), SourceError> {
    let trust = settings.trust.decision_trust();
    let taken = |m: &BorrowedMessage<'_>| taken_decision(&trust, codec, m);
    let decode = |b: &[u8], v| {
        codec
            .decode_header_version(SchemaKind::HumanDecision, v, b)
            .map(Some)
            .map_err(drop)
    };
    collect(settings, &settings.topics.decisions, range, taken, decode)
}

/// True for a decision the processor takes: signed by a trusted key that may vouch for its
/// role (any decision when no key is trusted).
fn taken_decision(trust: &DecisionTrust, codec: &Codec, m: &BorrowedMessage<'_>) -> bool {
    let value = m.payload().unwrap_or_default();
    let headers: Vec<(String, Vec<u8>)> = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let Ok(by) = trust.signature(&headers, value) else {
        return false;
    };
    codec
        .decode_header_version::<HumanDecision>(SchemaKind::HumanDecision, schema_version(m), value)
        .is_ok_and(|d| trust.vouches(&by, &d.role).is_ok())
}

/// True for an escalation on a role topic (not a digest).
fn is_escalation(m: &BorrowedMessage<'_>) -> bool {
    header(m, KIND_HEADER).is_none_or(|k| k == b"escalation")
}

/// A topic's records in `range`; an empty range or a missing topic is no records.
pub(crate) fn topic(
    settings: &Settings,
    name: &str,
    range: Range,
) -> Result<Vec<source::Recorded>, SourceError> {
    match source::read(settings, name, range, &HashMap::new()) {
        Ok(r) => Ok(r),
        Err(SourceError::Empty { .. } | SourceError::MissingTopic(..)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
