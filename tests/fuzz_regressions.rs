//! Every input the fuzz targets (fuzz/) found a fault with, kept in tests/fuzz-regressions/ as
//! `TARGET-what.bin` and run here through what that target checks, so the fix stays fixed in
//! the normal suite. fuzz/README.md lists each finding and its fix.

use handoff::event::{AgentAction, Codec, HumanDecision, SchemaKind};
use std::path::PathBuf;

fn findings(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{target}-")))
        })
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// What `fuzz/fuzz_targets/action_avro.rs` checks.
fn action_avro(codec: &Codec, data: &[u8]) {
    let typed = codec.decode::<AgentAction>(SchemaKind::AgentAction, data);
    let generic = codec.decode_generic::<AgentAction>(SchemaKind::AgentAction, data);
    if let (Ok(a), Ok(b)) = (&typed, &generic) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "the decoders disagree");
    }
}

#[test]
fn agent_action_datums_the_fuzzer_found() {
    let codec = Codec::new(Default::default()).unwrap();
    let found = findings("action_avro");
    assert!(!found.is_empty(), "the findings are where this test looks");
    for (name, data) in &found {
        action_avro(&codec, data);
        if name.contains("array-count") {
            // An array claiming 186 million items: refused by the allocation limit, not
            // reserved (7.4 GB).
            let e = codec
                .decode_generic::<AgentAction>(SchemaKind::AgentAction, data)
                .unwrap_err()
                .to_string();
            assert!(e.contains("allocat"), "{name}: {e}");
        }
    }
}

#[test]
fn human_decision_datums_the_fuzzer_found() {
    let codec = Codec::new(Default::default()).unwrap();
    for (name, data) in findings("decision_avro") {
        let typed = codec.decode::<HumanDecision>(SchemaKind::HumanDecision, &data);
        let generic = codec.decode_generic::<HumanDecision>(SchemaKind::HumanDecision, &data);
        if let (Ok(a), Ok(b)) = (&typed, &generic) {
            assert_eq!(a, b, "{name}");
        }
    }
}

/// What `fuzz/fuzz_targets/registry.rs` checks: a schema registry answer, then a record.
#[test]
fn schema_registry_answers_the_fuzzer_found() {
    use handoff::registry::client::RegisteredSchema;
    use handoff::registry::{RegistryDecoder, SchemaRegistry, Writer};
    let codec = Codec::new(Default::default()).unwrap();
    let settings = handoff::config::RegistrySettings::new("http://127.0.0.1:1");
    let registry = std::sync::Arc::new(SchemaRegistry::new(&settings, &codec).unwrap());
    let found = findings("registry");
    assert!(!found.is_empty());
    for (i, (name, data)) in found.iter().enumerate() {
        let at = data.iter().position(|b| *b == 0).unwrap_or(data.len());
        let schema: RegisteredSchema = serde_json::from_slice(&data[..at]).unwrap();
        let id = i as u32 + 1;
        let w = registry.learn(id, &schema);
        if name.contains("invalid-record-name") {
            // apache-avro panicked parsing it (an unwrap on the record's name).
            match &*w {
                Writer::Incompatible(why) => assert!(why.contains("apache-avro"), "{why}"),
                _ => panic!("{name}: taken as readable"),
            }
        }
        if name.contains("precision-not-an-integer") {
            // apache-avro parses it, then panicked making its canonical form.
            match &*w {
                Writer::Incompatible(why) => assert!(why.contains("precision"), "{why}"),
                _ => panic!("{name}: taken as readable"),
            }
        }
        let mut framed = vec![0, 0, 0, 0, id as u8];
        framed.extend_from_slice(data.get(at + 1..).unwrap_or_default());
        let _ = RegistryDecoder::new(registry.clone()).decode_action(&codec, &framed);
    }
}
