//! A settings file (TOML): loaded, or refused with every problem listed; never a panic.
#![no_main]

use handoff::config::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Settings::from_toml_str(text) {
        Ok(s) => {
            let _ = s.redacted();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
