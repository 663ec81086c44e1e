//! Trust in what people answered. Every process of handoff's that writes `human.decisions`
//! (the inbox, its Slack path, the simulated people of the demo and the drills) signs each
//! decision record with an Ed25519 key of its own; the processor checks the signature against
//! the public keys it is configured to trust, and that the key may vouch for the decision's
//! role, before the decision changes anything. A decision that fails is a dead letter naming
//! why (`unsigned_decision`, `unknown_signing_key`, `bad_signature`, `role_not_vouched`).
//!
//! The signature is a JWS (RFC 7515) in compact form with a detached payload (its Appendix F):
//! `BASE64URL(header)..BASE64URL(signature)` in the record header `handoff.signature`, over the
//! record's value exactly as written, with `{"alg":"EdDSA","kid":…}` as its protected header —
//! so any JOSE library can check one.
//!
//! What people approved comes back signed too: a final verdict that lets an action run after a
//! human carries an approval receipt ([`receipt`]), a compact JWS an executor checks against the
//! published keys before the tool runs.

pub mod decision;
pub mod jwks;
pub mod keys;
pub mod receipt;

pub use decision::{signature_header, DecisionTrust, Refused, SIGNATURE_HEADER};
pub use jwks::{jwks, read_jwks, JWKS_PATH};
pub use keys::{public_key, KeyError, Signer};
