//! Schema versions: every shipped version of each record's schema reads the one before it
//! (BACKWARD-compatible, as a schema registry set to BACKWARD checks), records written with an
//! older version are read into today's types — plain by the header `handoff.schema.version`
//! (none: version 1), or through a registry's writer schema — and a version this handoff does
//! not ship is a dead letter naming the header and its value.

mod common;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use common::base_event;
use common::run::Run;
use handoff::error::{Classify, ErrorClass};
use handoff::event::wire::{version_header, SCHEMA_VERSION_HEADER};
use handoff::event::*;
use handoff::matrix::{Matrix, SessionState};
use handoff::pipeline::process::{Outcome, Processor};
use std::sync::Arc;

fn codec() -> Codec {
    Codec::new(EventLimits::default()).unwrap()
}

fn versions(kind: SchemaKind) -> Vec<Schema> {
    kind.versions()
        .iter()
        .map(|t| Schema::parse_str(t).unwrap())
        .collect()
}

/// `value` written with version 1 of `kind`'s schema, as a producer before version 2 wrote it.
fn written_with_v1<T: serde::Serialize>(kind: SchemaKind, value: &T) -> Vec<u8> {
    let v1 = &versions(kind)[0];
    let value = apache_avro::to_value(value).unwrap().resolve(v1).unwrap();
    apache_avro::to_avro_datum(v1, value).unwrap()
}

fn header(version: &str) -> Vec<(String, Vec<u8>)> {
    vec![(
        SCHEMA_VERSION_HEADER.to_string(),
        version.as_bytes().to_vec(),
    )]
}

#[test]
fn each_version_reads_the_one_before_it() {
    let mut checked = 0;
    for kind in SchemaKind::ALL {
        let vs = versions(kind);
        for pair in vs.windows(2) {
            let (older, newer) = (&pair[0], &pair[1]);
            // BACKWARD: a reader of the new schema reads data written with the old one.
            SchemaCompatibility::can_read(older, newer).unwrap_or_else(|e| {
                panic!("{}: the new version cannot read the old: {e}", kind.name())
            });
            checked += 1;
        }
        assert_eq!(vs.len() as u32, kind.current_version());
        assert_eq!(
            version_header(kind).is_some(),
            vs.len() > 1,
            "{}: the header is written exactly when there is more than one version",
            kind.name()
        );
    }
    assert_eq!(
        checked, 5,
        "AgentAction, Escalation, Verdict and HumanDecision have a version 2, Verdict a version 3"
    );
    // And the change is a real one: version 1 cannot read a version-2 action (null confidence).
    let a = versions(SchemaKind::AgentAction);
    assert!(SchemaCompatibility::can_read(&a[1], &a[0]).is_err());
}

#[test]
fn an_action_written_before_version_2_is_read_plain_and_through_a_registry() {
    let c = codec();
    let mut e = base_event();
    e.confidence = Some(0.42);
    let old = written_with_v1(SchemaKind::AgentAction, &e);
    // Plain, no header: version 1, on the typed decoder.
    let plain = c.decode_action_record(&[], &old).unwrap();
    assert_eq!(plain, e);
    assert_eq!(plain.confidence, Some(0.42));
    assert_eq!(plain.tool_call, None);
    // Named version 1 explicitly: the same.
    assert_eq!(c.decode_action_record(&header("1"), &old).unwrap(), e);
    // Through a registry: the writer schema is version 1, resolved to today's.
    let v1 = &versions(SchemaKind::AgentAction)[0];
    assert_eq!(c.decode_action_resolved(v1, &old).unwrap(), e);
    // Today's datum is not version 1: without its header it is refused, never misread.
    let new = c.encode(SchemaKind::AgentAction, &e).unwrap();
    assert_ne!(new, old, "the layouts differ");
    assert!(c.decode_action_record(&[], &new).is_err());
    assert_eq!(c.decode_action_record(&header("2"), &new).unwrap(), e);
}

