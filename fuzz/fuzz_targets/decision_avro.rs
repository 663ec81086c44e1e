//! A human decision's Avro datum: the typed decoder and apache-avro agree on every datum both
//! accept, at every schema version the typed decoder reads. No input panics.
#![no_main]

use handoff::event::{Codec, HumanDecision, SchemaKind};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static CODEC: LazyLock<Codec> = LazyLock::new(|| Codec::new(Default::default()).unwrap());

fuzz_target!(|data: &[u8]| {
    let typed = CODEC.decode::<HumanDecision>(SchemaKind::HumanDecision, data);
    let generic = CODEC.decode_generic::<HumanDecision>(SchemaKind::HumanDecision, data);
    if let (Ok(a), Ok(b)) = (&typed, &generic) {
        assert_eq!(a, b, "the decoders disagree");
    }
    for v in 1..=SchemaKind::HumanDecision.current_version() {
        let _ = CODEC.decode_version::<HumanDecision>(SchemaKind::HumanDecision, v, data);
    }
});
