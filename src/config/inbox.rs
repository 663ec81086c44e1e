//! `[inbox]`: the reviewers' web inbox (`handoff inbox`): where it listens, how people sign in,
//! and who holds which roles. Checked without I/O like every section; role names are checked
//! against the matrix when the inbox starts. Secrets (`cookie_key`, `slack_signing_secret`)
//! may be `file:/path` or `env:NAME` references and are never shown.

use super::secret::Source;
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How people sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxAuth {
    /// A personal token (only its SHA-256 is configured) exchanged for a session cookie.
    #[default]
    Token,
    /// A trusted reverse proxy (SSO) names the person in `proxy_header`.
    Proxy,
}

/// The shortest time an approval should take after the detail was opened, per tier: quicker
/// ones are counted as `fast` (a rubber-stamp signal).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinReview {
    /// Warm escalations.
    #[serde(default = "default_min_warm", with = "humantime_serde")]
    pub warm: Duration,
    /// Immediate escalations.
    #[serde(default = "default_min_immediate", with = "humantime_serde")]
    pub immediate: Duration,
}

fn default_min_warm() -> Duration {
    Duration::from_secs(20)
}
fn default_min_immediate() -> Duration {
    Duration::from_secs(5)
}

impl Default for MinReview {
    fn default() -> Self {
        MinReview {
            warm: default_min_warm(),
            immediate: default_min_immediate(),
        }
    }
}

/// One person who answers escalations.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Their name: `decided_by` of their answers, and the user the proxy names.
    pub name: String,
    /// The matrix roles whose escalations they see and answer.
    pub roles: Vec<String>,
    /// Hex SHA-256 of their sign-in token (`handoff token` makes a pair).
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Their Slack user id (`U…`): a button pressed in Slack answers as this person.
    #[serde(default)]
    pub slack_user: Option<String>,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("token_sha256", &self.token_sha256.as_ref().map(|_| "***"))
            .field("slack_user", &self.slack_user)
            .finish()
    }
}

/// The reviewers' inbox.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxSettings {
    /// Address to serve on; localhost by default.
    #[serde(default = "default_bind")]
    pub bind: String,
    /// The inbox as people reach it (links in notifications); `http://` + `bind` by default.
    #[serde(default)]
    pub public_url: Option<String>,
    /// `token` (default) or `proxy`.
    #[serde(default)]
    pub auth: InboxAuth,
    /// With `auth = "proxy"`: the header naming the signed-in person.
    #[serde(default = "default_proxy_header")]
    pub proxy_header: String,
    /// With `auth = "proxy"`: the peer addresses allowed to send that header (required:
    /// loopback for a proxy in the same pod or host).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// With `auth = "proxy"`: a secret the proxy sends in `proxy_secret_header` with every
    /// request (at least 16 bytes; a reference such as `file:/run/secrets/inbox/proxy-secret`).
    /// Required: without it any process on a trusted address could name anyone.
    #[serde(default, skip_serializing)]
    pub proxy_secret: Option<String>,
    /// With `auth = "proxy"`: the header carrying `proxy_secret`.
    #[serde(default = "default_proxy_secret_header")]
    pub proxy_secret_header: String,
    /// Key signing session cookies and form tokens (at least 32 bytes; a reference such as
    /// `file:/run/secrets/inbox-key`). Without it each process makes its own, so people sign in
    /// again after a restart and replicas do not share sessions.
    #[serde(default, skip_serializing)]
    pub cookie_key: Option<String>,
    /// Keys `cookie_key` replaced, still accepted (never used to sign) so nobody is signed out
    /// by a key rotation: move the old key here, set the new one, drop the old after
    /// `session_ttl`. References such as `file:` like `cookie_key`.
    #[serde(default, skip_serializing)]
    pub previous_cookie_keys: Vec<String>,
    /// Cookies marked `Secure`; by default when `public_url` is `https://`.
    #[serde(default)]
    pub secure_cookies: Option<bool>,
    /// How long a sign-in lasts.
    #[serde(default = "default_session_ttl", with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Slack's signing secret: enables `POST /slack/actions` (buttons in Slack messages).
    #[serde(default, skip_serializing)]
    pub slack_signing_secret: Option<String>,
    /// Slack buttons: the workspace id (`T…`) whose presses are taken (required with
    /// `slack_signing_secret`).
    #[serde(default)]
    pub slack_team_id: Option<String>,
    /// Slack buttons: what a press's `response_url` must start with to be called back.
    #[serde(default = "default_slack_response_urls")]
    pub slack_response_urls: Vec<String>,
    /// Who may sign in, and their roles.
    #[serde(default)]
    pub people: Vec<Person>,
    /// Approvals quicker than this after opening the detail count as `fast`.
    #[serde(default)]
    pub min_review: MinReview,
    /// Connections open at once; more are closed when accepted (and counted).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Host names served beside addresses, `localhost` and `public_url`'s host (a request
    /// naming any other `Host` gets 421: DNS rebinding).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