#[test]
fn decisions_and_verdicts_written_before_version_2_are_still_read() {
    let c = codec();
    let d = HumanDecision {
        escalation_id: "esc-1".into(),
        action_id: "act-1".into(),
        session_id: "sess-1".into(),
        role: "support".into(),
        decided_by: "ana".into(),
        decision: DecisionKind::Revise,
        comment: None,
        revised_output: Some("Refunded 30 EUR.".into()),
        redirect_role: None,
        decided_at_ms: 1_798_761_600_000,
        drill: false,
        chosen_option: None,
        revised_arguments: None,
    };
    let old = written_with_v1(SchemaKind::HumanDecision, &d);
    let read: HumanDecision = c
        .decode_record(SchemaKind::HumanDecision, &[], &old)
        .unwrap();
    assert_eq!(read, d);
    let mut v2 = d.clone();
    v2.revised_arguments = Some(r#"{"amount":30}"#.into());
    let new = c.encode(SchemaKind::HumanDecision, &v2).unwrap();
    let read: HumanDecision = c
        .decode_record(SchemaKind::HumanDecision, &header("2"), &new)
        .unwrap();
    assert_eq!(read, v2);
    let m = Matrix::default_matrix().unwrap();
    let e = base_event();
    let decided = m.evaluate(&e, &SessionState::default());
    let verdict = handoff::escalation::plan(&m, &e, &decided, e.timestamp_ms, false).verdict;
    let old = written_with_v1(SchemaKind::Verdict, &verdict);
    let read: Verdict = c.decode_record(SchemaKind::Verdict, &[], &old).unwrap();
    assert_eq!(read, verdict);
}

#[test]
fn a_version_this_handoff_does_not_ship_is_a_dead_letter_naming_the_header() {
    let c = codec();
    let bytes = c.encode(SchemaKind::AgentAction, &base_event()).unwrap();
    for (value, shown) in [("3", "\"3\""), ("two", "\"two\""), ("0", "\"0\"")] {
        let err = c.decode_action_record(&header(value), &bytes).unwrap_err();
        assert_eq!(err.class(), ErrorClass::DeadLetter, "{err}");
        assert_eq!(err.reason(), "schema_version");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("handoff.schema.version = {shown}")),
            "{msg}"
        );
        assert!(msg.contains("versions 1 to 2"), "{msg}");
    }
}

