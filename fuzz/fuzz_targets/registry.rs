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
use std::sync::{Arc, LazyLock};

static CODEC: LazyLock<Codec> = LazyLock::new(|| Codec::new(Default::default()).unwrap());

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
    let settings = RegistrySettings::new("http://127.0.0.1:1");
    let registry = Arc::new(SchemaRegistry::new(&settings, &CODEC).unwrap());
    registry.learn(1, &schema);
    let mut decoder = RegistryDecoder::new(registry);
    let mut framed = vec![0, 0, 0, 0, 1];
    framed.extend_from_slice(record);
    let _ = decoder.decode_action(&CODEC, &framed);
});
