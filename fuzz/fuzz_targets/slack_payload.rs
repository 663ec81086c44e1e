//! Slack's interactivity requests: the signature check over any timestamp, body and signature
//! header, and the button press in any form body; refused with a reason, never a panic.
#![no_main]

use handoff::notify::slack;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let ts = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or("");
    let sig = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or("");
    let body = parts.next().unwrap_or_default();
    let _ = slack::verify(b"fuzz-signing-secret", ts, body, sig, 1_800_000_000);
    if let Ok(a) = slack::parse_action(body) {
        assert!(!a.user_id.is_empty() && !a.escalation_id.is_empty());
    }
});
