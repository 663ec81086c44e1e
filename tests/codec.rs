//! Round trips of all four record types through both Avro paths and JSON, cross-decoding
//! between the typed and the generic implementations, and clear errors for bad input.

mod common;

use common::{base_event, customer};
use handoff::config::Settings;
use handoff::error::{Classify, ErrorClass};
use handoff::event::*;
use handoff::matrix::{Matrix, SessionState};
use handoff::pipeline::process::{Input, Outcome, Processor};
use std::sync::Arc;

fn codec() -> Codec {
    Codec::new(EventLimits::default()).unwrap()
}

fn rich_event() -> AgentAction {
    let mut e = base_event();
    e.action_type = "refund.issue".into();
    e.output = Some("Refund of 250 EUR approved — merci, ünïcödé ✓".into());
    e.template_id = Some("tpl-9".into());
    e.options = vec!["refund".into(), "voucher".into()];
    e.status = ActionStatus::Failed;
    e.error = Some("gateway timeout".into());
    e.amount = Some(250.5);
    e.currency = Some("EUR".into());
    e.customer = customer(CustomerTier::Vip, 4);
    e.reversible = false;
    e.affects_others = true;
    e.user_message = Some("I want to talk to a human".into());
    e.attributes.insert("channel".into(), "chat".into());
    e.attributes.insert("anomaly".into(), "flash_crash".into());
    e
}

fn plan() -> (Verdict, Vec<Escalation>) {
    let m = Matrix::default_matrix().unwrap();
    let e = rich_event();
    let d = m.evaluate(&e, &SessionState::default());
    let mut p = handoff::escalation::plan(&m, &e, &d, e.timestamp_ms + 5, false);
    p.escalations[0].1.history.push(HistoryEntry {
        role: "support".into(),
        tier: Tier::Warm,
        escalated_at_ms: 1,
        reason: "deadline passed".into(),
    });
    p.escalations[0].1.sequence = 1;
    (
        p.verdict,
        p.escalations.into_iter().map(|(_, e)| e).collect(),
    )
}

fn decision() -> HumanDecision {
    HumanDecision {
        escalation_id: "esc-1".into(),
        action_id: "act-1".into(),
        session_id: "sess-1".into(),
        role: "support".into(),
        decided_by: "alice@example.com".into(),
        decision: DecisionKind::Revise,
        comment: Some("shorter please".into()),
        revised_output: Some("Refund approved.".into()),
        redirect_role: None,
        decided_at_ms: 1_798_761_700_000,
        drill: true,
        chosen_option: None,
        revised_arguments: None,
    }
}

/// Encodes with each implementation and decodes each encoding with both: all four must give
/// back the value. (The bytes may differ: apache-avro writes map entries in hash order.)
fn round_trip<T>(kind: SchemaKind, value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let c = codec();
    let fast = c.encode(kind, value).unwrap();
    let generic = c.encode_generic(kind, value).unwrap();
    assert_eq!(
        fast.len(),
        generic.len(),
        "{kind:?}: encodings differ in size"
    );
    for (name, bytes) in [("typed", &fast), ("generic", &generic)] {
        let a: T = c.decode(kind, bytes).unwrap();
        let b: T = c.decode_generic(kind, bytes).unwrap();
        assert!(
            &a == value,
            "{kind:?}: typed decode of the {name} encoding differs"
        );
        assert!(
            &b == value,
            "{kind:?}: generic decode of the {name} encoding differs"
        );
    }
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, value, "{kind:?} JSON");
}

#[test]
fn agent_action_round_trips() {
    round_trip(SchemaKind::AgentAction, &base_event());
    round_trip(SchemaKind::AgentAction, &rich_event());
}

#[test]
fn verdict_round_trips() {
    let (v, _) = plan();
    assert!(!v.escalation_ids.is_empty());
    round_trip(SchemaKind::Verdict, &v);
}

#[test]
fn escalation_round_trips() {
    let (_, escs) = plan();
    assert!(escs.len() >= 3, "the rich event fans out to several roles");
    for e in &escs {
        round_trip(SchemaKind::Escalation, e);
    }
}

#[test]
fn human_decision_round_trips() {
    round_trip(SchemaKind::HumanDecision, &decision());
    let mut d = decision();
    d.decision = DecisionKind::Redirect;
    d.redirect_role = Some("compliance".into());
    d.revised_output = None;
    round_trip(SchemaKind::HumanDecision, &d);
    d.decision = DecisionKind::Approve;
    d.redirect_role = None;
    d.chosen_option = Some("Voucher of 50 EUR".into());
    round_trip(SchemaKind::HumanDecision, &d);
}

