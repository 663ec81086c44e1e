//! JSON Web Key Sets (RFC 7517) of Ed25519 keys (RFC 8037: `kty` OKP, `crv` Ed25519): made from
//! the published keys for `/.well-known/jwks.json`, and read back by whoever checks a signature
//! of handoff's (a receipt, an audit pack).

use super::keys::{public_key, KeyError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Where the gateway and the inbox serve the published keys.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The set of `keys` (id, public key) as a JWKS document.
pub fn jwks<'a>(keys: impl IntoIterator<Item = (&'a str, &'a VerifyingKey)>) -> Value {
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|(kid, k)| {
            json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": B64.encode(k.as_bytes()),
                "kid": kid,
                "alg": "EdDSA",
                "use": "sig",
            })
        })
        .collect();
    json!({ "keys": keys })
}

/// The Ed25519 signing keys of a JWKS document, by `kid` (other kinds of key, and keys without
/// a `kid`, are left out; an Ed25519 key that does not parse, or a `kid` named twice, is an
/// error naming it).
pub fn read_jwks(text: &str) -> Result<HashMap<String, VerifyingKey>, KeyError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| KeyError::NotAPublicKey(format!("the JWKS is not JSON: {e}")))?;
    let keys = doc["keys"]
        .as_array()
        .ok_or_else(|| KeyError::NotAPublicKey("the JWKS has no `keys` array".into()))?;
    let mut out = HashMap::new();
    for k in keys {
        if k["kty"] != "OKP"
            || k["crv"] != "Ed25519"
            || k["use"].as_str().is_some_and(|u| u != "sig")
        {
            continue;
        }
        let Some(kid) = k["kid"].as_str() else {
            continue; // a signature names its key: one without an id is never chosen
        };
        let x = k["x"].as_str().unwrap_or_default();
        let key = public_key(x)
            .map_err(|e| KeyError::NotAPublicKey(format!("key {kid:?} of the JWKS: {e}")))?;
        if out.insert(kid.to_string(), key).is_some() {
            return Err(KeyError::NotAPublicKey(format!(
                "the JWKS has key {kid:?} twice"
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::Signer;

    #[test]
    fn a_jwks_reads_back_the_keys_it_was_made_of_by_id() {
        let (a, b) = (Signer::generate("a"), Signer::generate("b"));
        let (pa, pb) = (
            public_key(&a.public_key()).unwrap(),
            public_key(&b.public_key()).unwrap(),
        );
        let doc = jwks([("a", &pa), ("b", &pb)]);
        assert_eq!(doc["keys"][0]["crv"], "Ed25519");
        assert_eq!(doc["keys"][1]["x"], b.public_key());
        let back = read_jwks(&doc.to_string()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back["b"], pb);
        let mixed = r#"{"keys":[{"kty":"RSA","kid":"r","n":"x","e":"AQAB"},
            {"kty":"OKP","crv":"Ed25519","kid":"bad","x":"AAAA"}]}"#;
        let e = read_jwks(mixed).unwrap_err().to_string();
        assert!(e.contains("\"bad\"") && e.contains("32"), "{e}");
        assert!(read_jwks("{}").is_err());
        let twice = jwks([("a", &pa), ("a", &pb)]).to_string();
        assert!(read_jwks(&twice)
            .unwrap_err()
            .to_string()
            .contains("\"a\" twice"));
    }
}
