//! `handoff tail`: what handoff wrote or read on a topic, decoded, as JSON lines. Each topic's
//! form is known from the settings and the matrix: Avro events, verdicts, escalations, digests
//! and decisions; the changelog's binary or JSON session records; the inbox's audit and the
//! notification ledger as JSON; dead letters with their error headers. Pure: a record in, a
//! JSON value out.

use crate::config::{InputFormat, Settings};
use crate::event::wire::{self, KIND_HEADER};
use crate::event::{Codec, SchemaKind};
use crate::kafka::range::Recorded;
use crate::matrix::Matrix;
use crate::state::SessionRecord;
use serde_json::{json, Value};

/// What a topic holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Agent actions (Avro, or Confluent-framed Avro with `input.format = "confluent"`).
    Actions,
    /// Verdicts (the agents' and the canaries').
    Verdicts,
    /// A role topic: escalations and digests, told apart by the `handoff.kind` header.
    Role,
    /// The review queue: digests.
    Review,
    /// Human decisions.
    Decisions,
    /// The per-session changelog.
    State,
    /// Dead letters: the original bytes and the error headers.
    DeadLetters,
    /// JSON records (the inbox's audit, the notification ledger).
    Json,
}

impl Kind {
    /// The kind of `topic` under `settings` and `matrix` (its drill twin too); `None` for a
    /// topic handoff neither reads nor writes.
    pub fn of(topic: &str, settings: &Settings, matrix: &Matrix) -> Option<Kind> {
        let name = topic
            .strip_prefix(crate::config::DRILL_PREFIX)
            .filter(|_| !settings.is_drill());
        [Some(topic), name]
            .into_iter()
            .flatten()
            .find_map(|t| Kind::named(t, settings, matrix))
    }

    fn named(topic: &str, settings: &Settings, matrix: &Matrix) -> Option<Kind> {
        let t = &settings.topics;
        let fixed = [
            (&t.input, Kind::Actions),
            (&t.verdicts, Kind::Verdicts),
            (&t.canaries, Kind::Verdicts),
            (&t.review, Kind::Review),
            (&t.decisions, Kind::Decisions),
            (&t.changelog, Kind::State),
            (&t.dead_letter, Kind::DeadLetters),
            (&t.audit, Kind::Json),
            (&t.notifications, Kind::Json),
        ];
        if let Some((_, k)) = fixed.iter().find(|(name, _)| name.as_str() == topic) {
            return Some(*k);
        }
        let role = matrix
            .roles()
            .iter()
            .any(|r| t.role_topic(&r.topic) == topic);
        role.then_some(Kind::Role)
    }

    /// Every topic `settings` and `matrix` name, for an error that lists them.
    pub fn known(settings: &Settings, matrix: &Matrix) -> Vec<String> {
        let t = &settings.topics;
        let mut all: Vec<String> = [
            &t.input,
            &t.verdicts,
            &t.canaries,
            &t.review,
            &t.decisions,
            &t.changelog,
            &t.dead_letter,
            &t.audit,
            &t.notifications,
        ]
        .into_iter()
        .cloned()
        .collect();
        all.extend(matrix.roles().iter().map(|r| t.role_topic(&r.topic)));
        all
    }
}

/// Decodes records of one kind of topic.
pub struct Decoder {
    kind: Kind,
    codec: Codec,
    framed: bool,
}

impl Decoder {
    /// A decoder for `kind`, framing as `settings` says.
    pub fn new(kind: Kind, settings: &Settings) -> Decoder {
        Decoder {
            kind,
            codec: Codec::new(Default::default()).expect("the shipped schemas parse"),
            framed: settings.input.format == InputFormat::Confluent,
        }
    }

