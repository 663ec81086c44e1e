//! Signing webhook messages per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>): three headers, `webhook-id` (the notification id,
//! the same on every attempt: receivers deduplicate by it), `webhook-timestamp` (Unix
//! seconds of the attempt) and `webhook-signature` = `v1,` + base64 of
//! HMAC-SHA256(key, `{id}.{timestamp}.{body}`). The key is the decoded `whsec_…` secret, or
//! the secret's own bytes. [`verify`] is what a receiver does. Pure.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The message id header.
pub const ID_HEADER: &str = "webhook-id";
/// The attempt time header (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// How far a receiver should accept a timestamp from its own clock, in seconds.
pub const TOLERANCE_S: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// `v1,<base64 signature>` of `body` sent as message `id` at `timestamp`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(key, id, timestamp, body).finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// The three headers of an attempt.
pub fn headers(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
    [
        (ID_HEADER, id.to_string()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, signature(key, id, timestamp, body)),
    ]
}

/// Why a webhook message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// `webhook-timestamp` is not a number.
    #[error("webhook-timestamp {0:?} is not Unix seconds")]
    BadTimestamp(String),
    /// The timestamp is too far from the receiver's clock (a replay, or a clock off).
    #[error("webhook-timestamp is {0} s away from now (at most {TOLERANCE_S} s)")]
    Stale(i64),
    /// No `v1` signature in the header matches.
    #[error("no v1 signature matches")]
    Mismatch,
}

/// What a receiver does: the timestamp within `tolerance_s` of `now_unix`, then any `v1,`
/// signature of the (space-separated) header list equal to the expected one — compared in
/// constant time.
pub fn verify(
    key: &[u8],
    id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_s: i64,
) -> Result<(), SignError> {
    let ts: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| SignError::BadTimestamp(timestamp_header.to_string()))?;
    let off = now_unix.saturating_sub(ts);
    if off.abs() > tolerance_s {
        return Err(SignError::Stale(off));
    }
    let expected = mac(key, id, ts, body);
    let matches = signature_header.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .is_some_and(|tag| expected.clone().verify_slice(&tag).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err(SignError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_reference_vector() {
        let key =
            crate::config::notify::signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn receivers_accept_good_messages_and_refuse_the_rest() {
        let key = b"0123456789abcdef";
        let body = br#"{"type":"escalation"}"#;
        let good = signature(key, "esc-1", 1_700_000_000, body);
        let other = signature(b"another key 1234", "esc-1", 1_700_000_000, body);
        let now = 1_700_000_010;
        type Row<'a> = (&'a str, &'a str, &'a [u8], &'a str, Result<(), SignError>);
        let table: &[Row<'_>] = &[
            ("esc-1", "1700000000", body, &good, Ok(())),
            (
                "esc-1",
                "1700000000",
                body,
                &format!("{other} {good}"),
                Ok(()),
            ),
            ("esc-2", "1700000000", body, &good, Err(SignError::Mismatch)),
            ("esc-1", "1700000001", body, &good, Err(SignError::Mismatch)),
            (
                "esc-1",
                "1700000000",
                b"{}",
                &good,
                Err(SignError::Mismatch),
            ),
            (
                "esc-1",
                "1700000000",
                body,
                &other,
                Err(SignError::Mismatch),
            ),
            (
                "esc-1",
                "1700000000",
                body,
                "v1,!!!",
                Err(SignError::Mismatch),
            ),
            (
                "esc-1",
                "1700000000",
                body,
                &good.replace("v1,", "v2,"),
                Err(SignError::Mismatch),
            ),
            (
                "esc-1",
                "1699999000",
                body,
                &good,
                Err(SignError::Stale(1010)),
            ),
            (
                "esc-1",
                "soon",
                body,
                &good,
                Err(SignError::BadTimestamp("soon".into())),
            ),
        ];
        for (id, ts, b, sig, want) in table {
            assert_eq!(
                &verify(key, id, ts, sig, b, now, TOLERANCE_S),
                want,
                "{id} {ts} {sig}"
            );
        }
        let h = headers(key, "esc-1", 1_700_000_000, body);
        assert_eq!(h[0], (ID_HEADER, "esc-1".to_string()));
        assert_eq!(h[1], (TIMESTAMP_HEADER, "1700000000".to_string()));
        assert_eq!(h[2].1, good);
    }
}
