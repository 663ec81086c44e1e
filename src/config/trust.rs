//! `[trust]`: who may answer. The public keys whose signatures on human decisions the processor
//! accepts (several at once while keys are rolled), each limited to the roles it may vouch
//! for, and the key this process signs the decisions it writes with (the inbox, `respond`, the
//! demo and game-days). Checked without I/O; the signing key, a secret, is read and parsed
//! when secrets are resolved.

use super::secret::Source;
use crate::problems::Problems;
use serde::{Deserialize, Serialize};

/// A public key trusted to sign human decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionKey {
    /// Its id: the `kid` its signatures name.
    pub id: String,
    /// The Ed25519 public key: 32 bytes in base64url (`handoff keygen` prints it).
    pub public_key: String,
    /// The roles it may sign decisions for; every role when empty.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A public key of one of handoff's own signers (receipts, audit packs), served as the JWKS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedKey {
    /// Its id: the `kid` its signatures name.
    pub id: String,
    /// The Ed25519 public key: 32 bytes in base64url.
    pub public_key: String,
}

/// Signed decisions.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSettings {
    /// Keys whose signed decisions are taken. None: decisions are not checked.
    #[serde(default)]
    pub decision_keys: Vec<DecisionKey>,
    /// Take unsigned decisions although keys are configured (during a rolling upgrade, while
    /// some writers do not sign yet). Badly signed ones are refused all the same.
    #[serde(default)]
    pub allow_unsigned_decisions: bool,
    /// The private key this process signs decisions with: PKCS#8 PEM, or a reference such as
    /// `file:/run/secrets/handoff/decision-key.pem`.
    #[serde(default, skip_serializing)]
    pub signing_key: Option<String>,
    /// The id of `signing_key` (the `kid` its signatures name).
    #[serde(default)]
    pub signing_key_id: Option<String>,
    /// The public keys of handoff's own signatures (audit packs; several while keys are
    /// rolled), served by the gateway and the inbox at `/.well-known/jwks.json`.
    #[serde(default)]
    pub published_keys: Vec<PublishedKey>,
    /// Approval receipts on final verdicts (signed with `signing_key`).
    #[serde(default)]
    pub receipts: ReceiptSettings,
}

/// `[trust.receipts]`: how long an approval receipt is good for, and whether actions the rules
/// let run alone get one too. Receipts are issued when `signing_key` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptSettings {
    /// How long after the approval a receipt may be used.
    #[serde(default = "default_receipt_ttl", with = "humantime_serde")]
    pub expires_after: std::time::Duration,
    /// Per level, instead of `expires_after` (`{ hard_stop = "2m" }`).
    #[serde(default)]
    pub expires_after_by_level: std::collections::BTreeMap<
        crate::event::Level,
        humantime_serde::Serde<std::time::Duration>,
    >,
    /// A receipt on the verdict of every action the rules let run alone too (off: only after
    /// people approved).
    #[serde(default)]
    pub for_auto_run: bool,
}

fn default_receipt_ttl() -> std::time::Duration {
    std::time::Duration::from_secs(600)
}

impl Default for ReceiptSettings {
    fn default() -> Self {
        ReceiptSettings {
            expires_after: default_receipt_ttl(),
            expires_after_by_level: Default::default(),
            for_auto_run: false,
        }
    }
}

impl ReceiptSettings {
    /// Seconds a receipt for an action at `level` is good for.
    pub fn ttl_s(&self, level: crate::event::Level) -> i64 {
        let d = self
            .expires_after_by_level
            .get(&level)
            .map(|d| **d)
            .unwrap_or(self.expires_after);
        d.as_secs() as i64
    }

    fn validate(&self, problems: &mut Problems) {
        let check = |at: String, d: std::time::Duration, problems: &mut Problems| {
            if d.as_secs() == 0 || d.as_secs() > 7 * 24 * 3600 {
                problems.push(
                    at,
                    format!(
                        "{}: a receipt must last from 1s to 7 days",
                        humantime::format_duration(d)
                    ),
                );
            }
        };
        check(
            "trust.receipts.expires_after".into(),
            self.expires_after,
            problems,
        );
        for (level, d) in &self.expires_after_by_level {
            let at = format!("trust.receipts.expires_after_by_level.{}", level.as_str());
            check(at, **d, problems);
        }
    }
}

