//! Approval receipts: a compact JWS (EdDSA) on every final verdict that lets an action run
//! after people approved it, binding the exact action — its id, session, agent, type, tool and
//! a SHA-256 of the canonical arguments that may run — to who approved it, under which rules,
//! until when. An executor checks one with [`check`] (or `handoff receipt verify`, or the
//! clients) before the tool runs.
//!
//! The claims follow JWT (RFC 7519: `iss`, `aud`, `iat`, `exp`, `jti`) and carry the OpenID
//! AuthZEN approval profile's (ARAP) `approval` object (`id`, `approved_at`, `approved_until`);
//! hashes are base64url SHA-256 of RFC 8785 canonical JSON, as ARAP's `binding_hash`.

use super::keys::{verify_compact, Signer, Unverified};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The JWS `typ` of a receipt.
pub const RECEIPT_TYP: &str = "handoff-receipt+jwt";
/// The `iss` of every receipt.
pub const ISSUER: &str = "handoff";

/// One person's approval, as the receipt lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    /// Who (`decided_by`).
    pub sub: String,
    /// The role they answered for.
    pub role: String,
    /// When (RFC 3339).
    pub at: String,
    /// Which signing key vouched for the decision (`unsigned` when unsigned decisions were
    /// allowed).
    pub via: String,
    /// SHA-256 (base64url) of the canonical JSON of the context package this person's role saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_sha256: Option<String>,
}

/// The ARAP `approval` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approval's id (the receipt's `jti`).
    pub id: String,
    /// When the last approval came (RFC 3339); none for an action the rules let run alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    /// Not to be used after (RFC 3339; the receipt's `exp`).
    pub approved_until: String,
}

/// A receipt's claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// `handoff`.
    pub iss: String,
    /// The agent the receipt is for.
    pub aud: String,
    /// Unique id.
    pub jti: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// The action.
    pub action_id: String,
    /// Its session.
    pub session_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Its type.
    pub action_type: String,
    /// The tool that may run; none for an action without a tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// SHA-256 (base64url) of the canonical JSON (RFC 8785) of the arguments that may run: the
    /// revised ones when a person revised them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments_sha256: Option<String>,
    /// The verdict: `approved`, `revised`, or `proceed`/`proceed_and_log` for an action the
    /// rules let run alone.
    pub outcome: String,
    /// The option a person chose (run that one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_option: Option<String>,
    /// Everyone who approved, in order.
    #[serde(default)]
    pub approvers: Vec<Approver>,
    /// The rules' version.
    pub rule_version: String,
    /// The level.
    pub level: String,
    /// The triggers that fired.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// ARAP's approval object.
    pub approval: Approval,
}

/// The base64url SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    B64.encode(Sha256::digest(bytes))
}

/// The base64url SHA-256 of the canonical JSON (RFC 8785) of `arguments` (a JSON object as
/// text), or why it is not JSON.
pub fn arguments_sha256(arguments: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(arguments).map_err(|e| format!("the arguments are not JSON: {e}"))?;
    let canonical = serde_json_canonicalizer::to_string(&value)
        .map_err(|e| format!("the arguments cannot be written canonically: {e}"))?;
    Ok(sha256(canonical.as_bytes()))
}

/// The base64url SHA-256 of the canonical JSON of `value` (a context package).
pub fn json_sha256<T: Serialize>(value: &T) -> Option<String> {
    let value = serde_json::to_value(value).ok()?;
    let canonical = serde_json_canonicalizer::to_string(&value).ok()?;
    Some(sha256(canonical.as_bytes()))
}

/// A deterministic receipt id for an action's final verdict made at `decided_at_ms`.
pub fn receipt_id(action_id: &str, decided_at_ms: i64) -> String {
    let digest = Sha256::digest(format!("{action_id}\n{decided_at_ms}").as_bytes());
    B64.encode(&digest[..16])
}

/// Seconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(secs_or_ms: i64, millis: bool) -> String {
    let ms = if millis {
        secs_or_ms
    } else {
        secs_or_ms * 1000
    };
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// The receipt: `claims` signed.
pub fn issue(signer: &Signer, claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialize");
    signer.sign_compact(RECEIPT_TYP, &payload)
}

/// What an executor is about to do, to check a receipt against.
#[derive(Debug, Clone, Default)]
pub struct Expected<'a> {
    /// The arguments about to run (JSON text); `None` to leave them unchecked.
    pub arguments: Option<&'a str>,
    /// The action id; `None` to leave it unchecked.
    pub action_id: Option<&'a str>,
    /// The tool's name; `None` to leave it unchecked.
    pub tool_name: Option<&'a str>,
    /// The agent running it; `None` to leave it unchecked.
    pub agent_id: Option<&'a str>,
    /// Now, in seconds since the epoch.
    pub now_s: i64,
}

/// Why a receipt is refused: each names what does not match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Signed with a key the JWKS does not hold.
    #[error("signed with key {0:?}, which the JWKS does not hold (a foreign receipt)")]
    UnknownKey(String),
    /// Not a receipt, or its signature does not match.
    #[error("not a valid receipt: {0}")]
    Bad(String),
    /// Past its expiry.
    #[error("expired at {expired} (now {now})")]
    Expired {
        /// `exp` as RFC 3339.
        expired: String,
        /// Now as RFC 3339.
        now: String,
    },
    /// A claim differs from what is about to run.
    #[error("{claim}: the receipt says {approved:?}, about to run {found:?}")]
    Mismatch {
        /// The claim.
        claim: &'static str,
        /// What the receipt approves.
        approved: String,
        /// What is about to run.
        found: String,
    },
}

