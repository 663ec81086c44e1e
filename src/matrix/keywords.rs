//! Whole-word, ASCII-case-insensitive matching of many phrases over several text fields in one
//! pass.
//!
//! The fields are lower-cased (ASCII) into one reused buffer, separated by a NUL byte, and
//! searched with a single case-sensitive Aho-Corasick automaton over the lower-cased phrases.
//! Lower-casing first keeps the automaton's SIMD prefilter usable: with
//! `ascii_case_insensitive` and a few dozen phrases the prefilter is lost and the search is
//! about five times slower (measured while choosing this design, see ARCHITECTURE.md).

use super::spec::TextField;
use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use std::cell::RefCell;

/// Which phrase lists a phrase belongs to (a phrase may be in both).
pub const LIST_POLICY: u8 = 1;
/// The `human_requested` list.
pub const LIST_HUMAN: u8 = 2;

/// One phrase found in one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hit {
    /// Index into [`PhraseMatcher::phrase`].
    pub phrase: u16,
    /// Where it was found.
    pub field: TextField,
}

/// A compiled set of phrases.
#[derive(Debug, Clone)]
pub struct PhraseMatcher {
    ac: Option<AhoCorasick>,
    phrases: Vec<String>,
    lists: Vec<u8>,
    /// Fields scanned by each list, as `TextField` bit masks.
    policy_fields: u8,
    human_fields: u8,
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Buffers larger than this are released after use rather than kept per thread.
const KEEP_SCRATCH_BYTES: usize = 256 * 1024;

#[inline]
fn is_word_byte(b: u8) -> bool {
    // Non-ASCII bytes belong to letters in UTF-8 text: they continue a word.
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

impl PhraseMatcher {
    /// Builds the matcher. Phrases must already be lower-case and single-spaced.
    pub fn new(
        policy: &[String],
        policy_fields: &[TextField],
        human: &[String],
        human_fields: &[TextField],
    ) -> Result<Self, String> {
        let mut phrases: Vec<String> = Vec::new();
        let mut lists: Vec<u8> = Vec::new();
        for (list, bit) in [(policy, LIST_POLICY), (human, LIST_HUMAN)] {
            for p in list {
                match phrases.iter().position(|q| q == p) {
                    Some(i) => lists[i] |= bit,
                    None => {
                        phrases.push(p.clone());
                        lists.push(bit);
                    }
                }
            }
        }
        if phrases.len() > u16::MAX as usize {
            return Err(format!("{} phrases; at most {}", phrases.len(), u16::MAX));
        }
        let ac = if phrases.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&phrases)
                    .or_else(|_| {
                        // Very large phrase sets may not fit a DFA; an NFA is slower but works.
                        AhoCorasick::builder()
                            .match_kind(MatchKind::LeftmostLongest)
                            .build(&phrases)
                    })
                    .map_err(|e| e.to_string())?,
            )
        };
        let mask = |fs: &[TextField]| fs.iter().fold(0u8, |m, f| m | f.bit());
        Ok(PhraseMatcher {
            ac,
            phrases,
            lists,
            policy_fields: mask(policy_fields),
            human_fields: mask(human_fields),
        })
    }

    /// The phrase with index `i`.
    pub fn phrase(&self, i: u16) -> &str {
        &self.phrases[i as usize]
    }

    /// Number of distinct phrases.
    pub fn len(&self) -> usize {
        self.phrases.len()
    }

    /// True when there is no phrase.
    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// Scans the fields and returns the hits for the policy list and for the human list.
    /// Allocates only when something is found.
    pub fn scan(&self, fields: [Option<&str>; 4]) -> (Vec<Hit>, Vec<Hit>) {
        let mut policy = Vec::new();
        let mut human = Vec::new();
        let Some(ac) = &self.ac else {
            return (policy, human);
        };
        let wanted = self.policy_fields | self.human_fields;
        SCRATCH.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.clear();
            // Start offset of each field in the buffer (u32::MAX: not scanned).
            let mut starts = [u32::MAX; 4];
            for (i, f) in TextField::ALL.iter().enumerate() {
                if wanted & f.bit() == 0 {
                    continue;
                }
                if let Some(text) = fields[i] {
                    starts[i] = buf.len() as u32;
                    buf.extend_from_slice(text.as_bytes());
                    buf.push(0);
                }
            }
            let len = buf.len();
            if len == 0 {
                return;
            }
            buf.make_ascii_lowercase();
            let hay: &[u8] = &buf;
            let mut at = 0;
            while at < len {
                let Some(m) = ac.find(Input::new(hay).span(at..len)) else {
                    break;
                };
                let (s, e) = (m.start(), m.end());
                let ok_before = s == 0 || !is_word_byte(hay[s - 1]);
                let ok_after = e == len || !is_word_byte(hay[e]);
                if !(ok_before && ok_after) {
                    // Not a whole word: look again from the next byte, so a real match that
                    // overlaps this one is not skipped.
                    at = s + 1;
                    continue;
                }
                at = e;
                let field_idx = starts
                    .iter()
                    .enumerate()
                    .filter(|(_, st)| **st != u32::MAX && **st as usize <= s)
                    .max_by_key(|(_, st)| **st)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                let field = TextField::ALL[field_idx];
                let pid = m.pattern().as_usize();
                let hit = Hit {
                    phrase: pid as u16,
                    field,
                };
                let lists = self.lists[pid];
                if lists & LIST_POLICY != 0 && self.policy_fields & field.bit() != 0 {
                    push_unique(&mut policy, hit);
                }
                if lists & LIST_HUMAN != 0 && self.human_fields & field.bit() != 0 {
                    push_unique(&mut human, hit);
                }
            }
            if buf.capacity() > KEEP_SCRATCH_BYTES {
                *buf = Vec::new();
            }
        });
        (policy, human)
    }
}

