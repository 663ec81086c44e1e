//! `[notify]`: where escalations are announced (webhooks, Slack) and for which roles and tiers.
//! Checked without I/O like every section; receiver URLs and signing secrets may be
//! `file:`/`env:` references and are never shown. Role names are checked against the matrix
//! when `handoff inbox` starts ([`NotifySettings::check_roles`]).

use super::secret::Source;
use crate::event::Tier;
use crate::problems::Problems;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a receiver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverKind {
    /// A JSON POST signed per the Standard Webhooks specification.
    Webhook,
    /// A Slack incoming webhook: a Block Kit message with answer buttons.
    Slack,
}

impl ReceiverKind {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverKind::Webhook => "webhook",
            ReceiverKind::Slack => "slack",
        }
    }
}

/// One place notifications go.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    /// Unique name: the `receiver` label of the metrics and the ledger (letters, digits, `_`,
    /// `-`; at most 64).
    pub name: String,
    /// `webhook` or `slack`.
    pub kind: ReceiverKind,
    /// Where to POST: the URL itself, `file:/path` or `env:NAME` (a Slack webhook URL is a
    /// secret). Never shown.
    #[serde(serialize_with = "masked")]
    pub url: String,
    /// The HMAC key signing webhook messages (required for `webhook`, refused for `slack`):
    /// `whsec_` + base64 as Standard Webhooks libraries make them, or any other text of at
    /// least 16 bytes; itself, `file:/path` or `env:NAME`. Never shown.
    #[serde(
        default,
        serialize_with = "masked_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret: Option<String>,
    /// Roles whose escalations and digests go here; empty: every role.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tiers that go here (`warm`, `immediate`); empty: both.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// Longest wait for one attempt, connecting included.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts to this receiver at the same time, at most.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &"***")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("roles", &self.roles)
            .field("tiers", &self.tiers)
            .field("timeout", &self.timeout)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

impl Receiver {
    /// The HMAC key of a resolved `secret`: the bytes of `whsec_<base64>` decoded, or the
    /// text's own bytes. `None` without a secret or when `whsec_` is not followed by base64.
    pub fn signing_key(&self) -> Option<Vec<u8>> {
        self.secret.as_deref().and_then(signing_key)
    }
}

/// The key bytes of a secret (see [`Receiver::secret`]).
pub fn signing_key(secret: &str) -> Option<Vec<u8>> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).ok(),
        None => Some(secret.as_bytes().to_vec()),
    }
}

/// Notification receivers, their routing, and how delivery is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// Where notifications go; none: `handoff inbox` sends nothing.
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    /// First wait before retrying a failed attempt; it doubles per attempt (with jitter).
    #[serde(default = "default_backoff_initial", with = "humantime_serde")]
    pub backoff_initial: Duration,
    /// Longest wait between two attempts (a `Retry-After` may ask for longer).
    #[serde(default = "default_backoff_max", with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Notices read from the role topics and not yet settled (delivered or abandoned
    /// everywhere), at most: reading pauses above it and resumes below half of it.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// Longest time the ledger may take to read at start-up; past it, what was read is used
    /// (a notice whose outcome was not read may be sent again).
    #[serde(default = "default_restore_timeout", with = "humantime_serde")]
    pub restore_timeout: Duration,
    /// A reminder before the deadline, per tier: to the same receivers, once, when this share
    /// of the time to acknowledge has passed (`warm = 0.75`: with an hour to acknowledge, at 45
    /// minutes, "15m left"). None: no reminders.
    #[serde(default)]
    pub reminders: Reminders,
}

/// `[notify.reminders]`: the share of each tier's time to acknowledge after which the receivers
/// are reminded of an escalation nobody acknowledged yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reminders {
    /// For warm escalations (0 < share < 1).
    #[serde(default)]
    pub warm: Option<f64>,
    /// For immediate escalations (0 < share < 1).
    #[serde(default)]
    pub immediate: Option<f64>,
}

impl Reminders {
    /// The share for `tier`, if reminded.
    pub fn share(&self, tier: Tier) -> Option<f64> {
        match tier {
            Tier::Warm => self.warm,
            Tier::Immediate => self.immediate,
        }
    }

    /// True when some tier is reminded.
    pub fn any(&self) -> bool {
        self.warm.is_some() || self.immediate.is_some()
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_max_in_flight() -> usize {
    4
}
fn default_backoff_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(300)
}
fn default_max_pending() -> usize {
    10_000
}
fn default_restore_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for NotifySettings {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every field has a default")
    }
}

