//! Records as the processor meets them on its input topics: an agent action or a human
//! decision, any bytes, any schema-version header. Every one is decided or dead-lettered
//! (`Ok`), never an error that would stop the pipeline, and never a panic.
#![no_main]

use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::pipeline::process::{Input, Processor};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock, Mutex};

static MATRIX: LazyLock<Arc<Matrix>> = LazyLock::new(|| {
    Arc::new(Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap())
});

/// One processor for many inputs, as a worker keeps one; a fresh one every 5,000 so state
/// stays bounded however long the run.
static PROCESSOR: LazyLock<Mutex<(Processor, i64)>> = LazyLock::new(|| Mutex::new((fresh(), 0)));

fn fresh() -> Processor {
    Processor::new(&Default::default(), MATRIX.clone()).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&how, rest)) = data.split_first() else {
        return;
    };
    let topic = if how & 1 == 0 { "agent.actions" } else { "human.decisions" };
    let version = match (how >> 1) & 3 {
        0 => None,
        1 => Some(b"1".to_vec()),
        2 => Some(b"2".to_vec()),
        _ => Some(rest.iter().take(3).copied().collect()),
    };
    let headers: Vec<(String, Vec<u8>)> = version
        .map(|v| vec![("handoff.schema.version".to_string(), v)])
        .unwrap_or_default();
    let mut guard = PROCESSOR.lock().unwrap();
    let (p, offset) = &mut *guard;
    *offset += 1;
    if *offset % 5_000 == 0 {
        *p = fresh();
    }
    let mut out = Vec::new();
    let input = Input {
        topic,
        partition: 0,
        offset: *offset,
        key: Some(b"s-1"),
        payload: Some(rest),
        headers: &headers,
    };
    if let Err(e) = p.process(input, 1_800_000_000_000 + *offset, &mut out) {
        panic!("an input stopped the stage: {e}");
    }
});
