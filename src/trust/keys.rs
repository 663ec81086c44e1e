//! Ed25519 keys: a [`Signer`] (an id and a private key, read from PKCS#8 PEM as
//! `openssl genpkey -algorithm ed25519` writes it) and public keys as the 32 bytes in base64url
//! (a JWK's `x`), and the detached JWS both make and check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

/// Why a key or a signature is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not an Ed25519 private key in PKCS#8 PEM.
    #[error("not an Ed25519 private key in PKCS#8 PEM (as `openssl genpkey -algorithm ed25519` or `handoff keygen` writes one)")]
    NotAPrivateKey,
    /// Not 32 bytes of base64url that make an Ed25519 public key.
    #[error("{0}")]
    NotAPublicKey(String),
    /// A JWS that does not parse or does not verify.
    #[error("{0}")]
    Signature(String),
}

/// A key that signs, with the id its signatures name (`kid`).
#[derive(Clone)]
pub struct Signer {
    id: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("id", &self.id)
            .field("key", &"***")
            .finish()
    }
}

impl Signer {
    /// A new random key named `id`.
    pub fn generate(id: &str) -> Signer {
        let mut seed = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut seed);
        Signer {
            id: id.to_string(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The key in `pem` (PKCS#8), named `id`.
    pub fn from_pem(id: &str, pem: &str) -> Result<Signer, KeyError> {
        let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| KeyError::NotAPrivateKey)?;
        Ok(Signer {
            id: id.to_string(),
            key,
        })
    }

    /// The private key as PKCS#8 PEM (to write to a secret file).
    pub fn to_pem(&self) -> String {
        self.key
            .to_pkcs8_pem(Default::default())
            .expect("an Ed25519 key encodes")
            .to_string()
    }

    /// Its id (`kid`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its public key: 32 bytes in base64url (a JWK's `x`).
    pub fn public_key(&self) -> String {
        B64.encode(self.key.verifying_key().as_bytes())
    }

    /// A detached compact JWS over `payload`: `header..signature`; `typ` says what it signs
    /// (a decision's signature cannot pass for an audit pack's).
    pub fn sign_detached(&self, typ: &str, payload: &[u8]) -> String {
        let header = serde_json::json!({ "alg": "EdDSA", "kid": self.id, "typ": typ }).to_string();
        let header = B64.encode(header);
        let input = format!("{header}.{}", B64.encode(payload));
        let signature: Signature = self.key.sign(input.as_bytes());
        format!("{header}..{}", B64.encode(signature.to_bytes()))
    }

    /// A compact JWS carrying `payload`: `header.payload.signature` (a receipt: a token that
    /// travels on its own).
    pub fn sign_compact(&self, typ: &str, payload: &[u8]) -> String {
        let header = serde_json::json!({ "alg": "EdDSA", "kid": self.id, "typ": typ }).to_string();
        let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let signature: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(signature.to_bytes()))
    }
}

/// The public key written as 32 bytes in base64url (a JWK's `x`).
pub fn public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| KeyError::NotAPublicKey(format!("not base64url without padding: {e}")))?;
    let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        KeyError::NotAPublicKey(format!(
            "{} bytes; an Ed25519 public key is 32",
            bytes.len()
        ))
    })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| KeyError::NotAPublicKey("not a point of Ed25519".into()))
}

/// The `kid` a detached JWS of type `typ` names, when its signature over `payload` verifies
/// with the key `key_of` gives for that id (`None`: no such key). A header with `crit` is
/// refused (no extension is understood here).
pub fn verify_detached<'k>(
    jws: &str,
    typ: &str,
    payload: &[u8],
    key_of: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
) -> Result<String, Unverified> {
    let mut parts = jws.split('.');
    let (Some(header_b64), Some(""), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Unverified::Bad(
            "not a detached compact JWS (header..signature)".into(),
        ));
    };
    let input = format!("{header_b64}.{}", B64.encode(payload));
    verify_input(&input, header_b64, typ, sig_b64, key_of)
}

/// The `kid` and the payload of a compact JWS of type `typ` (`header.payload.signature`), when
/// its signature verifies with the key `key_of` gives for that id; the same header rules as
/// [`verify_detached`].
pub fn verify_compact<'k>(
    jws: &str,
    typ: &str,
    key_of: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
) -> Result<(String, Vec<u8>), Unverified> {
    let mut parts = jws.trim().split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Unverified::Bad(
            "not a compact JWS (header.payload.signature)".into(),
        ));
    };
    let payload = B64
        .decode(payload_b64)
        .map_err(|_| Unverified::Bad("its payload is not base64url".into()))?;
    let input = &jws.trim()[..header_b64.len() + 1 + payload_b64.len()];
    let kid = verify_input(input, header_b64, typ, sig_b64, key_of)?;
    Ok((kid, payload))
}

