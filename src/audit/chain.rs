//! The evidence pack's file format: JSON lines, hash-chained. Line 0 is the header; every later
//! line carries `seq` (its line number) and `prev` (hex SHA-256 of the previous line's bytes);
//! the last line is the trailer naming how many entries there are. Changing any line breaks the
//! link after it; removing a line breaks the link or the count; cutting the end loses the
//! trailer. With a key, the trailer also carries a signature (a detached JWS, EdDSA) over the
//! pack's kind, version, entry count and the trailer's `prev` — which chains back through every
//! line — so a pack rewritten whole, chain and all, fails against the published keys (JWKS).
//! Pure: bytes in, bytes or a verdict out.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The header's `pack` value.
pub const PACK: &str = "handoff-audit";
/// The format version.
pub const VERSION: u32 = 1;
/// The JWS `typ` of a pack's signature.
pub const PACK_TYP: &str = "handoff-audit-pack";

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`PACK`].
    pub pack: String,
    /// [`VERSION`].
    pub version: u32,
    /// First decision time included, ms.
    pub from_ms: i64,
    /// First decision time excluded, ms.
    pub to_ms: i64,
    /// When the pack was made, ms.
    pub created_at_ms: i64,
    /// What was read, for the record (topics and counts).
    pub sources: Value,
}

#[derive(Serialize)]
struct Link<'a, T: Serialize> {
    seq: u64,
    prev: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<End>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct End {
    entries: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

/// What the trailer's signature is over: the pack's kind and version, its entry count and the
/// hash of the line before the trailer (which chains back to the header).
pub fn signed_payload(entries: u64, prev: &str) -> String {
    format!("{PACK}:{VERSION}:{entries}:{prev}")
}

/// A pack's signature, to check against the published keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSignature {
    /// The detached JWS.
    pub jws: String,
    /// What it signs ([`signed_payload`]).
    pub payload: String,
}

impl PackSignature {
    /// The key id that signed, when the signature verifies with `keys` (by id); else why not.
    pub fn check(
        &self,
        keys: &std::collections::HashMap<String, ed25519_dalek::VerifyingKey>,
    ) -> Result<String, String> {
        crate::trust::keys::verify_detached(&self.jws, PACK_TYP, self.payload.as_bytes(), |kid| {
            keys.get(kid)
        })
        .map_err(|e| match e {
            crate::trust::keys::Unverified::UnknownKey(kid) => {
                format!("signed by key {kid:?}, which the JWKS does not have")
            }
            crate::trust::keys::Unverified::Bad(why) => {
                format!("the signature does not verify: {why}")
            }
        })
    }
}

/// Writes a pack: the header, each entry chained to the line before, the trailer (signed with
/// `signer` when given).
pub fn write<T: Serialize>(
    header: &Header,
    entries: &[T],
    signer: Option<&crate::trust::Signer>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line = serde_json::to_vec(header).expect("a header serializes");
    for (before, e) in (0u64..).zip(entries.iter().map(Some).chain(std::iter::once(None))) {
        let prev = sha256_hex(&line);
        out.extend_from_slice(&line);
        out.push(b'\n');
        let link = Link {
            seq: before + 1,
            prev: &prev,
            entry: e,
            end: e.is_none().then(|| End {
                entries: before,
                signature: signer
                    .map(|k| k.sign_detached(PACK_TYP, signed_payload(before, &prev).as_bytes())),
            }),
        };
        line = serde_json::to_vec(&link).expect("an entry serializes");
    }
    out.extend_from_slice(&line);
    out.push(b'\n');
    out
}

/// What verifying a pack found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Every link holds: the header and the number of entries.
    Intact {
        /// The header.
        from_ms: i64,
        /// The header.
        to_ms: i64,
        /// Entries between header and trailer.
        entries: u64,
        /// The trailer's signature, if it has one (not checked here: see
        /// [`PackSignature::check`]).
        signature: Option<PackSignature>,
    },
    /// The first broken link.
    Broken {
        /// 1-based line number where the chain breaks.
        line: usize,
        /// What is wrong there.
        why: String,
    },
}

/// Checks a pack and reports the first broken link.
pub fn verify(bytes: &[u8]) -> Verified {
    let broken = |line: usize, why: String| Verified::Broken { line, why };
    let lines: Vec<&[u8]> = bytes
        .strip_suffix(b"\n")
        .unwrap_or(bytes)
        .split(|b| *b == b'\n')
        .collect();
    let header: Header = match serde_json::from_slice(lines[0]) {
        Ok(h) => h,
        Err(e) => return broken(1, format!("not a pack header: {e}")),
    };
    if header.pack != PACK || header.version != VERSION {
        return broken(
            1,
            format!(
                "pack {:?} version {}, expected {PACK:?} {VERSION}",
                header.pack, header.version
            ),
        );
    }
    for (i, raw) in lines.iter().enumerate().skip(1) {
        let n = i + 1;
        let v: Value = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(e) => return broken(n, format!("not JSON: {e}")),
        };
        if v["seq"].as_u64() != Some(i as u64) {
            return broken(
                n,
                format!(
                    "seq is {}, expected {i}: a line before it was removed or added",
                    v["seq"]
                ),
            );
        }
        let want = sha256_hex(lines[i - 1]);
        if v["prev"].as_str() != Some(want.as_str()) {
            return broken(
                n,
                format!("prev does not match line {i}: line {i} was changed (or replaced)"),
            );
        }
        let last = i == lines.len() - 1;
        match (v.get("end"), last) {
            (Some(end), true) => return trailer(&header, end, n, &want),
            (Some(_), false) => {
                return broken(
                    n,
                    "a trailer before the end: lines were added after it".into(),
                )
            }
            (None, true) => {
                return broken(
                    n + 1,
                    "the trailer is missing: the pack was cut short".into(),
                )
            }
            (None, false) if v.get("entry").is_none() => {
                return broken(n, "a line with neither entry nor trailer".into())
            }
            (None, false) => {}
        }
    }
    broken(
        2,
        "the trailer is missing: the pack has only its header".into(),
    )
}

