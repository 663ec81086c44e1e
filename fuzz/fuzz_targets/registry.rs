//! The Confluent path: a framed record (magic byte, schema id, datum) and what a schema
//! registry answers for the id (any JSON: a writer schema that may not parse, may not be
//! Avro, may not be compatible). The answer is checked and the record decoded, or refused
//! with a reason; never a panic.
#![no_main]

use handoff::config::RegistrySettings;
use handoff::event::Codec;
use handoff::registry::client::RegisteredSchema;
use handoff::registry::{RegistryDecoder, SchemaRegistry};
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};

static CODEC: LazyLock<Codec> = LazyLock::new(|| Codec::new(Default::default()).unwrap());
/// One registry for the run (its client is never called: answers are given with `learn`).
static REGISTRY: LazyLock<Arc<SchemaRegistry>> = LazyLock::new(|| {
    let settings = RegistrySettings::new("http://127.0.0.1:1");
    Arc::new(SchemaRegistry::new(&settings, &CODEC).unwrap())
});
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

fuzz_target!(|data: &[u8]| {
    let _ = handoff::event::wire::unframe(&[1, 7], data);
    // A registry answer, then a record of that schema: split at the first NUL.
    let Some(at) = data.iter().position(|b| *b == 0) else {
        return;
    };
    let (answer, record) = (&data[..at], &data[at + 1..]);
    let Ok(schema) = serde_json::from_slice::<RegisteredSchema>(answer) else {
        return;
    };
    // A new id each time (the cache forgets the oldest): the answer is checked afresh.
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    REGISTRY.learn(id, &schema);
    let mut decoder = RegistryDecoder::new(REGISTRY.clone());
    let mut framed = vec![0];
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend_from_slice(record);
    let _ = decoder.decode_action(&CODEC, &framed);
});
