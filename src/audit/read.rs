//! Reading what [`super::join`] needs from the topics: verdicts, human decisions and the
//! inbox's audit from the range's start on (an action decided in the range may be answered
//! later), escalations from every role topic of the matrix, and the input events from a day
//! before the range (to hash them). Records that cannot be decoded are counted, not fatal.

use super::Records;
use crate::config::Settings;
use crate::event::wire::KIND_HEADER;
use crate::event::{Codec, SchemaKind};
use crate::matrix::Matrix;
use crate::replay::source::{self, Range, Recorded, SourceError};
use serde_json::{json, Value};
use std::collections::HashMap;

/// How far before the range input events are read.
const EVENTS_BEFORE_MS: i64 = 24 * 3600 * 1000;

/// The records for actions decided in `[from_ms, to_ms)`, and what was read (for the header).
pub fn read(
    settings: &Settings,
    matrix: &Matrix,
    from_ms: i64,
    to_ms: i64,
) -> Result<(Records, Value), SourceError> {
    let codec = Codec::new(Default::default()).expect("the shipped schemas parse");
    let t = &settings.topics;
    let after = Range {
        from_ms: Some(from_ms),
        to_ms: None,
    };
    let mut sources = serde_json::Map::new();
    let mut r = Records::default();
    let mut note = |topic: &str, read: usize, bad: usize| {
        sources.insert(
            topic.to_string(),
            json!({"records": read, "unreadable": bad}),
        );
    };
    let recs = topic(settings, &t.verdicts, after)?;
    let (v, bad) = decode(&recs, |b| codec.decode(SchemaKind::Verdict, b).ok());
    note(&t.verdicts, recs.len(), bad);
    r.verdicts = v;
    let recs = topic(settings, &t.canaries, after)?;
    let (v, bad) = decode(&recs, |b| codec.decode(SchemaKind::Verdict, b).ok());
    note(&t.canaries, recs.len(), bad);
    r.canaries = v;
    let recs = topic(settings, &t.decisions, after)?;
    let (v, bad) = decode(&recs, |b| codec.decode(SchemaKind::HumanDecision, b).ok());
    note(&t.decisions, recs.len(), bad);
    r.decisions = v;
    let recs = topic(settings, &t.audit, after)?;
    let (v, bad) = decode(&recs, |b| serde_json::from_slice(b).ok());
    note(&t.audit, recs.len(), bad);
    r.views = v;
    for role in matrix.roles() {
        let name = format!("{}{}", t.role_prefix, role.topic);
        let recs: Vec<Recorded> = topic(settings, &name, after)?
            .into_iter()
            .filter(|x| kind(x) == "escalation")
            .collect();
        let (v, bad) = decode(&recs, |b| codec.decode(SchemaKind::Escalation, b).ok());
        note(&name, recs.len(), bad);
        r.escalations.extend(v);
    }
    let events = Range {
        from_ms: Some(from_ms.saturating_sub(EVENTS_BEFORE_MS)),
        to_ms: Some(to_ms),
    };
    let recs = topic(settings, &t.input, events)?;
    let (v, bad) = decode(&recs, |b| codec.decode_action(b).ok());
    note(&t.input, recs.len(), bad);
    r.events = v;
    Ok((r, Value::Object(sources)))
}

/// A topic's records in `range`; an empty range or a missing topic is no records.
pub(crate) fn topic(
    settings: &Settings,
    name: &str,
    range: Range,
) -> Result<Vec<Recorded>, SourceError> {
    match source::read(settings, name, range, &HashMap::new()) {
        Ok(r) => Ok(r),
        Err(SourceError::Empty { .. } | SourceError::MissingTopic(..)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn kind(r: &Recorded) -> &str {
    r.headers
        .iter()
        .find(|(k, _)| k == KIND_HEADER)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or("escalation")
}

/// Decodes every value; returns what decoded and how many did not.
fn decode<T>(recs: &[Recorded], f: impl Fn(&[u8]) -> Option<T>) -> (Vec<T>, usize) {
    let mut bad = 0;
    let out = recs
        .iter()
        .filter_map(|r| {
            let v = r.payload.as_deref().and_then(&f);
            bad += usize::from(v.is_none());
            v
        })
        .collect();
    (out, bad)
}
