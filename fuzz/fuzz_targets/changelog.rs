//! A state changelog record (binary layouts and JSON) as a restoring processor and the inbox
//! read it: decoded, or refused with a reason; never a panic. A decoded record encodes again.
#![no_main]

use handoff::state::SessionRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SessionRecord::decode(data) {
        let _ = format!("{r:?}");
    }
});