fn push_unique(v: &mut Vec<Hit>, h: Hit) {
    if !v.iter().any(|x| x.phrase == h.phrase && x.field == h.field) {
        v.push(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(policy: &[&str], human: &[&str]) -> PhraseMatcher {
        let p: Vec<String> = policy.iter().map(|s| s.to_string()).collect();
        let h: Vec<String> = human.iter().map(|s| s.to_string()).collect();
        PhraseMatcher::new(
            &p,
            &[
                TextField::Request,
                TextField::Output,
                TextField::UserMessage,
            ],
            &h,
            &[TextField::Request, TextField::UserMessage],
        )
        .unwrap()
    }

    fn found(m: &PhraseMatcher, text: &str) -> Vec<String> {
        let (p, _) = m.scan([Some(text), None, None, None]);
        p.iter().map(|h| m.phrase(h.phrase).to_string()).collect()
    }

    #[test]
    fn whole_words_only_case_insensitive() {
        let m = m(&["sue", "fraud", "legal action"], &[]);
        let cases: &[(&str, &[&str])] = &[
            ("We will SUE you", &["sue"]),
            ("this issue is pursued", &[]),
            ("Fraud!", &["fraud"]),
            ("defrauded", &[]),
            ("taking Legal Action now", &["legal action"]),
            ("legal actions", &[]),
            ("sue_me", &[]),
            ("fraudé", &[]),
            ("(sue)", &["sue"]),
        ];
        for (text, want) in cases {
            assert_eq!(found(&m, text), *want, "text {text:?}");
        }
    }

    #[test]
    fn a_rejected_partial_match_does_not_hide_a_real_one() {
        // "fraudster" fails the boundary check; the real "fraud" right after must still count.
        let m = m(&["fraud", "fraudster fraud"], &[]);
        assert_eq!(found(&m, "xfraudster fraud"), vec!["fraud".to_string()]);
    }

    #[test]
    fn fields_are_kept_apart_and_attributed() {
        let m = m(&["chest pain"], &["real agent"]);
        // A phrase cannot span two fields.
        let (p, h) = m.scan([Some("my chest"), None, Some("pain"), None]);
        assert!(p.is_empty());
        assert!(h.is_empty());
        // The human list ignores the agent's own output.
        let (p, h) = m.scan([
            None,
            None,
            Some("I can connect you with a real agent"),
            Some("chest pain"),
        ]);
        assert!(h.is_empty());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, TextField::UserMessage);
        let (_, h) = m.scan([Some("I want a REAL agent"), None, None, None]);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].field, TextField::Request);
    }
}