impl Refusal {
    /// A short, stable name (a metric label, a client's error code).
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::UnknownKey(_) => "unknown_key",
            Refusal::Bad(_) => "bad_receipt",
            Refusal::Expired { .. } => "expired",
            Refusal::Mismatch { claim, .. } => match *claim {
                "arguments_sha256" => "arguments_differ",
                "action_id" => "other_action",
                "tool_name" => "other_tool",
                _ => "other_agent",
            },
        }
    }
}

/// Checks `receipt` against the keys (by `kid`) and what is about to run. Returns its claims,
/// or every reason it is refused (a bad signature alone when it does not verify).
pub fn check(
    receipt: &str,
    keys: &HashMap<String, VerifyingKey>,
    expected: &Expected<'_>,
) -> Result<Claims, Vec<Refusal>> {
    let (_, payload) = verify_compact(receipt, RECEIPT_TYP, |kid| keys.get(kid)).map_err(|e| {
        vec![match e {
            Unverified::UnknownKey(k) => Refusal::UnknownKey(k),
            Unverified::Bad(why) => Refusal::Bad(why),
        }]
    })?;
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|e| vec![Refusal::Bad(format!("its claims do not read: {e}"))])?;
    let mut refused = Vec::new();
    if claims.exp <= expected.now_s {
        refused.push(Refusal::Expired {
            expired: rfc3339(claims.exp, false),
            now: rfc3339(expected.now_s, false),
        });
    }
    let mut differs = |claim: &'static str, approved: Option<&str>, found: Option<&str>| {
        if let Some(found) = found {
            if approved != Some(found) {
                refused.push(Refusal::Mismatch {
                    claim,
                    approved: approved.unwrap_or("(none)").to_string(),
                    found: found.to_string(),
                });
            }
        }
    };
    differs("action_id", Some(&claims.action_id), expected.action_id);
    differs("agent_id", Some(&claims.aud), expected.agent_id);
    differs("tool_name", claims.tool_name.as_deref(), expected.tool_name);
    match expected.arguments.map(arguments_sha256) {
        Some(Err(why)) => refused.push(Refusal::Bad(why)),
        Some(Ok(found)) => differs(
            "arguments_sha256",
            claims.arguments_sha256.as_deref(),
            Some(&found),
        ),
        None => {}
    }
    if refused.is_empty() {
        Ok(claims)
    } else {
        Err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            iss: ISSUER.into(),
            aud: "agent-1".into(),
            jti: receipt_id("a-1", 1_000),
            iat: 1_000,
            exp: 1_600,
            action_id: "a-1".into(),
            session_id: "s-1".into(),
            agent_id: "agent-1".into(),
            action_type: "payment.send".into(),
            tool_name: Some("pay".into()),
            arguments_sha256: Some(arguments_sha256(r#"{"amount":25,"to":"x"}"#).unwrap()),
            outcome: "revised".into(),
            chosen_option: None,
            approvers: vec![Approver {
                sub: "alice".into(),
                role: "owner".into(),
                at: rfc3339(999_000, true),
                via: "inbox-1".into(),
                context_sha256: Some(sha256(b"{}")),
            }],
            rule_version: "v".into(),
            level: "ask_first".into(),
            triggers: vec!["high_amount".into()],
            approval: Approval {
                id: receipt_id("a-1", 1_000),
                approved_at: Some(rfc3339(999_000, true)),
                approved_until: rfc3339(1_600, false),
            },
        }
    }

    fn keys(s: &Signer) -> HashMap<String, VerifyingKey> {
        let mut m = HashMap::new();
        m.insert(
            s.id().to_string(),
            super::super::public_key(&s.public_key()).unwrap(),
        );
        m
    }

    #[test]
    fn a_receipt_verifies_for_the_approved_arguments_in_any_key_order_and_spacing() {
        let s = Signer::generate("p-1");
        let r = issue(&s, &claims());
        let at = |args| Expected {
            arguments: Some(args),
            action_id: Some("a-1"),
            tool_name: Some("pay"),
            agent_id: Some("agent-1"),
            now_s: 1_200,
        };
        let got = check(&r, &keys(&s), &at(r#"{ "to": "x", "amount": 25 }"#)).unwrap();
        assert_eq!(got, claims());
        let refused = check(&r, &keys(&s), &at(r#"{"to":"x","amount":40}"#)).unwrap_err();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].reason(), "arguments_differ");
        assert!(refused[0].to_string().starts_with("arguments_sha256: "));
    }

    #[test]
    fn expired_foreign_forged_and_other_actions_are_refused_with_every_reason() {
        let s = Signer::generate("p-1");
        let r = issue(&s, &claims());
        let late = Expected {
            action_id: Some("a-2"),
            tool_name: Some("refund"),
            agent_id: Some("agent-9"),
            now_s: 1_600,
            ..Default::default()
        };
        let reasons: Vec<_> = check(&r, &keys(&s), &late)
            .unwrap_err()
            .iter()
            .map(Refusal::reason)
            .collect();
        assert_eq!(
            reasons,
            ["expired", "other_action", "other_agent", "other_tool"]
        );
        let foreign = issue(&Signer::generate("elsewhere"), &claims());
        assert_eq!(
            check(&foreign, &keys(&s), &Expected::default()).unwrap_err()[0].reason(),
            "unknown_key"
        );
        let same_id = issue(&Signer::generate("p-1"), &claims());
        assert_eq!(
            check(&same_id, &keys(&s), &Expected::default()).unwrap_err()[0].reason(),
            "bad_receipt"
        );
        let decision = s.sign_compact("handoff-decision", b"{}");
        assert!(
            check(&decision, &keys(&s), &Expected::default()).unwrap_err()[0]
                .to_string()
                .contains("typ")
        );
    }
}