#[test]
fn json_form_fills_defaults_and_names_missing_fields() {
    let c = codec();
    let minimal = r#"{"action_id":"a","session_id":"s","agent_id":"g","timestamp_ms":1,
        "action_type":"email.send","confidence":0.9,"request":"r","summary":"s",
        "reversible":true,"affects_others":false}"#;
    let e = c.decode_action_json(minimal).unwrap();
    assert_eq!(e.status, ActionStatus::Proposed);
    assert!(e.options.is_empty() && e.attributes.is_empty() && e.customer.is_none());

    // No confidence is not a missing field: the agent's framework gave none.
    let missing = minimal.replace(r#""confidence":0.9,"#, "");
    assert_eq!(c.decode_action_json(&missing).unwrap().confidence, None);
    let missing = minimal.replace(r#""request":"r","#, "");
    let err = c.decode_action_json(&missing).unwrap_err().to_string();
    assert!(err.contains("missing field `request`"), "{err}");

    let unknown = minimal.replace(r#""request""#, r#""requets""#);
    let err = c.decode_action_json(&unknown).unwrap_err().to_string();
    assert!(err.contains("requets"), "{err}");
}

#[test]
fn invalid_values_are_dead_letters_naming_field_and_value() {
    let c = codec();
    /// A corruption, the field it breaks, and the value the message must show.
    type Case = (fn(&mut AgentAction), &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (|e| e.confidence = Some(1.5), "confidence", "1.5"),
        (|e| e.confidence = Some(f64::NAN), "confidence", "NaN"),
        (|e| e.action_id = " ".into(), "action_id", "\" \""),
        (
            |e| e.action_type = "Email.Send".into(),
            "action_type",
            "Email.Send",
        ),
        (|e| e.timestamp_ms = 0, "timestamp_ms", "0"),
        (|e| e.amount = Some(-3.0), "amount", "-3"),
        (|e| e.currency = Some("euro".into()), "currency", "euro"),
        (|e| e.request = "x".repeat(70_000), "request", "70000 bytes"),
        (
            |e| e.customer = customer(CustomerTier::Vip, -1),
            "customer.prior_complaints",
            "-1",
        ),
    ];
    for (mutate, field, value) in cases {
        let mut e = base_event();
        mutate(&mut e);
        let bytes = c.encode(SchemaKind::AgentAction, &e).unwrap();
        let err = c.decode_action(&bytes).unwrap_err();
        assert_eq!(err.class(), ErrorClass::DeadLetter);
        assert_eq!(err.reason(), "invalid_field");
        let msg = err.to_string();
        assert!(msg.contains(&format!("`{field}`")), "{msg}");
        assert!(msg.contains(value), "{msg} should name {value}");
    }
}

#[test]
fn garbage_and_truncated_avro_are_dead_letters() {
    let c = codec();
    let good = c.encode(SchemaKind::AgentAction, &rich_event()).unwrap();
    for bad in [&good[..good.len() / 2], &[0xff_u8; 7][..], &[][..]] {
        let err = c.decode_action(bad).unwrap_err();
        assert_eq!(err.class(), ErrorClass::DeadLetter, "{err}");
        assert_eq!(err.reason(), "avro_decode");
        assert!(c
            .decode_generic::<AgentAction>(SchemaKind::AgentAction, bad)
            .is_err());
    }
}

/// `bytes` with `extra` appended.
fn followed_by(bytes: &[u8], extra: &[u8]) -> Vec<u8> {
    [bytes, extra].concat()
}

/// Checks that `result` refuses a datum followed by `left` more bytes, naming them.
fn assert_trailing<T: std::fmt::Debug>(result: Result<T, CodecError>, name: &str, left: usize) {
    let err = result.unwrap_err();
    assert_eq!(err.class(), ErrorClass::DeadLetter, "{err}");
    assert_eq!(err.reason(), "trailing_bytes", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{left} byte(s) left after the {name} datum")),
        "{msg}"
    );
}

#[test]
fn a_datum_followed_by_more_bytes_is_a_dead_letter() {
    let c = codec();
    let action = c.encode(SchemaKind::AgentAction, &rich_event()).unwrap();
    for extra in [&[0u8][..], b"\x02garbage", &action] {
        let bytes = followed_by(&action, extra);
        assert_trailing(c.decode_action(&bytes), "AgentAction", extra.len());
        assert_trailing(
            c.decode::<AgentAction>(SchemaKind::AgentAction, &bytes),
            "AgentAction",
            extra.len(),
        );
        assert_trailing(
            c.decode_generic::<AgentAction>(SchemaKind::AgentAction, &bytes),
            "AgentAction",
            extra.len(),
        );
    }
    let decision = c.encode(SchemaKind::HumanDecision, &decision()).unwrap();
    let bytes = followed_by(&decision, &[0, 0]);
    assert_trailing(
        c.decode::<HumanDecision>(SchemaKind::HumanDecision, &bytes),
        "HumanDecision",
        2,
    );
    assert_trailing(
        c.decode_generic::<HumanDecision>(SchemaKind::HumanDecision, &bytes),
        "HumanDecision",
        2,
    );
}

#[test]
fn oversized_records_are_refused_before_decoding() {
    let c = codec().with_max_record_bytes(800);
    let err = c.decode_action(&vec![0u8; 801]).unwrap_err();
    assert_eq!(err.reason(), "too_large");
    assert!(err.to_string().contains("801"));
    let err = c.decode_action_json(&" ".repeat(801)).unwrap_err();
    assert_eq!(err.reason(), "too_large");
}

#[test]
fn the_record_cap_is_the_callers_not_a_multiple_of_the_text_limit() {
    let bytes = codec()
        .encode(SchemaKind::AgentAction, &large_event(700))
        .unwrap();
    assert_eq!(codec().decode_action(&bytes).unwrap(), large_event(700));
    let err = codec()
        .with_max_record_bytes(bytes.len() - 1)
        .decode_action(&bytes)
        .unwrap_err();
    assert_eq!(err.reason(), "too_large");
    let big = codec()
        .encode(SchemaKind::AgentAction, &large_event(1500))
        .unwrap();
    assert_eq!(
        codec().decode_action(&big).unwrap_err().reason(),
        "too_large"
    );
    let c = codec().with_max_record_bytes(2 * DEFAULT_MAX_RECORD_BYTES);
    assert_eq!(c.decode_action(&big).unwrap(), large_event(1500));
}

/// A valid event of about `kib` KiB: attributes of 64 000 bytes each, under the text limit.
fn large_event(kib: usize) -> AgentAction {
    let mut e = base_event();
    for i in 0..kib * 1024 / 64_000 {
        e.attributes
            .insert(format!("part-{i:02}"), "x".repeat(64_000));
    }
    e
}

/// What a processor with `input.max_record_bytes = max_record_bytes` does with `bytes`.
fn process_with_max_record_bytes(max_record_bytes: usize, bytes: &[u8]) -> Outcome {
    let mut settings = Settings::default();
    settings.input.max_record_bytes = max_record_bytes;
    let matrix = Arc::new(Matrix::default_matrix().unwrap());
    let mut p = Processor::new(&settings, matrix).unwrap();
    let input = Input {
        topic: "agent.actions",
        partition: 0,
        offset: 1,
        key: Some(b"sess-1"),
        payload: Some(bytes),
        headers: &common::run::version_headers(),
    };
    p.process(input, 1_798_761_600_001, &mut Vec::new())
        .unwrap()
}

#[test]
fn a_processor_decides_records_up_to_input_max_record_bytes() {
    const MIB: usize = 1024 * 1024;
    for (max_record_bytes, kib) in [(MIB, 700), (2 * MIB, 1500)] {
        let bytes = codec()
            .encode(SchemaKind::AgentAction, &large_event(kib))
            .unwrap();
        assert!(bytes.len() > (kib - 64) * 1024 && bytes.len() < max_record_bytes);
        let outcome = process_with_max_record_bytes(max_record_bytes, &bytes);
        assert!(
            matches!(outcome, Outcome::Decided { .. }),
            "{} bytes with input.max_record_bytes = {max_record_bytes}: {outcome:?}",
            bytes.len()
        );
    }
}

#[test]
fn shipped_schemas_parse_and_name_the_fixed_fields() {
    let c = codec();
    let schema = c.generic_schema(SchemaKind::AgentAction);
    let json = schema.canonical_form();
    for field in [
        "action_id",
        "session_id",
        "agent_id",
        "timestamp_ms",
        "action_type",
        "confidence",
        "request",
        "summary",
        "output",
        "template_id",
        "options",
        "status",
        "error",
        "amount",
        "currency",
        "customer",
        "reversible",
        "affects_others",
        "user_message",
        "attributes",
    ] {
        assert!(
            json.contains(&format!("\"{field}\"")),
            "schema lacks {field}"
        );
    }
}

#[test]
fn a_json_error_names_the_nested_field_it_is_in() {
    let c = codec();
    let bad = r#"{"action_id":"a","session_id":"s","agent_id":"g","timestamp_ms":1,
        "action_type":"email.send","request":"r","summary":"s","reversible":true,
        "affects_others":false,"customer":{"id":"c","tier":"platinum"}}"#;
    let err = c.decode_action_json(bad).unwrap_err().to_string();
    assert!(err.contains("field `customer.tier`"), "{err}");
    assert!(err.contains("platinum"), "{err}");
    let trailing = format!("{} {{}}", bad.replace("platinum", "vip"));
    let err = c.decode_action_json(&trailing).unwrap_err().to_string();
    assert!(err.contains("trailing"), "{err}");
}