fn masked<S: serde::Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("***")
}

fn masked_opt<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("***"),
        None => s.serialize_none(),
    }
}

/// Longest receiver name (it is a metric label).
const MAX_NAME: usize = 64;
/// Shortest signing key, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

fn human(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

impl NotifySettings {
    /// Checks values without I/O.
    pub fn validate(&self, problems: &mut Problems) {
        if self.backoff_initial < Duration::from_millis(10) {
            problems.push(
                "notify.backoff_initial",
                format!("{} is shorter than 10ms", human(self.backoff_initial)),
            );
        }
        if self.backoff_max < self.backoff_initial {
            problems.push(
                "notify.backoff_max",
                format!(
                    "{} is shorter than notify.backoff_initial ({})",
                    human(self.backoff_max),
                    human(self.backoff_initial)
                ),
            );
        }
        if self.max_pending == 0 {
            problems.push("notify.max_pending", "0: must be 1 or more");
        }
        if self.restore_timeout < Duration::from_secs(1) {
            problems.push(
                "notify.restore_timeout",
                format!("{} is shorter than a second", human(self.restore_timeout)),
            );
        }
        for (i, r) in self.receivers.iter().enumerate() {
            self.validate_receiver(i, r, problems);
        }
        for (tier, share) in [
            ("warm", self.reminders.warm),
            ("immediate", self.reminders.immediate),
        ] {
            if let Some(s) = share.filter(|s| !(*s > 0.0 && *s < 1.0)) {
                problems.push(
                    format!("notify.reminders.{tier}"),
                    format!("{s} is not a share of the time to acknowledge between 0 and 1"),
                );
            }
        }
    }

    fn validate_receiver(&self, i: usize, r: &Receiver, problems: &mut Problems) {
        let at = format!("notify.receivers[{i}]");
        if !is_label_safe(&r.name) {
            problems.push(
                format!("{at}.name"),
                format!(
                    "{:?} is not a usable name: 1 to {MAX_NAME} letters, digits, _ or -",
                    r.name
                ),
            );
        }
        if self.receivers[..i].iter().any(|q| q.name == r.name) {
            problems.push(
                format!("{at}.name"),
                format!("{:?} is used by two receivers", r.name),
            );
        }
        match Source::of(&r.url) {
            Source::Literal(u) if !is_http_url(u) => problems.push(
                format!("{at}.url"),
                "is not an http:// or https:// URL (value not shown: it may be a secret)",
            ),
            source => {
                if let Some(why) = source.check() {
                    problems.push(format!("{at}.url"), why);
                }
            }
        }
        match (&r.secret, r.kind) {
            (None, ReceiverKind::Webhook) => problems.push(
                format!("{at}.secret"),
                "missing: webhook messages are signed (e.g. secret = \"env:HANDOFF_WEBHOOK_SECRET\")",
            ),
            (Some(_), ReceiverKind::Slack) => problems.push(
                format!("{at}.secret"),
                "is set, but Slack incoming webhooks are not signed by handoff: remove it (the \
                 URL itself is the secret)",
            ),
            (Some(s), ReceiverKind::Webhook) => match Source::of(s) {
                Source::Literal(_) => check_key(s, &format!("{at}.secret"), problems),
                source => {
                    if let Some(why) = source.check() {
                        problems.push(format!("{at}.secret"), why);
                    }
                }
            },
            (None, ReceiverKind::Slack) => {}
        }
        for (j, role) in r.roles.iter().enumerate() {
            if role.trim().is_empty() {
                problems.push(format!("{at}.roles[{j}]"), "empty role name");
            } else if r.roles[..j].contains(role) {
                problems.push(
                    format!("{at}.roles[{j}]"),
                    format!("{role:?} is listed twice"),
                );
            }
        }
        for (j, tier) in r.tiers.iter().enumerate() {
            if r.tiers[..j].contains(tier) {
                problems.push(
                    format!("{at}.tiers[{j}]"),
                    format!("{:?} is listed twice", tier.as_str()),
                );
            }
        }
        if r.timeout < Duration::from_millis(100) || r.timeout > Duration::from_secs(300) {
            problems.push(
                format!("{at}.timeout"),
                format!("{} is not between 100ms and 5m", human(r.timeout)),
            );
        }
        if !(1..=64).contains(&r.max_in_flight) {
            problems.push(
                format!("{at}.max_in_flight"),
                format!("{} is not between 1 and 64", r.max_in_flight),
            );
        }
    }

    /// Names every role of the receivers that `known` (the matrix's roles) lacks.
    pub fn check_roles(&self, known: &[&str], problems: &mut Problems) {
        for (i, r) in self.receivers.iter().enumerate() {
            for (j, role) in r.roles.iter().enumerate() {
                if !known.contains(&role.as_str()) {
                    problems.push(
                        format!("notify.receivers[{i}].roles[{j}]"),
                        format!(
                            "{role:?} is not a role of the matrix (roles: {})",
                            known.join(", ")
                        ),
                    );
                }
            }
        }
    }

    /// Resolves `file:`/`env:` references of the receivers' URLs and secrets, and checks what
    /// they hold without showing it.
    pub fn resolve_secrets(
        &mut self,
        env: &impl Fn(&str) -> Option<String>,
        problems: &mut Problems,
    ) {
        for (i, r) in self.receivers.iter_mut().enumerate() {
            let at = format!("notify.receivers[{i}]");
            let referenced = Source::of(&r.url) != Source::Literal(&r.url);
            match Source::of(&r.url).resolve(env) {
                Ok(u) => r.url = u,
                Err(why) => problems.push(format!("{at}.url"), why),
            }
            if referenced && !is_http_url(&r.url) {
                problems.push(
                    format!("{at}.url"),
                    "the value read is not an http:// or https:// URL (not shown)",
                );
            }
            let Some(secret) = r.secret.as_mut() else {
                continue;
            };
            let referenced = Source::of(secret) != Source::Literal(secret);
            match Source::of(secret).resolve(env) {
                Ok(s) => *secret = s,
                Err(why) => problems.push(format!("{at}.secret"), why),
            }
            if referenced {
                check_key(secret, &format!("{at}.secret"), problems);
            }
        }
    }
}

/// A signing secret's key must decode and be long enough (the value is never shown).
fn check_key(secret: &str, field: &str, problems: &mut Problems) {
    match signing_key(secret) {
        None => problems.push(field, "starts with whsec_ but the rest is not base64"),
        Some(k) if k.len() < MIN_KEY_BYTES => problems.push(
            field,
            format!(
                "{} byte(s) of key; at least {MIN_KEY_BYTES} are needed",
                k.len()
            ),
        ),
        Some(_) => {}
    }
}

fn is_http_url(u: &str) -> bool {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

/// Letters, digits, `_` and `-`, 1 to 64 of them.
fn is_label_safe(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn load(toml: &str) -> Result<Settings, String> {
        // A file per call: tests run in parallel and load the same text.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("handoff-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{n}.toml"));
        std::fs::write(&p, toml).unwrap();
        let r = Settings::load_with_env(Some(&p), Vec::new()).map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&p);
        r
    }

    const ROUTED: &str = r#"
[notify]
backoff_initial = "500ms"
[[notify.receivers]]
name = "support-slack"
kind = "slack"
url = "env:SUPPORT_SLACK_URL"
roles = ["support"]
tiers = ["warm"]
[[notify.receivers]]
name = "pager"
kind = "webhook"
url = "https://pager.example/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
tiers = ["immediate"]
timeout = "2s"
"#;

    #[test]
    fn a_routed_configuration_loads_and_defaults_fill_the_rest() {
        let s = load(ROUTED).unwrap();
        let n = &s.notify;
        assert_eq!(n.receivers.len(), 2);
        assert_eq!(n.backoff_initial, Duration::from_millis(500));
        assert_eq!(n.backoff_max, Duration::from_secs(300));
        let slack = &n.receivers[0];
        assert_eq!(slack.kind, ReceiverKind::Slack);
        assert_eq!(
            (slack.roles.as_slice(), slack.tiers.as_slice()),
            (&["support".to_string()][..], &[Tier::Warm][..])
        );
        assert_eq!(slack.timeout, Duration::from_secs(5));
        assert_eq!(n.receivers[1].timeout, Duration::from_secs(2));
        assert_eq!(n.receivers[1].signing_key().unwrap().len(), 24);
    }

    #[test]
    fn urls_and_secrets_never_show_in_debug_or_the_startup_line() {
        let s = load(ROUTED).unwrap();
        let shown = format!("{:?} {}", s.notify, s.redacted());
        assert!(!shown.contains("pager.example"), "{shown}");
        assert!(!shown.contains("whsec_"), "{shown}");
        assert!(shown.contains("support-slack"), "{shown}");
    }

    #[test]
    fn every_problem_is_named_with_its_field() {
        let bad = r#"
[notify]
backoff_initial = "1ms"
backoff_max = "0s"
max_pending = 0
[[notify.receivers]]
name = "has space"
kind = "webhook"
url = "ftp://x"
roles = ["support", "support", ""]
tiers = ["warm", "warm"]
timeout = "10m"
max_in_flight = 0
[[notify.receivers]]
name = "has space"
kind = "slack"
url = "env:9BAD"
secret = "short"
[[notify.receivers]]
name = "weak"
kind = "webhook"
url = "https://example.com/h"
secret = "short"
"#;
        let e = load(bad).unwrap_err();
        for needle in [
            "notify.backoff_initial: 1ms is shorter than 10ms",
            "notify.backoff_max: 0s is shorter than notify.backoff_initial",
            "notify.max_pending",
            "notify.receivers[0].name: \"has space\" is not a usable name",
            "notify.receivers[0].url: is not an http:// or https:// URL",
            "notify.receivers[0].secret: missing",
            "notify.receivers[0].roles[1]: \"support\" is listed twice",
            "notify.receivers[0].roles[2]: empty role name",
            "notify.receivers[0].tiers[1]: \"warm\" is listed twice",
            "notify.receivers[0].timeout: 10m is not between 100ms and 5m",
            "notify.receivers[0].max_in_flight: 0 is not between 1 and 64",
            "notify.receivers[1].name: \"has space\" is used by two receivers",
            "notify.receivers[1].url: `env:9BAD` needs a variable name",
            "notify.receivers[1].secret: is set, but Slack",
            "notify.receivers[2].secret: 5 byte(s) of key; at least 16",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
        }
        assert!(!e.contains("ftp://x"), "a URL is never shown: {e}");
    }

    #[test]
    fn unknown_kinds_tiers_and_keys_are_refused() {
        for (toml, needle) in [
            ("[[notify.receivers]]\nname = \"a\"\nkind = \"email\"\nurl = \"https://x\"\n", "email"),
            ("[[notify.receivers]]\nname = \"a\"\nkind = \"slack\"\nurl = \"https://x\"\ntiers = [\"hot\"]\n", "hot"),
            ("[notify]\nretries = 3\n", "retries"),
        ] {
            let e = load(toml).unwrap_err();
            assert!(e.contains("notify") && e.contains(needle), "{toml}: {e}");
        }
    }

    #[test]
    fn roles_are_checked_against_the_matrix() {
        let s = load(ROUTED).unwrap();
        let mut p = Problems::default();
        s.notify.check_roles(&["support", "trader"], &mut p);
        assert!(p.is_empty(), "{p}");
        s.notify.check_roles(&["trader"], &mut p);
        assert_eq!(p.len(), 1);
        assert!(
            p.to_string().contains("notify.receivers[0].roles[0]: \"support\" is not a role of the matrix (roles: trader)"),
            "{p}"
        );
    }

    #[test]
    fn references_resolve_and_what_they_hold_is_checked_without_showing_it() {
        let s = load(ROUTED).unwrap();
        let env = |n: &str| {
            (n == "SUPPORT_SLACK_URL").then(|| "https://hooks.slack.example/T/B/x".to_string())
        };
        let r = s.clone().with_secrets_from(env).unwrap();
        assert_eq!(
            r.notify.receivers[0].url,
            "https://hooks.slack.example/T/B/x"
        );
        let e = s
            .clone()
            .with_secrets_from(|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "notify.receivers[0].url: environment variable SUPPORT_SLACK_URL is not set"
            ),
            "{e}"
        );
        let not_url = |_: &str| Some("hunter2-not-a-url".to_string());
        let e = s.with_secrets_from(not_url).unwrap_err().to_string();
        assert!(
            e.contains("notify.receivers[0].url: the value read is not"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");

        let mut n = NotifySettings::default();
        n.receivers.push(Receiver {
            name: "w".into(),
            kind: ReceiverKind::Webhook,
            url: "https://x.example".into(),
            secret: Some("env:KEY".into()),
            roles: vec![],
            tiers: vec![],
            timeout: Duration::from_secs(1),
            max_in_flight: 1,
        });
        let mut p = Problems::default();
        n.clone()
            .resolve_secrets(&|_| Some("whsec_!!".into()), &mut p);
        assert!(p.to_string().contains("not base64"), "{p}");
        let mut p = Problems::default();
        n.resolve_secrets(&|_| Some("0123456789abcdef".into()), &mut p);
        assert!(p.is_empty(), "{p}");
        assert_eq!(n.receivers[0].signing_key().unwrap(), b"0123456789abcdef");
    }
}