impl std::fmt::Debug for TrustSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustSettings")
            .field("decision_keys", &self.decision_keys)
            .field("allow_unsigned_decisions", &self.allow_unsigned_decisions)
            .field("signing_key", &self.signing_key.as_ref().map(|_| "***"))
            .field("signing_key_id", &self.signing_key_id)
            .field("published_keys", &self.published_keys)
            .field("receipts", &self.receipts)
            .finish()
    }
}

/// What a key id may be (said where one is refused).
pub const KEY_ID_RULE: &str = "1 to 64 letters, digits, '-', '_' or '.'";

/// True for a well-formed key id (the `kid` of its signatures): see [`KEY_ID_RULE`].
pub fn is_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Checks a key's id (well-formed, once in its list) and public key.
fn check_key<'a>(
    at: &str,
    id: &'a str,
    public_key: &str,
    seen: &mut std::collections::HashSet<&'a str>,
    problems: &mut Problems,
) {
    if !is_key_id(id) {
        problems.push(format!("{at}.id"), format!("{id:?}: {KEY_ID_RULE}"));
    } else if !seen.insert(id) {
        problems.push(format!("{at}.id"), format!("{id:?} is named twice"));
    }
    if let Err(e) = crate::trust::public_key(public_key) {
        problems.push(format!("{at}.public_key"), format!("{public_key:?}: {e}"));
    }
}

impl TrustSettings {
    /// Checks values without I/O.
    pub fn validate(&self, problems: &mut Problems) {
        self.receipts.validate(problems);
        let mut seen = std::collections::HashSet::new();
        for (i, k) in self.decision_keys.iter().enumerate() {
            let at = format!("trust.decision_keys[{i}]");
            check_key(&at, &k.id, &k.public_key, &mut seen, problems);
            if k.roles.iter().any(|r| r.trim().is_empty()) {
                problems.push(format!("{at}.roles"), "an empty role name");
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, k) in self.published_keys.iter().enumerate() {
            let at = format!("trust.published_keys[{i}]");
            check_key(&at, &k.id, &k.public_key, &mut seen, problems);
        }
        match (&self.signing_key, &self.signing_key_id) {
            (Some(_), None) => problems.push(
                "trust.signing_key_id",
                "missing: the id its signatures name (as in trust.decision_keys)",
            ),
            (None, Some(_)) => problems.push(
                "trust.signing_key",
                "missing: trust.signing_key_id is set without a key",
            ),
            (Some(key), Some(id)) => {
                if !is_key_id(id) {
                    problems.push("trust.signing_key_id", format!("{id:?}: {KEY_ID_RULE}"));
                }
                match Source::of(key) {
                    Source::Literal(pem) => {
                        if let Err(e) = crate::trust::Signer::from_pem(id, pem) {
                            problems.push("trust.signing_key", e.to_string());
                        }
                    }
                    source => {
                        if let Some(why) = source.check() {
                            problems.push("trust.signing_key", why);
                        }
                    }
                }
            }
            (None, None) => {}
        }
    }

    /// Resolves a `file:`/`env:` signing key and checks that it parses (never showing it).
    pub fn resolve_secrets(
        &mut self,
        env: &impl Fn(&str) -> Option<String>,
        problems: &mut Problems,
    ) {
        let Some(value) = self.signing_key.as_mut() else {
            return;
        };
        match Source::of(value).resolve(env) {
            Ok(pem) => *value = pem,
            Err(why) => return problems.push("trust.signing_key", why),
        }
        let id = self.signing_key_id.as_deref().unwrap_or_default();
        if let Err(e) = crate::trust::Signer::from_pem(id, value) {
            problems.push("trust.signing_key", e.to_string());
        }
    }

    /// The keys the processor checks decisions against (validated settings: a key that does
    /// not parse was refused at start-up).
    pub fn decision_trust(&self) -> crate::trust::DecisionTrust {
        let keys = self.decision_keys.iter().filter_map(|k| {
            let public = crate::trust::public_key(&k.public_key).ok()?;
            Some((k.id.clone(), public, k.roles.clone()))
        });
        crate::trust::DecisionTrust::new(keys, self.allow_unsigned_decisions)
    }

    /// The published keys as a JWKS document (validated settings). Only the keys listed: a
    /// process's own signing key is not added (the inbox's signs decisions, which must never
    /// pass for a receipt).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<(&str, ed25519_dalek::VerifyingKey)> = self
            .published_keys
            .iter()
            .filter_map(|k| Some((k.id.as_str(), crate::trust::public_key(&k.public_key).ok()?)))
            .collect();
        crate::trust::jwks(keys.iter().map(|(id, k)| (*id, k)))
    }