/// Checks the header (typ, no crit, EdDSA, a kid) and the signature over `input`.
fn verify_input<'k>(
    input: &str,
    header_b64: &str,
    typ: &str,
    sig_b64: &str,
    key_of: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
) -> Result<String, Unverified> {
    let bad = |why: &str| Unverified::Bad(why.to_string());
    let header = B64
        .decode(header_b64)
        .map_err(|_| bad("its header is not base64url"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| bad("its header is not JSON"))?;
    if header["typ"] != typ {
        return Err(Unverified::Bad(format!(
            "typ {} where {typ:?} is expected",
            header["typ"]
        )));
    }
    if header.get("crit").is_some() {
        return Err(bad(
            "its header has `crit`: no extension is understood here",
        ));
    }
    if header["alg"] != "EdDSA" {
        return Err(Unverified::Bad(format!(
            "alg {} where EdDSA is expected",
            header["alg"]
        )));
    }
    let kid = header["kid"]
        .as_str()
        .ok_or_else(|| bad("its header names no kid"))?
        .to_string();
    let key = key_of(&kid).ok_or_else(|| Unverified::UnknownKey(kid.clone()))?;
    let sig = B64
        .decode(sig_b64)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or_else(|| bad("its signature is not 64 bytes of base64url"))?;
    key.verify_strict(input.as_bytes(), &sig)
        .map_err(|_| bad("the signature does not match these bytes with this key"))?;
    Ok(kid)
}

/// Why a JWS does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// It names a key not trusted here.
    UnknownKey(String),
    /// It does not parse, or does not match.
    Bad(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_pem_and_its_signatures_verify_only_over_the_same_bytes() {
        let s = Signer::generate("inbox-1");
        let again = Signer::from_pem("inbox-1", &s.to_pem()).unwrap();
        assert_eq!(again.public_key(), s.public_key());
        let public = public_key(&s.public_key()).unwrap();
        let jws = s.sign_detached("t", b"decision bytes");
        let key_of = |kid: &str| (kid == "inbox-1").then_some(&public);
        assert_eq!(
            verify_detached(&jws, "t", b"decision bytes", key_of),
            Ok("inbox-1".into())
        );
        assert!(matches!(
            verify_detached(&jws, "t", b"decision bytez", key_of),
            Err(Unverified::Bad(_))
        ));
        let other = Signer::generate("inbox-1");
        assert!(matches!(
            verify_detached(
                &other.sign_detached("t", b"decision bytes"),
                "t",
                b"decision bytes",
                key_of
            ),
            Err(Unverified::Bad(_))
        ));
        assert_eq!(
            verify_detached(
                &Signer::generate("x").sign_detached("t", b"d"),
                "t",
                b"d",
                key_of
            ),
            Err(Unverified::UnknownKey("x".into()))
        );
        assert!(matches!(
            verify_detached(&jws, "another type", b"decision bytes", key_of),
            Err(Unverified::Bad(m)) if m.contains("typ")
        ));
        assert!(format!("{s:?}").contains("***"));
    }

    #[test]
    fn bad_keys_and_bad_signatures_say_what_is_wrong() {
        assert!(public_key("abc")
            .unwrap_err()
            .to_string()
            .contains("an Ed25519 public key is 32"));
        assert!(public_key("not base64!").is_err());
        assert_eq!(
            Signer::from_pem(
                "x",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
            )
            .unwrap_err(),
            KeyError::NotAPrivateKey
        );
        let none = |_: &str| None;
        for (jws, why) in [
            ("a.b.c", "detached"),
            ("a..c.d", "detached"),
            ("!!..AAAA", "base64url"),
            ("e30..AAAA", "typ"),
            // {"typ":"t","crit":["b64"]}
            ("eyJ0eXAiOiJ0IiwiY3JpdCI6WyJiNjQiXX0..AAAA", "crit"),
            // {"typ":"t","alg":"none"}
            ("eyJ0eXAiOiJ0IiwiYWxnIjoibm9uZSJ9..AAAA", "alg"),
        ] {
            match verify_detached(jws, "t", b"x", none) {
                Err(Unverified::Bad(m)) => assert!(m.contains(why), "{jws}: {m}"),
                other => panic!("{jws}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_compact_jws_carries_its_payload_and_verifies_only_as_signed() {
        let s = Signer::generate("k1");
        let public = public_key(&s.public_key()).unwrap();
        let key_of = |kid: &str| (kid == "k1").then_some(&public);
        let jws = s.sign_compact("r", b"{\"a\":1}");
        assert_eq!(
            verify_compact(&jws, "r", key_of),
            Ok(("k1".into(), b"{\"a\":1}".to_vec()))
        );
        // Another payload under the same signature.
        let mut parts: Vec<&str> = jws.split('.').collect();
        let forged = B64.encode(b"{\"a\":2}");
        parts[1] = &forged;
        assert!(matches!(
            verify_compact(&parts.join("."), "r", key_of),
            Err(Unverified::Bad(m)) if m.contains("does not match")
        ));
        assert!(matches!(
            verify_compact(&jws, "decision", key_of),
            Err(Unverified::Bad(m)) if m.contains("typ")
        ));
        assert!(matches!(
            verify_compact("a..b", "r", key_of),
            Err(Unverified::Bad(m)) if m.contains("base64url") || m.contains("header")
        ));
        assert!(matches!(
            verify_compact("a.b", "r", key_of),
            Err(Unverified::Bad(m)) if m.contains("compact")
        ));
    }
}
