//! Signed human decisions: the header a writer adds, and the processor's check of it.

use super::keys::{verify_detached, Signer, Unverified};
use ed25519_dalek::VerifyingKey;
use std::collections::HashMap;

/// The record header carrying a decision's signature.
pub const SIGNATURE_HEADER: &str = "handoff.signature";
/// The JWS `typ` of a decision's signature.
pub const DECISION_TYP: &str = "handoff-decision";

/// The signature header for a decision record whose value is `value`.
pub fn signature_header(signer: &Signer, value: &[u8]) -> (&'static str, Vec<u8>) {
    (
        SIGNATURE_HEADER,
        signer.sign_detached(DECISION_TYP, value).into_bytes(),
    )
}

/// Why a decision is refused; [`Refused::reason`] is its dead-letter reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No `handoff.signature` header while keys are trusted.
    #[error("header `handoff.signature` is missing: decisions must be signed by a trusted key (trust.allow_unsigned_decisions is false)")]
    Unsigned,
    /// Signed by a key not trusted here.
    #[error("header `handoff.signature` names key {0:?}, which is not among trust.decision_keys")]
    UnknownKey(String),
    /// A signature that does not parse or does not match the record.
    #[error("header `handoff.signature` does not verify: {0}")]
    BadSignature(String),
    /// A trusted key that may not vouch for the decision's role.
    #[error("field `role` has value {role:?}: key {key:?} may not sign decisions for it")]
    RoleNotVouched {
        /// The key's id.
        key: String,
        /// The decision's role.
        role: String,
    },
}

impl Refused {
    /// The dead-letter reason (a bounded label).
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::Unsigned => "unsigned_decision",
            Refused::UnknownKey(_) => "unknown_signing_key",
            Refused::BadSignature(_) => "bad_signature",
            Refused::RoleNotVouched { .. } => "role_not_vouched",
        }
    }
}

/// The keys the processor trusts for decisions, each with the roles it may vouch for (every
/// role when none are named). With no keys, every decision is taken as it is (as before
/// signatures existed).
#[derive(Debug, Clone, Default)]
pub struct DecisionTrust {
    keys: HashMap<String, (VerifyingKey, Vec<String>)>,
    allow_unsigned: bool,
}

/// Who signed a decision that passed the check: a trusted key's id, or nobody (allowed).
pub type SignedBy = Option<String>;

impl DecisionTrust {
    /// Trusts `keys` (id, public key, the roles it may vouch for); unsigned decisions pass
    /// only when `allow_unsigned`.
    pub fn new(
        keys: impl IntoIterator<Item = (String, VerifyingKey, Vec<String>)>,
        allow_unsigned: bool,
    ) -> DecisionTrust {
        DecisionTrust {
            keys: keys
                .into_iter()
                .map(|(id, k, roles)| (id, (k, roles)))
                .collect(),
            allow_unsigned,
        }
    }

