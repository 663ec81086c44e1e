//! The agents' API keys: a key is presented as `Authorization: Bearer KEY`, hashed (SHA-256) and
//! looked up among the configured hashes; the caller it names may act only as its agent ids.
//! Keys themselves are never configured, logged or kept.

use crate::config::GatewayAgent;
use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The configured name (logs only).
    pub name: Arc<str>,
    agent_ids: Arc<[String]>,
}

impl Caller {
    /// True when the caller may act as `agent_id`.
    pub fn may_act_as(&self, agent_id: &str) -> bool {
        self.agent_ids.iter().any(|a| a == agent_id)
    }
}

/// The configured keys, by the SHA-256 of the key.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    by_hash: HashMap<[u8; 32], Caller>,
}

impl Keys {
    /// From checked settings (each `key_sha256` is 64 hex digits).
    pub fn new(agents: &[GatewayAgent]) -> Keys {
        let by_hash = agents
            .iter()
            .filter_map(|a| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&a.key_sha256, &mut hash).ok()?;
                let caller = Caller {
                    name: a.name.as_str().into(),
                    agent_ids: a.agent_ids.clone().into(),
                };
                Some((hash, caller))
            })
            .collect();
        Keys { by_hash }
    }

    /// The caller whose key the request bears, if any.
    pub fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, key) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
            return None;
        }
        let hash: [u8; 32] = Sha256::digest(key.trim().as_bytes()).into();
        self.by_hash.get(&hash).cloned()
    }

    /// True when no key is configured (nobody can use the gateway).
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(&[GatewayAgent {
            name: "support bots".into(),
            key_sha256: crate::inbox::auth::token_sha256("k-1"),
            agent_ids: vec!["agent-a".into(), "agent-b".into()],
        }])
    }

    fn bearing(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn a_key_names_its_caller_and_only_its_agents() {
        let c = keys().caller(&bearing("Bearer k-1")).expect("known key");
        assert_eq!(&*c.name, "support bots");
        assert!(c.may_act_as("agent-a") && c.may_act_as("agent-b"));
        assert!(!c.may_act_as("agent-c"));
        assert!(keys().caller(&bearing("bearer k-1")).is_some());
    }

    #[test]
    fn unknown_malformed_or_missing_keys_name_nobody() {
        for v in ["Bearer k-2", "Basic k-1", "Bearer ", "k-1", "Bearer"] {
            assert_eq!(keys().caller(&bearing(v)), None, "{v}");
        }
        assert_eq!(keys().caller(&HeaderMap::new()), None);
    }
}
