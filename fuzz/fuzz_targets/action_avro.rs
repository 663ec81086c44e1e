//! An agent action's Avro datum: the typed decoder (serde_avro_fast, what the pipeline runs)
//! and apache-avro's generic reader (the reference) agree on every datum both accept; an
//! accepted datum is validated and, when valid, evaluated by the default matrix. No input
//! panics.
#![no_main]

use handoff::event::{AgentAction, Codec, SchemaKind};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::matrix::SessionState;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static CODEC: LazyLock<Codec> = LazyLock::new(|| Codec::new(Default::default()).unwrap());
static MATRIX: LazyLock<Matrix> =
    LazyLock::new(|| Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap());

fuzz_target!(|data: &[u8]| {
    let typed = CODEC.decode::<AgentAction>(SchemaKind::AgentAction, data);
    let generic = CODEC.decode_generic::<AgentAction>(SchemaKind::AgentAction, data);
    if let (Ok(a), Ok(b)) = (&typed, &generic) {
        // Debug, not ==: a NaN confidence read alike by both is not equal to itself.
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "the decoders disagree");
    }
    if let Ok(action) = typed {
        if action.validate(CODEC.limits()).is_ok() {
            let _ = MATRIX.evaluate(&action, &SessionState::default());
        }
    }
});
