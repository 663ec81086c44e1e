//! The evidence pack's file format: JSON lines, hash-chained. Line 0 is the header; every later
//! line carries `seq` (its line number) and `prev` (hex SHA-256 of the previous line's bytes);
//! the last line is the trailer naming how many entries there are. Changing any line breaks the
//! link after it; removing a line breaks the link or the count; cutting the end loses the
//! trailer. Pure: bytes in, bytes or a verdict out.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The header's `pack` value.
pub const PACK: &str = "handoff-audit";
/// The format version.
pub const VERSION: u32 = 1;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct End {
    entries: u64,
}

/// Writes a pack: the header, each entry chained to the line before, the trailer.
pub fn write<T: Serialize>(header: &Header, entries: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line = serde_json::to_vec(header).expect("a header serializes");
    let mut seq = 0u64;
    for e in entries.iter().map(Some).chain(std::iter::once(None)) {
        let prev = sha256_hex(&line);
        out.extend_from_slice(&line);
        out.push(b'\n');
        seq += 1;
        let link = Link {
            seq,
            prev: &prev,
            entry: e,
            end: e.is_none().then_some(End { entries: seq - 1 }),
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
            (Some(end), true) => {
                let entries = end["entries"].as_u64().unwrap_or(u64::MAX);
                if entries != (i - 1) as u64 {
                    return broken(
                        n,
                        format!(
                            "the trailer counts {entries} entries, the pack has {}",
                            i - 1
                        ),
                    );
                }
                return Verified::Intact {
                    from_ms: header.from_ms,
                    to_ms: header.to_ms,
                    entries,
                };
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(n: usize) -> Vec<u8> {
        let h = Header {
            pack: PACK.into(),
            version: VERSION,
            from_ms: 0,
            to_ms: 10,
            created_at_ms: 11,
            sources: Value::Null,
        };
        let entries: Vec<Value> = (0..n)
            .map(|i| serde_json::json!({"n": i, "who": "ana"}))
            .collect();
        write(&h, &entries)
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
                entries: 5
            }
        );
        assert_eq!(
            verify(&pack(0)),
            Verified::Intact {
                from_ms: 0,
                to_ms: 10,
                entries: 0
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
}
