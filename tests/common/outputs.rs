//! What a broker test expects on the output topics: the same records through handoff's
//! processor without a broker, and a check of what the broker holds against it.

use super::kafka::*;
use handoff::matrix::Matrix;
use std::collections::{BTreeMap, BTreeSet};

/// The deterministic fields of a verdict: level, triggers, roles, escalation ids.
pub type VerdictKey = (String, Vec<String>, Vec<String>, Vec<String>);

/// What the outputs must be: verdict fields by action id, escalation ids by role topic, and
/// how many escalation records each topic gets (a grouped action updates an open escalation
/// under its id, so one id can have several records).
pub struct Expected {
    pub verdicts: BTreeMap<String, VerdictKey>,
    pub escalations: BTreeMap<String, BTreeSet<String>>,
    pub escalation_records: BTreeMap<String, usize>,
}

pub fn expected(recs: &[Sent]) -> Expected {
    expected_with(&Matrix::default_matrix().unwrap(), recs)
}

/// The outputs of the same records through handoff's processor, without a broker: decisions,
/// grouping and ids as the stream makes them (one partition; sessions are independent, so the
/// partitioning does not change them).
pub fn expected_with(m: &Matrix, recs: &[Sent]) -> Expected {
    use handoff::event::{Codec, Escalation, SchemaKind, Verdict};
    use handoff::pipeline::process::{Input, Processor, Stage};
    let mut p = Processor::new(
        &handoff::config::Settings::default(),
        std::sync::Arc::new(m.clone()),
    )
    .unwrap();
    let codec = Codec::new(Default::default()).unwrap();
    let topics = p.topics().clone();
    let mut verdicts = BTreeMap::new();
    let mut escalations: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut escalation_records: BTreeMap<String, usize> = BTreeMap::new();
    for r in m.roles() {
        escalations.insert(r.topic.clone(), BTreeSet::new());
        escalation_records.insert(r.topic.clone(), 0);
    }
    let now = 1_800_000_000_000;
    let mut out = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let headers: Vec<(String, Vec<u8>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
        if r.event.is_none() {
            continue;
        }
        out.clear();
        p.process(
            Input {
                topic: INPUT,
                partition: 0,
                offset: i as i64,
                key: Some(&r.key),
                payload: Some(&r.bytes),
                headers: &headers,
            },
            now,
            &mut out,
        )
        .unwrap();
        for o in &out {
            let topic = topics.name(o.topic, o.drill);
            if topic == VERDICTS {
                let v: Verdict = codec.decode(SchemaKind::Verdict, &o.payload).unwrap();
                verdicts.insert(v.action_id.clone(), verdict_key(&v));
            } else if let Some(ids) = escalations.get_mut(topic) {
                let e: Escalation = codec.decode(SchemaKind::Escalation, &o.payload).unwrap();
                ids.insert(e.escalation_id);
                *escalation_records.get_mut(topic).unwrap() += 1;
            }
        }
    }
    Expected {
        verdicts,
        escalations,
        escalation_records,
    }
}

pub fn verdict_key(v: &handoff::event::Verdict) -> VerdictKey {
    (
        v.level.as_str().to_string(),
        v.triggers.clone(),
        v.roles.clone(),
        v.escalation_ids.clone(),
    )
}

/// The shipped matrix, written to a file for `handoff run`. Session state (the streak behind
/// `consecutive_low_confidence`) is restored from the changelog, so restart tests check every
/// trigger's outputs exactly, streaks included.
pub fn shipped_matrix(dir: &std::path::Path) -> (Matrix, String) {
    let text = handoff::matrix::DEFAULT_MATRIX_TOML;
    let path = dir.join("matrix.toml");
    std::fs::write(&path, text).unwrap();
    let m = Matrix::from_toml_str(text, handoff::matrix::MatrixSource::Default).unwrap();
    (
        m,
        format!("[matrix]\npath = {:?}\n", path.display().to_string()),
    )
}

/// Checks that every expected output is there, returns (verdict duplicates, escalation
/// duplicates); every duplicate must be identical in its deterministic fields.
pub fn check_outputs(bootstrap: &str, exp: &Expected) -> (usize, usize) {
    check_outputs_with(bootstrap, exp, &Matrix::default_matrix().unwrap())
}

pub fn check_outputs_with(bootstrap: &str, exp: &Expected, m: &Matrix) -> (usize, usize) {
    let vs = verdicts(bootstrap);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for v in &vs {
        let want = exp
            .verdicts
            .get(&v.action_id)
            .unwrap_or_else(|| panic!("unexpected verdict for {}", v.action_id));
        assert_eq!(&verdict_key(v), want, "verdict for {}", v.action_id);
        *seen.entry(v.action_id.clone()).or_default() += 1;
    }
    let missing: Vec<&String> = exp
        .verdicts
        .keys()
        .filter(|k| !seen.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} verdict(s) missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let vdups = vs.len() - seen.len();
    let mut edups = 0;
    for (topic, want) in &exp.escalations {
        let got = escalations(bootstrap, topic);
        let ids: BTreeSet<String> = got.iter().map(|e| e.escalation_id.clone()).collect();
        assert_eq!(&ids, want, "escalation ids on {topic}");
        let role = m.roles().iter().find(|r| &r.topic == topic).unwrap();
        for e in &got {
            assert_eq!(
                e.role, role.name,
                "an escalation on {topic} for another role"
            );
            assert_eq!(e.context.view, role.view);
            assert_eq!(e.rule_version, m.version());
        }
        assert!(
            got.len() >= exp.escalation_records[topic],
            "{topic}: {} records, {} expected",
            got.len(),
            exp.escalation_records[topic]
        );
        edups += got.len() - exp.escalation_records[topic];
    }
    (vdups, edups)
}
