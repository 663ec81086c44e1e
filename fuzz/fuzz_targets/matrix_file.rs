//! A matrix file (TOML): compiled, or refused with every problem listed; never a panic.
#![no_main]

use handoff::matrix::{Matrix, MatrixSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Matrix::from_toml_str(text, MatrixSource::Default) {
        let _ = e.to_string();
    }
});