fn default_max_connections() -> usize {
    1_024
}

impl std::fmt::Debug for InboxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxSettings")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("auth", &self.auth)
            .field("people", &self.people)
            .finish_non_exhaustive()
    }
}

fn default_bind() -> String {
    "127.0.0.1:9870".into()
}
fn default_proxy_header() -> String {
    "X-Forwarded-User".into()
}
fn default_slack_response_urls() -> Vec<String> {
    vec!["https://hooks.slack.com/".into()]
}
fn default_proxy_secret_header() -> String {
    "X-Handoff-Proxy-Secret".into()
}
fn default_session_ttl() -> Duration {
    Duration::from_secs(12 * 3600)
}

impl Default for InboxSettings {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every field has a default")
    }
}

impl InboxSettings {
    /// The base of links to the inbox.
    pub fn base_url(&self) -> String {
        let url = match &self.public_url {
            Some(u) => u.clone(),
            None => format!("http://{}", self.bind),
        };
        url.trim_end_matches('/').to_string()
    }

    /// Whether cookies are marked `Secure`.
    pub fn secure(&self) -> bool {
        self.secure_cookies
            .unwrap_or_else(|| self.base_url().starts_with("https://"))
    }

    /// The person named `name`.
    pub fn person(&self, name: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.name == name)
    }

    /// Checks values without I/O.
    pub fn validate(&self, problems: &mut Problems) {
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            problems.push(
                "inbox.bind",
                format!("{:?} is not an address such as 127.0.0.1:9870", self.bind),
            );
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push(
                    "inbox.public_url",
                    format!("{u:?} must start with http:// or https://"),
                );
            }
        }
        if self.auth == InboxAuth::Proxy {
            if !is_header_name(&self.proxy_header) {
                problems.push(
                    "inbox.proxy_header",
                    format!("{:?} is not a header name", self.proxy_header),
                );
            }
            if !is_header_name(&self.proxy_secret_header) {
                problems.push(
                    "inbox.proxy_secret_header",
                    format!("{:?} is not a header name", self.proxy_secret_header),
                );
            }
            if self.trusted_proxies.is_empty() {
                problems.push(
                    "inbox.trusted_proxies",
                    "empty: with auth = \"proxy\" list the proxy's addresses (e.g. [\"127.0.0.1\"] \
                     for a proxy beside the inbox)",
                );
            }
            if self.proxy_secret.is_none() {
                problems.push(
                    "inbox.proxy_secret",
                    "missing: with auth = \"proxy\" the proxy must send a shared secret \
                     (e.g. file:/run/secrets/inbox/proxy-secret), or any process on a trusted \
                     address could sign in as anyone",
                );
            }
            for (i, p) in self.trusted_proxies.iter().enumerate() {
                if p.parse::<std::net::IpAddr>().is_err() {
                    problems.push(
                        format!("inbox.trusted_proxies[{i}]"),
                        format!("{p:?} is not an IP address"),
                    );
                }
            }
        }
        for (field, v) in [
            ("cookie_key", &self.cookie_key),
            ("slack_signing_secret", &self.slack_signing_secret),
            ("proxy_secret", &self.proxy_secret),
        ] {
            if let Some(why) = v.as_deref().and_then(|v| Source::of(v).check()) {
                problems.push(format!("inbox.{field}"), why);
            }
        }
        for (i, v) in self.previous_cookie_keys.iter().enumerate() {
            if let Some(why) = Source::of(v).check() {
                problems.push(format!("inbox.previous_cookie_keys[{i}]"), why);
            }
        }
        if !self.previous_cookie_keys.is_empty() && self.cookie_key.is_none() {
            problems.push(
                "inbox.previous_cookie_keys",
                "set without cookie_key: a rotation needs the new key in cookie_key",
            );
        }
        if self.slack_signing_secret.is_some() && self.slack_team_id.is_none() {
            problems.push(
                "inbox.slack_team_id",
                "missing: with slack_signing_secret set, name the workspace (T…) whose button \
                 presses are taken",
            );
        }
        for (i, u) in self.slack_response_urls.iter().enumerate() {
            let host_end = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"));
            if !host_end.is_some_and(|rest| rest.contains('/') && !rest.starts_with('/')) {
                problems.push(
                    format!("inbox.slack_response_urls[{i}]"),
                    format!("{u:?} is not a URL prefix with a host and a path, such as https://hooks.slack.com/"),
                );
            }
        }
        if self.max_connections == 0 {
            problems.push("inbox.max_connections", "0: at least one is needed");
        }
        if self.session_ttl < Duration::from_secs(60) {
            problems.push(
                "inbox.session_ttl",
                format!(
                    "{} is shorter than a minute",
                    humantime::format_duration(self.session_ttl)
                ),
            );
        }
        self.validate_people(problems);
    }

    fn validate_people(&self, problems: &mut Problems) {
        for (i, p) in self.people.iter().enumerate() {
            let at = format!("inbox.people[{i}]");
            if p.name.trim().is_empty() || p.name.chars().any(char::is_control) {
                problems.push(
                    format!("{at}.name"),
                    format!("{:?} is not a usable name", p.name),
                );
            }
            if self.people[..i].iter().any(|q| q.name == p.name) {
                problems.push(
                    format!("{at}.name"),
                    format!("{:?} is listed twice", p.name),
                );
            }
            if p.roles.is_empty() {
                problems.push(
                    format!("{at}.roles"),
                    "empty: a person needs at least one role",
                );
            }
            match &p.token_sha256 {
                Some(h) if !(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) => problems
                    .push(
                        format!("{at}.token_sha256"),
                        "not 64 hex digits (see `handoff token`)",
                    ),
                None if self.auth == InboxAuth::Token => problems.push(
                    format!("{at}.token_sha256"),
                    format!(
                        "missing: with auth = \"token\" {:?} cannot sign in (see `handoff token`)",
                        p.name
                    ),
                ),
                _ => {}
            }
            if let Some(u) = &p.slack_user {
                if self.people[..i]
                    .iter()
                    .any(|q| q.slack_user.as_ref() == Some(u))
                {
                    problems.push(
                        format!("{at}.slack_user"),
                        format!("{u:?} is mapped to two people"),
                    );
                }
            }
        }
    }

    /// Names every role of `people` that `known` lacks (checked when the matrix is loaded).
    pub fn check_roles(&self, known: &[&str], problems: &mut Problems) {
        for (i, p) in self.people.iter().enumerate() {
            for (j, r) in p.roles.iter().enumerate() {
                if !known.contains(&r.as_str()) {
                    problems.push(
                        format!("inbox.people[{i}].roles[{j}]"),
                        format!(
                            "{r:?} is not a role of the matrix (roles: {})",
                            known.join(", ")
                        ),
                    );
                }
            }
        }
    }

    /// Resolves `file:`/`env:` references of its secrets.
    pub fn resolve_secrets(
        &mut self,
        env: &impl Fn(&str) -> Option<String>,
        problems: &mut Problems,
    ) {
        for (field, v) in [
            ("cookie_key", &mut self.cookie_key),
            ("slack_signing_secret", &mut self.slack_signing_secret),
            ("proxy_secret", &mut self.proxy_secret),
        ] {
            if let Some(value) = v.as_mut() {
                match Source::of(value).resolve(env) {
                    Ok(x) => *value = x,
                    Err(why) => problems.push(format!("inbox.{field}"), why),
                }
            }
        }
        for (field, v) in [
            ("cookie_key", &self.cookie_key),
            ("slack_signing_secret", &self.slack_signing_secret),
            ("proxy_secret", &self.proxy_secret),
        ] {
            if let Some(why) = v.as_deref().and_then(|v| too_short(field, v)) {
                problems.push(format!("inbox.{field}"), why);
            }
        }
        for (i, value) in self.previous_cookie_keys.iter_mut().enumerate() {
            let field = format!("inbox.previous_cookie_keys[{i}]");
            match Source::of(value).resolve(env) {
                Ok(x) => match too_short("cookie_key", &x) {
                    Some(why) => problems.push(field, why),
                    None => *value = x,
                },
                Err(why) => problems.push(field, why),
            }
        }
    }
}

/// Why a secret of `field` is too short to keep anyone out (its length only, never its value):
/// the cookie key signs sessions (32 bytes at least); Slack's signing secret is 32 characters,
/// and an empty one would let anyone forge button presses (16 at least).
fn too_short(field: &str, secret: &str) -> Option<String> {
    let least = if field == "cookie_key" { 32 } else { 16 };
    (secret.len() < least).then(|| {
        format!(
            "{} bytes; at least {least} are needed (an empty or short secret lets anyone sign)",
            secret.len()
        )
    })
}

fn is_header_name(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