    /// The key this process signs decisions with, if any (settings whose secrets were
    /// resolved: a key that does not parse was refused then).
    pub fn signer(&self) -> Option<crate::trust::Signer> {
        let (key, id) = (
            self.signing_key.as_deref()?,
            self.signing_key_id.as_deref()?,
        );
        Some(
            crate::trust::Signer::from_pem(id, key)
                .expect("trust.signing_key was checked when the settings were loaded"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::Signer;

    #[test]
    fn every_problem_of_the_section_is_listed_by_setting() {
        let good = Signer::generate("inbox-1");
        let s = TrustSettings {
            decision_keys: vec![
                DecisionKey {
                    id: "inbox-1".into(),
                    public_key: good.public_key(),
                    roles: vec![],
                },
                DecisionKey {
                    id: "inbox-1".into(),
                    public_key: "AAAA".into(),
                    roles: vec![" ".into()],
                },
                DecisionKey {
                    id: "has space".into(),
                    public_key: good.public_key(),
                    roles: vec![],
                },
            ],
            signing_key: Some("not a key".into()),
            signing_key_id: Some("inbox-1".into()),
            ..TrustSettings::default()
        };
        let mut p = Problems::default();
        s.validate(&mut p);
        let text = p.to_string();
        for needle in [
            "trust.decision_keys[1].id",
            "named twice",
            "trust.decision_keys[1].public_key",
            "3 bytes",
            "trust.decision_keys[1].roles",
            "trust.decision_keys[2].id",
            "trust.signing_key",
            "PKCS#8",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        assert!(
            !text.contains("not a key"),
            "a secret is never shown: {text}"
        );
    }

    #[test]
    fn a_signing_key_comes_from_a_secret_and_a_bad_one_is_named_not_shown() {
        let k = Signer::generate("inbox-1");
        let pem = k.to_pem();
        let mut s = TrustSettings {
            signing_key: Some("env:KEY".into()),
            signing_key_id: Some("inbox-1".into()),
            ..TrustSettings::default()
        };
        let mut p = Problems::default();
        s.validate(&mut p);
        assert!(p.is_empty(), "{p}");
        s.resolve_secrets(&|n: &str| (n == "KEY").then(|| pem.clone()), &mut p);
        assert!(p.is_empty(), "{p}");
        assert_eq!(s.signer().unwrap().public_key(), k.public_key());
        let mut bad = TrustSettings {
            signing_key: Some("env:KEY".into()),
            signing_key_id: Some("inbox-1".into()),
            ..TrustSettings::default()
        };
        bad.resolve_secrets(&|_: &str| Some("canary-s3cr3t".into()), &mut p);
        assert!(p.to_string().contains("trust.signing_key"));
        assert!(!p.to_string().contains("canary-s3cr3t"));
        assert!(!serde_json::to_string(&s).unwrap().contains("PRIVATE"));
        let debug = format!(
            "{:?}",
            crate::config::Settings {
                trust: s.clone(),
                ..Default::default()
            }
        );
        assert!(
            !debug.contains("PRIVATE") && debug.contains("***"),
            "{debug}"
        );
    }
}