/// The verdict on a pack whose trailer, `end` on line `n` after a line hashing to `prev`, is
/// its last line.
fn trailer(header: &Header, end: &Value, n: usize, prev: &str) -> Verified {
    let entries = end["entries"].as_u64().unwrap_or(u64::MAX);
    let have = (n - 2) as u64;
    if entries != have {
        return Verified::Broken {
            line: n,
            why: format!("the trailer counts {entries} entries, the pack has {have}"),
        };
    }
    let signature = end["signature"].as_str().map(|jws| PackSignature {
        jws: jws.to_string(),
        payload: signed_payload(entries, prev),
    });
    Verified::Intact {
        from_ms: header.from_ms,
        to_ms: header.to_ms,
        entries,
        signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            pack: PACK.into(),
            version: VERSION,
            from_ms: 0,
            to_ms: 10,
            created_at_ms: 11,
            sources: Value::Null,
        }
    }

    fn pack(n: usize) -> Vec<u8> {
        let h = header();
        let entries: Vec<Value> = (0..n)
            .map(|i| serde_json::json!({"n": i, "who": "ana"}))
            .collect();
        write(&h, &entries, None)
    }

    fn lines(p: &[u8]) -> Vec<String> {
        String::from_utf8(p.to_vec())
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn join(l: &[String]) -> Vec<u8> {
        (l.join("\n") + "\n").into_bytes()
    }

    #[test]
    fn an_intact_pack_verifies_and_any_change_names_the_first_broken_link() {
        let p = pack(5);
        assert_eq!(
            verify(&p),
            Verified::Intact {
                from_ms: 0,
                to_ms: 10,
                entries: 5,
                signature: None
            }
        );
        assert_eq!(
            verify(&pack(0)),
            Verified::Intact {
                from_ms: 0,
                to_ms: 10,
                entries: 0,
                signature: None
            }
        );
        let l = lines(&p);
        assert_eq!(l.len(), 7, "header, 5 entries, trailer");
        // (what is done, the line reported, a word of the reason)
        let mut edited = l.clone();
        edited[3] = edited[3].replace("ana", "bob");
        let mut removed = l.clone();
        removed.remove(3);
        let mut last_removed = l.clone();
        last_removed.remove(5);
        let mut cut = l.clone();
        cut.pop();
        let mut header = l.clone();
        header[0] = header[0].replace("\"to_ms\":10", "\"to_ms\":99");
        let table: Vec<(Vec<String>, usize, &str)> = vec![
            (edited, 5, "line 4 was changed"),
            (removed, 4, "seq is 4, expected 3"),
            (last_removed, 6, "seq is 6, expected 5"),
            (cut, 7, "trailer is missing"),
            (header, 2, "line 1 was changed"),
        ];
        for (bad, line, why) in table {
            match verify(&join(&bad)) {
                Verified::Broken { line: got, why: w } => {
                    assert_eq!(got, line, "{w}");
                    assert!(w.contains(why), "{w}");
                }
                v => panic!("{v:?} for a pack broken at line {line}"),
            }
        }
    }

    #[test]
    fn a_signed_pack_checks_against_its_key_and_not_against_another() {
        let h = header();
        let entries = [serde_json::json!({"who": "ana"})];
        let key = crate::trust::Signer::generate("handoff-1");
        let keys = |k: &crate::trust::Signer| {
            std::collections::HashMap::from([(
                k.id().to_string(),
                crate::trust::public_key(&k.public_key()).unwrap(),
            )])
        };
        let signed = write(&h, &entries, Some(&key));
        let Verified::Intact {
            signature: Some(sig),
            ..
        } = verify(&signed)
        else {
            panic!("signed and intact")
        };
        assert_eq!(sig.check(&keys(&key)), Ok("handoff-1".to_string()));
        let other = crate::trust::Signer::generate("handoff-1");
        assert!(sig
            .check(&keys(&other))
            .unwrap_err()
            .contains("does not verify"));
        let stranger = crate::trust::Signer::generate("stranger");
        let by_stranger = write(&h, &entries, Some(&stranger));
        let Verified::Intact {
            signature: Some(sig),
            ..
        } = verify(&by_stranger)
        else {
            panic!("signed and intact")
        };
        assert!(sig.check(&keys(&key)).unwrap_err().contains("\"stranger\""));
        // Another pack's signature moved onto this one does not verify: it signs another chain.
        let two = [serde_json::json!({"who": "bob"})];
        let moved = String::from_utf8(write(&h, &two, None)).unwrap();
        let sig_line = String::from_utf8(signed)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_string();
        let signature =
            serde_json::from_str::<Value>(&sig_line).unwrap()["end"]["signature"].clone();
        let mut l: Vec<String> = moved.lines().map(String::from).collect();
        let mut trailer: Value = serde_json::from_str(l.last().unwrap()).unwrap();
        trailer["end"]["signature"] = signature;
        *l.last_mut().unwrap() = trailer.to_string();
        let Verified::Intact {
            signature: Some(sig),
            ..
        } = verify((l.join("\n") + "\n").as_bytes())
        else {
            panic!("intact")
        };
        assert!(sig.check(&keys(&key)).is_err());
    }
}