#[test]
fn a_tool_call_without_a_confidence_round_trips_in_avro_and_json() {
    let c = codec();
    let mut e = base_event();
    e.confidence = None;
    e.tool_call = Some(ToolCall {
        name: "issue_refund".into(),
        arguments: r#"{"amount":1200,"order_id":"o-7"}"#.into(),
        call_id: Some("call_1".into()),
        framework: Some("langgraph".into()),
        run_id: Some("thread-9".into()),
        arguments_schema: Some(r#"{"type":"object"}"#.into()),
    });
    let bytes = c.encode(SchemaKind::AgentAction, &e).unwrap();
    assert_eq!(c.decode_action(&bytes).unwrap(), e);
    assert_eq!(
        c.decode_generic::<AgentAction>(SchemaKind::AgentAction, &bytes)
            .unwrap(),
        e,
        "the reference decoder agrees"
    );
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(c.decode_action_json(&json).unwrap(), e);
    // In JSON a missing confidence is no confidence, as is null.
    let without: serde_json::Value = {
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v.as_object_mut().unwrap().remove("confidence");
        v
    };
    assert_eq!(c.decode_action_json(&without.to_string()).unwrap(), e);
}

#[test]
fn a_bad_tool_call_is_a_dead_letter_naming_the_field_and_value() {
    let c = codec();
    let call = |arguments: &str| ToolCall {
        name: "issue_refund".into(),
        arguments: arguments.into(),
        call_id: None,
        framework: None,
        run_id: None,
        arguments_schema: None,
    };
    type Case = (ToolCall, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (call("[1, 2]"), "tool_call.arguments", "[1, 2]"),
        (call("{\"amount\": "), "tool_call.arguments", "amount"),
        (
            ToolCall {
                name: " ".into(),
                ..call("{}")
            },
            "tool_call.name",
            "\" \"",
        ),
        (
            ToolCall {
                arguments_schema: Some("\"object\"".into()),
                ..call("{}")
            },
            "tool_call.arguments_schema",
            "object",
        ),
    ];
    for (bad, field, value) in cases {
        let mut e = base_event();
        e.tool_call = Some(bad);
        let bytes = c.encode(SchemaKind::AgentAction, &e).unwrap();
        let err = c.decode_action(&bytes).unwrap_err();
        assert_eq!(err.reason(), "invalid_field");
        let msg = err.to_string();
        assert!(msg.contains(&format!("`{field}`")), "{msg}");
        assert!(msg.contains(value), "{msg} should name {value}");
    }
}

/// What a processor does with an action record carrying `headers`.
fn process(bytes: &[u8], headers: &[(String, Vec<u8>)]) -> (Outcome, Vec<handoff::output::Output>) {
    let matrix = Arc::new(Matrix::default_matrix().unwrap());
    let mut run = Run::new(Processor::new(&Default::default(), matrix).unwrap());
    let outcome = run.record_with("agent.actions", "sess-1", bytes, headers, 1_798_761_600_001);
    (outcome, run.out)
}

#[test]
fn the_processor_reads_both_versions_and_writes_escalations_of_version_2_with_their_header() {
    let c = codec();
    let mut e = base_event();
    e.action_type = "refund.issue".into();
    e.amount = Some(5_000.0);
    e.currency = Some("EUR".into());
    e.confidence = None;
    e.tool_call = Some(ToolCall {
        name: "issue_refund".into(),
        arguments: r#"{"amount":5000}"#.into(),
        call_id: None,
        framework: Some("openai-agents".into()),
        run_id: None,
        arguments_schema: None,
    });
    let new = c.encode(SchemaKind::AgentAction, &e).unwrap();
    let (outcome, out) = process(&new, &header("2"));
    assert!(matches!(outcome, Outcome::Decided { .. }), "{outcome:?}");
    let escalations: Vec<_> = out
        .iter()
        .filter(|o| matches!(o.topic, handoff::output::Topic::Role(_)))
        .collect();
    assert!(
        !escalations.is_empty(),
        "over the limit, no confidence: escalated"
    );
    for o in &escalations {
        let v = o
            .headers
            .iter()
            .find(|(k, _)| k == SCHEMA_VERSION_HEADER)
            .map(|(_, v)| v.as_slice());
        assert_eq!(v, Some(&b"2"[..]));
        let x: Escalation = c
            .decode_record(SchemaKind::Escalation, &o.headers, &o.payload)
            .unwrap();
        assert_eq!(x.context.confidence, None);
        assert_eq!(x.context.tool_call, e.tool_call);
        assert!(
            x.context.headline.contains("no confidence given"),
            "{}",
            x.context.headline
        );
    }
    // The same bytes without the header are read as version 1: not a datum of it, a dead letter.
    let (outcome, _) = process(&new, &[]);
    assert!(matches!(outcome, Outcome::DeadLetter { .. }), "{outcome:?}");
    // A version-1 record without the header, as every producer wrote before: decided.
    e.confidence = Some(0.9);
    e.tool_call = None;
    let (outcome, _) = process(&written_with_v1(SchemaKind::AgentAction, &e), &[]);
    assert!(matches!(outcome, Outcome::Decided { .. }), "{outcome:?}");
}

/// The shipped matrix with `without_confidence = value` said.
fn shipped_saying(value: &str) -> Result<Matrix, handoff::matrix::MatrixError> {
    let text = handoff::matrix::DEFAULT_MATRIX_TOML.replace(
        "# without_confidence = \"below\"",
        &format!("without_confidence = \"{value}\""),
    );
    Matrix::from_toml_str(&text, handoff::matrix::MatrixSource::Default)
}

#[test]
fn without_a_confidence_the_gate_fires_unless_the_matrix_says_it_passes() {
    let mut e = base_event();
    e.confidence = None;
    let closed = Matrix::default_matrix().unwrap();
    let d = closed.evaluate(&e, &SessionState::default());
    assert!(
        d.triggers.iter().any(|t| t.as_str() == "low_confidence"),
        "fail closed by default"
    );
    assert_eq!(d.session.consecutive_low, 1, "and the streak grows");
    let flag = d
        .flags
        .iter()
        .find(|f| f.trigger.as_str() == "low_confidence")
        .unwrap();
    let said = closed.describe(flag, &e);
    assert!(said.contains("no confidence given"), "{said}");
    let open = shipped_saying("passes").unwrap();
    let d = open.evaluate(&e, &SessionState::default());
    assert!(!d.triggers.iter().any(|t| t.as_str() == "low_confidence"));
    assert_eq!(d.session.consecutive_low, 0);
    // Saying the default changes nothing, not even the rule version; saying "passes" does.
    let said_default = shipped_saying("below").unwrap();
    assert_eq!(said_default.version(), closed.version());
    assert_ne!(open.version(), closed.version());
    let bad = shipped_saying("maybe").unwrap_err().to_string();
    assert!(
        bad.contains("triggers.low_confidence") && bad.contains("maybe"),
        "{bad}"
    );
}