    /// True when decisions are checked (some key is trusted).
    pub fn is_on(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks the signature of a record with `headers` over its `value`: the key that signed
    /// it. More than one `handoff.signature` header is a bad signature (which one counts would
    /// depend on the reader).
    pub fn signature(
        &self,
        headers: &[(String, Vec<u8>)],
        value: &[u8],
    ) -> Result<SignedBy, Refused> {
        if !self.is_on() {
            return Ok(None);
        }
        let mut found = headers.iter().filter(|(k, _)| k == SIGNATURE_HEADER);
        let (jws, another) = (found.next(), found.next());
        if another.is_some() {
            return Err(Refused::BadSignature(
                "the record has more than one such header".into(),
            ));
        }
        let Some((_, jws)) = jws else {
            return if self.allow_unsigned {
                Ok(None)
            } else {
                Err(Refused::Unsigned)
            };
        };
        let jws = std::str::from_utf8(jws)
            .map_err(|_| Refused::BadSignature("the header is not UTF-8".into()))?;
        match verify_detached(jws, DECISION_TYP, value, |kid| {
            self.keys.get(kid).map(|(k, _)| k)
        }) {
            Ok(kid) => Ok(Some(kid)),
            Err(Unverified::UnknownKey(kid)) => Err(Refused::UnknownKey(kid)),
            Err(Unverified::Bad(why)) => Err(Refused::BadSignature(why)),
        }
    }

    /// Checks that the key that signed may vouch for `role`.
    pub fn vouches(&self, signed_by: &SignedBy, role: &str) -> Result<(), Refused> {
        let Some(kid) = signed_by else { return Ok(()) };
        let roles = self
            .keys
            .get(kid)
            .map(|(_, r)| r.as_slice())
            .unwrap_or_default();
        if roles.is_empty() || roles.iter().any(|r| r == role) {
            return Ok(());
        }
        Err(Refused::RoleNotVouched {
            key: kid.clone(),
            role: role.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::public_key;

    fn trust(signers: &[(&Signer, &[&str])], allow_unsigned: bool) -> DecisionTrust {
        let keys = signers.iter().map(|(s, roles)| {
            let roles = roles.iter().map(|r| r.to_string()).collect();
            (
                s.id().to_string(),
                public_key(&s.public_key()).unwrap(),
                roles,
            )
        });
        DecisionTrust::new(keys, allow_unsigned)
    }

    fn headers(h: (&str, Vec<u8>)) -> Vec<(String, Vec<u8>)> {
        vec![(h.0.to_string(), h.1)]
    }

    fn check(
        t: &DecisionTrust,
        headers: &[(String, Vec<u8>)],
        value: &[u8],
    ) -> Result<SignedBy, Refused> {
        t.signature(headers, value)
    }

    #[test]
    fn a_trusted_key_passes_and_every_forgery_is_refused_with_its_reason() {
        let inbox = Signer::generate("inbox-1");
        let t = trust(&[(&inbox, &["support"])], false);
        let value = b"the decision's bytes".as_slice();
        let signed = headers(signature_header(&inbox, value));
        let by = check(&t, &signed, value).unwrap();
        assert_eq!(by.as_deref(), Some("inbox-1"));
        assert_eq!(t.vouches(&by, "support"), Ok(()));
        let refused = [
            check(&t, &[], value).unwrap_err(),
            check(&t, &signed, b"other bytes").unwrap_err(),
            check(
                &t,
                &headers(signature_header(&Signer::generate("mallory"), value)),
                value,
            )
            .unwrap_err(),
            check(
                &t,
                &headers(signature_header(&Signer::generate("inbox-1"), value)),
                value,
            )
            .unwrap_err(),
            t.vouches(&by, "finance").unwrap_err(),
        ];
        let reasons: Vec<&str> = refused.iter().map(Refused::reason).collect();
        assert_eq!(
            reasons,
            [
                "unsigned_decision",
                "bad_signature",
                "unknown_signing_key",
                "bad_signature",
                "role_not_vouched"
            ]
        );
        let mut twice = signed.clone();
        twice.extend(headers(signature_header(&inbox, b"other bytes")));
        assert_eq!(
            check(&t, &twice, value).unwrap_err().reason(),
            "bad_signature"
        );
        assert!(refused[4]
            .to_string()
            .contains("field `role` has value \"finance\""));
    }

    #[test]
    fn without_keys_everything_passes_and_unsigned_ones_pass_only_when_allowed() {
        let none = DecisionTrust::default();
        assert_eq!(check(&none, &[], b"x"), Ok(None));
        let inbox = Signer::generate("inbox-1");
        let upgrading = trust(&[(&inbox, &[])], true);
        assert_eq!(check(&upgrading, &[], b"x"), Ok(None));
        assert_eq!(upgrading.vouches(&None, "anyone"), Ok(()));
        let bad = headers(signature_header(&Signer::generate("inbox-1"), b"x"));
        assert_eq!(
            check(&upgrading, &bad, b"x").unwrap_err().reason(),
            "bad_signature",
            "allowing unsigned decisions does not allow badly signed ones"
        );
        let any_role = check(&upgrading, &headers(signature_header(&inbox, b"x")), b"x");
        assert_eq!(upgrading.vouches(&any_role.unwrap(), "finance"), Ok(()));
    }
}
