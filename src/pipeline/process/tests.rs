//! The processor without a broker: outputs per input record, dead letters, framing.
use super::*;
use crate::config::InputFormat;
use crate::event::wire::dlq_headers;
use crate::event::SchemaKind;
use crate::output::Topic;
use crate::sim::fleet::{Fleet, FleetConfig};

fn processor(settings: &Settings) -> Processor {
    Processor::new(settings, Arc::new(Matrix::default_matrix().unwrap())).unwrap()
}

/// The header of an action written with the current schema version.
fn v2() -> Vec<(String, Vec<u8>)> {
    crate::event::wire::version_headers(SchemaKind::AgentAction)
}

fn input<'a>(payload: &'a [u8], headers: &'a [(String, Vec<u8>)]) -> Input<'a> {
    Input {
        topic: "agent.actions",
        partition: 2,
        offset: 41,
        key: Some(b"sess"),
        payload: Some(payload),
        headers,
    }
}

#[test]
fn every_valid_event_yields_one_verdict_and_one_escalation_per_role() {
    let settings = Settings::default();
    let mut p = processor(&settings);
    let codec = Codec::new(Default::default()).unwrap();
    let mut fleet = Fleet::new(FleetConfig {
        trigger_boost: 8.0,
        ..Default::default()
    });
    let mut out = Vec::new();
    for _ in 0..500 {
        let e = fleet.next_event();
        let bytes = codec.encode(SchemaKind::AgentAction, &e).unwrap();
        out.clear();
        let outcome = p.process(input(&bytes, &v2()), 1, &mut out).unwrap();
        assert!(
            matches!(outcome, Outcome::Decided { .. }),
            "valid event dead-lettered"
        );
        assert_eq!(out.iter().filter(|o| o.topic == Topic::Verdicts).count(), 1);
        let verdict = out.iter().find(|o| o.topic == Topic::Verdicts).unwrap();
        let v: crate::event::Verdict = codec.decode(SchemaKind::Verdict, &verdict.payload).unwrap();
        assert_eq!(v.action_id, e.action_id);
        assert_eq!(verdict.key.as_deref(), Some(e.action_id.as_bytes()));
        let roles = &v.roles;
        let changelog = out.iter().filter(|o| o.topic == Topic::Changelog).count();
        assert_eq!(out.len(), 1 + roles.len() + changelog);
        assert!(changelog <= 1, "one session, at most one state write");
        if !roles.is_empty() {
            assert_eq!(changelog, 1, "opened escalations are state");
        }
        for (o, role) in out.iter().zip(roles) {
            let topic = &p.matrix().roles()[p.matrix().role_index(role).unwrap()].topic;
            assert_eq!(p.topics().name(o.topic, o.drill), topic);
            assert_eq!(o.key.as_deref(), Some(e.session_id.as_bytes()));
        }
        for o in out.iter().filter(|o| o.topic == Topic::Changelog) {
            assert_eq!(o.partition, Some(2), "state stays in the input's partition");
            assert_eq!(o.key.as_deref(), Some(e.session_id.as_bytes()));
        }
    }
}

#[test]
fn bad_records_become_dead_letters_with_their_bytes_and_connect_headers() {
    let settings = Settings::default();
    let mut p = processor(&settings);
    let original = vec![("trace".to_string(), b"abc".to_vec())];
    let mut out = Vec::new();
    let outcome = p
        .process(input(b"\x02garbage", &original), 1, &mut out)
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::DeadLetter {
            reason: "avro_decode"
        }
    );
    assert_eq!(out.len(), 1);
    let dl = &out[0];
    assert_eq!(dl.topic, Topic::DeadLetters);
    assert_eq!(dl.payload, b"\x02garbage");
    assert_eq!(dl.key.as_deref(), Some(&b"sess"[..]));
    let h = |k: &str| {
        dl.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| String::from_utf8_lossy(v).to_string())
            .unwrap_or_else(|| panic!("missing header {k}"))
    };
    assert_eq!(h("trace"), "abc");
    assert_eq!(h(dlq_headers::TOPIC), "agent.actions");
    assert_eq!(h(dlq_headers::PARTITION), "2");
    assert_eq!(h(dlq_headers::OFFSET), "41");
    assert_eq!(h(dlq_headers::CLASS), "avro_decode");
    assert!(h(dlq_headers::MESSAGE).contains("AgentAction"));
}

#[test]
fn confluent_framing_is_checked() {
    let mut settings = Settings::default();
    settings.input.format = InputFormat::Confluent;
    settings.input.schema_ids = vec![7];
    let mut p = processor(&settings);
    let codec = Codec::new(Default::default()).unwrap();
    let e = Fleet::new(FleetConfig::default()).next_event();
    let datum = codec.encode(SchemaKind::AgentAction, &e).unwrap();
    let framed = |id: u32| {
        let mut b = vec![0u8];
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&datum);
        b
    };
    let mut out = Vec::new();
    assert!(matches!(
        p.process(input(&framed(7), &v2()), 1, &mut out).unwrap(),
        Outcome::Decided { .. }
    ));
    out.clear();
    assert_eq!(
        p.process(input(&framed(8), &v2()), 1, &mut out).unwrap(),
        Outcome::DeadLetter {
            reason: "unknown_schema"
        }
    );
    out.clear();
    assert_eq!(
        p.process(input(&datum, &v2()), 1, &mut out).unwrap(),
        Outcome::DeadLetter {
            reason: "wire_format"
        }
    );
}

#[test]
fn out_of_range_values_and_oversized_records_are_dead_letters() {
    let mut settings = Settings::default();
    settings.input.max_record_bytes = 2048;
    let mut p = processor(&settings);
    let codec = Codec::new(Default::default()).unwrap();
    let mut e = Fleet::new(FleetConfig::default()).next_event();
    e.confidence = Some(3.0);
    let bytes = codec.encode(SchemaKind::AgentAction, &e).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        p.process(input(&bytes, &v2()), 1, &mut out).unwrap(),
        Outcome::DeadLetter {
            reason: "invalid_field"
        }
    );
    let msg = String::from_utf8(
        out[0]
            .headers
            .iter()
            .find(|(k, _)| k == dlq_headers::MESSAGE)
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    assert!(msg.contains("`confidence`") && msg.contains('3'), "{msg}");
    out.clear();
    assert_eq!(
        p.process(input(&vec![0u8; 3000], &[]), 1, &mut out)
            .unwrap(),
        Outcome::DeadLetter {
            reason: "too_large"
        }
    );
}
