//! `[gateway]`: the HTTP gateway for agents that do not speak Kafka (`handoff gateway`): where it
//! listens, its limits, and the agents' keys. Checked without I/O like every section. A key is
//! configured only as its SHA-256 (`handoff token --agent` makes a pair) and is bound to the
//! agent ids it may act as.

use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One agent (or a fleet of them sharing a key) allowed to use the gateway.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayAgent {
    /// A name for logs (never on a metric).
    pub name: String,
    /// Hex SHA-256 of its API key.
    pub key_sha256: String,
    /// The `agent_id`s it submits as and whose verdicts it reads.
    pub agent_ids: Vec<String>,
}

impl std::fmt::Debug for GatewayAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayAgent")
            .field("name", &self.name)
            .field("key_sha256", &"***")
            .field("agent_ids", &self.agent_ids)
            .finish()
    }
}

/// The gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Address to serve on; localhost by default.
    #[serde(default = "default_bind")]
    pub bind: String,
    /// The gateway as agents reach it (printed, and the OpenAPI document's server); `http://` +
    /// `bind` by default.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Largest request body taken; larger ones are refused with 413 before they are read.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Longest `?wait=` of a long poll (a longer one is shortened to it).
    #[serde(default = "default_max_wait", with = "humantime_serde")]
    pub max_wait: Duration,
    /// Requests that may wait for a verdict at once (long polls and event streams); more are
    /// refused with 503 and `Retry-After`.
    #[serde(default = "default_max_waiting")]
    pub max_waiting: usize,
    /// Verdicts kept to answer from: the most recent actions' first and final verdicts.
    #[serde(default = "default_window")]
    pub window: usize,
    /// How far back `agent.verdicts` is read at start-up (the window is rebuilt from it).
    #[serde(default = "default_look_back", with = "humantime_serde")]
    pub look_back: Duration,
    /// The longest a submission waits for the broker's acknowledgement.
    #[serde(default = "default_submit_timeout", with = "humantime_serde")]
    pub submit_timeout: Duration,
    /// The agents and their keys.
    #[serde(default)]
    pub agents: Vec<GatewayAgent>,
    /// Connections open at once; more are closed when accepted (and counted).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Host names served beside addresses, `localhost` and `public_url`'s host (a request
    /// naming any other `Host` gets 421: DNS rebinding).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

fn default_max_connections() -> usize {
    10_000
}

fn default_bind() -> String {
    "127.0.0.1:9880".into()
}
fn default_max_body_bytes() -> usize {
    256 * 1024
}
fn default_max_wait() -> Duration {
    Duration::from_secs(60)
}
fn default_max_waiting() -> usize {
    20_000
}
fn default_window() -> usize {
    200_000
}
fn default_look_back() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_submit_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for GatewaySettings {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every field has a default")
    }
}

impl GatewaySettings {
    /// The base of the gateway's URLs.
    pub fn base_url(&self) -> String {
        let url = match &self.public_url {
            Some(u) => u.clone(),
            None => format!("http://{}", self.bind),
        };
        url.trim_end_matches('/').to_string()
    }

    /// Checks values without I/O.
    pub fn validate(&self, problems: &mut Problems) {
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            problems.push(
                "gateway.bind",
                format!("{:?} is not an address such as 127.0.0.1:9880", self.bind),
            );
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push(
                    "gateway.public_url",
                    format!("{u:?} must start with http:// or https://"),
                );
            }
        }
        for (field, value, least) in [
            ("max_body_bytes", self.max_body_bytes, 1024),
            ("max_waiting", self.max_waiting, 1),
            ("max_connections", self.max_connections, 1),
            ("window", self.window, 1),
        ] {
            if value < least {
                problems.push(
                    format!("gateway.{field}"),
                    format!("{value} is below the least usable value, {least}"),
                );
            }
        }
        for (field, d) in [
            ("max_wait", self.max_wait),
            ("submit_timeout", self.submit_timeout),
        ] {
            if d.is_zero() {
                problems.push(format!("gateway.{field}"), "0s: it must be positive");
            }
        }
        self.validate_agents(problems);
    }

    fn validate_agents(&self, problems: &mut Problems) {
        for (i, a) in self.agents.iter().enumerate() {
            let at = format!("gateway.agents[{i}]");
            if a.name.trim().is_empty() || a.name.chars().any(char::is_control) {
                problems.push(
                    format!("{at}.name"),
                    format!("{:?} is not a usable name", a.name),
                );
            }
            let h = &a.key_sha256;
            if !(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) {
                problems.push(
                    format!("{at}.key_sha256"),
                    "not 64 hex digits (see `handoff token --agent`)",
                );
            } else if self.agents[..i]
                .iter()
                .any(|b| b.key_sha256.eq_ignore_ascii_case(h))
            {
                problems.push(
                    format!("{at}.key_sha256"),
                    "the same key as an agent listed before",
                );
            }
            if a.agent_ids.is_empty() {
                problems.push(
                    format!("{at}.agent_ids"),
                    "empty: a key acts as at least one agent id",
                );
            }
            for (j, id) in a.agent_ids.iter().enumerate() {
                if id.trim().is_empty() {
                    problems.push(format!("{at}.agent_ids[{j}]"), "an empty agent id");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named_by_its_setting() {
        let s: GatewaySettings = serde_json::from_value(serde_json::json!({
            "bind": "nowhere",
            "max_body_bytes": 10,
            "max_wait": "0s",
            "agents": [
                {"name": "a", "key_sha256": "00", "agent_ids": []},
                {"name": "b", "key_sha256": "ab".repeat(32), "agent_ids": ["x"]},
                {"name": "c", "key_sha256": "AB".repeat(32), "agent_ids": [" "]},
            ]
        }))
        .unwrap();
        let mut p = Problems::default();
        s.validate(&mut p);
        let all = p.to_string();
        for needle in [
            "gateway.bind",
            "gateway.max_body_bytes",
            "gateway.max_wait",
            "gateway.agents[0].key_sha256",
            "gateway.agents[0].agent_ids",
            "gateway.agents[2].key_sha256",
            "gateway.agents[2].agent_ids[0]",
        ] {
            assert!(all.contains(needle), "{needle} missing from:\n{all}");
        }
        assert_eq!(p.len(), 7, "{all}");
        assert!(!format!("{:?}", s.agents[1]).contains("abab"));
    }

    #[test]
    fn the_defaults_are_valid() {
        let mut p = Problems::default();
        GatewaySettings::default().validate(&mut p);
        assert!(p.is_empty(), "{p}");
    }
}