    /// One JSON line for `r`: where it is, its key and headers, what it is, and its decoded
    /// value — or, when it cannot be decoded, why and its bytes in base64.
    pub fn line(&self, topic: &str, r: &Recorded) -> Value {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let headers: serde_json::Map<String, Value> = r
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(text(v))))
            .collect();
        let mut line = json!({
            "topic": topic,
            "partition": r.partition,
            "offset": r.offset,
            "timestamp_ms": r.timestamp_ms,
            "key": r.key.as_deref().map(text),
            "headers": headers,
        });
        let (kind, value) = match r.payload.as_deref() {
            None => ("tombstone", Ok(Value::Null)),
            Some(b) => self.decode(r, b),
        };
        line["kind"] = kind.into();
        match value {
            Ok(v) => line["value"] = v,
            Err(e) => {
                use base64::Engine;
                line["error"] = e.into();
                let b = r.payload.as_deref().unwrap_or_default();
                line["value_base64"] = base64::engine::general_purpose::STANDARD.encode(b).into();
            }
        }
        line
    }

    fn decode(&self, r: &Recorded, b: &[u8]) -> (&'static str, Result<Value, String>) {
        let avro = |k: SchemaKind, b: &[u8]| -> Result<Value, String> {
            self.codec
                .decode_record::<Value>(k, &r.headers, b)
                .map_err(|e| e.to_string())
        };
        match self.kind {
            Kind::Actions => ("action", self.action(r, b)),
            Kind::Verdicts => ("verdict", avro(SchemaKind::Verdict, b)),
            Kind::Decisions => ("decision", avro(SchemaKind::HumanDecision, b)),
            Kind::Review => ("digest", avro(SchemaKind::Digest, b)),
            Kind::Role if r.header(KIND_HEADER) == Some("digest") => {
                ("digest", avro(SchemaKind::Digest, b))
            }
            Kind::Role => ("escalation", avro(SchemaKind::Escalation, b)),
            Kind::State => (
                "session_state",
                SessionRecord::decode(b)
                    .map_err(|e| e.to_string())
                    .and_then(|s| serde_json::to_value(s).map_err(|e| e.to_string())),
            ),
            Kind::DeadLetters => ("dead_letter", Ok(self.dead_letter(r, b))),
            Kind::Json => (
                "json",
                serde_json::from_slice(b).map_err(|e| format!("not JSON: {e}")),
            ),
        }
    }

    fn action(&self, r: &Recorded, b: &[u8]) -> Result<Value, String> {
        let datum = if self.framed {
            wire::split_frame(b).map_err(|e| e.message)?.1
        } else {
            b
        };
        self.codec
            .decode_record::<Value>(SchemaKind::AgentAction, &r.headers, datum)
            .map_err(|e| e.to_string())
    }

    /// A dead letter's original bytes, decoded as an action when they are one.
    fn dead_letter(&self, r: &Recorded, b: &[u8]) -> Value {
        match self.action(r, b) {
            Ok(v) => json!({"original": v}),
            Err(e) => json!({"original_error": e, "original_text": String::from_utf8_lossy(b)}),
        }
    }
}

/// True when `line`'s key, value or headers name `id` as its `field` (`action_id` or
/// `session_id`); a session's key is its id, so a session filter matches the changelog too.
pub fn names(line: &Value, field: &str, id: &str) -> bool {
    let v = &line["value"];
    let direct = v.get(field).and_then(Value::as_str) == Some(id);
    let nested = ["original", "event"]
        .iter()
        .any(|k| v.get(k).and_then(|x| x.get(field)).and_then(Value::as_str) == Some(id));
    let grouped = field == "action_id"
        && v.get("grouped_action_ids")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(id)));
    let keyed = field == "session_id" && line["key"].as_str() == Some(id);
    direct || nested || grouped || keyed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(payload: Vec<u8>, headers: Vec<(&str, &str)>) -> Recorded {
        Recorded {
            partition: 2,
            offset: 7,
            timestamp_ms: 1,
            key: Some(b"sess-1".to_vec()),
            payload: Some(payload),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn every_topic_of_the_settings_and_the_matrix_has_a_kind_and_others_none() {
        let s = Settings::default();
        let m = Matrix::default_matrix().unwrap();
        for t in Kind::known(&s, &m) {
            assert!(Kind::of(&t, &s, &m).is_some(), "{t}");
            let drill = format!("drill.{t}");
            assert_eq!(Kind::of(&drill, &s, &m), Kind::of(&t, &s, &m), "{drill}");
        }
        assert_eq!(Kind::of("escalations.support", &s, &m), Some(Kind::Role));
        assert_eq!(Kind::of("somebody.else", &s, &m), None);
    }

    #[test]
    fn records_decode_to_json_and_bad_ones_say_why() {
        let s = Settings::default();
        let codec = Codec::new(Default::default()).unwrap();
        let mut fleet = crate::sim::fleet::Fleet::new(Default::default());
        let mut e = fleet.next_event();
        e.action_id = "act-9".into();
        let bytes = codec.encode(SchemaKind::AgentAction, &e).unwrap();
        let d = Decoder::new(Kind::Actions, &s);
        let v2 = ("handoff.schema.version", "2");
        let line = d.line("agent.actions", &rec(bytes.clone(), vec![v2]));
        assert_eq!(line["kind"], "action");
        assert_eq!(line["headers"]["handoff.schema.version"], "2");
        assert_eq!(line["value"]["action_id"], "act-9");
        assert_eq!(
            (line["partition"].as_i64(), line["offset"].as_i64()),
            (Some(2), Some(7))
        );
        assert!(names(&line, "action_id", "act-9"));
        assert!(names(&line, "session_id", "sess-1"), "by key");
        assert!(!names(&line, "action_id", "act-8"));
        let bad = d.line("agent.actions", &rec(b"not avro".to_vec(), vec![]));
        assert!(
            bad["error"].as_str().unwrap().contains("AgentAction"),
            "{bad}"
        );
        assert_eq!(bad["value_base64"], "bm90IGF2cm8=");
        let dlq = Decoder::new(Kind::DeadLetters, &s).line(
            "agent.actions.dlq",
            &rec(bytes.clone(), vec![("handoff.error.class", "invalid"), v2]),
        );
        assert_eq!(dlq["value"]["original"]["action_id"], "act-9");
        assert_eq!(dlq["headers"]["handoff.error.class"], "invalid");
        assert!(names(&dlq, "action_id", "act-9"));
        // Without the header, a record is read as version 1: today's bytes are not one.
        let unversioned = d.line("agent.actions", &rec(bytes, vec![]));
        assert!(unversioned["error"].is_string(), "{unversioned}");
    }
}
