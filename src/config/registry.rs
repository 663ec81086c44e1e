//! `[input.schema_registry]`: a Confluent-compatible schema registry for the input's writer
//! schemas and, optionally, for framing the outputs. Checked without I/O like every section;
//! the password is never shown (its `Debug` and its serialized form are `***`).

use super::{InputFormat, InputSettings};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// How output schemas are named in the registry (Confluent's subject name strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStrategy {
    /// `<topic>-value` (Confluent's `TopicNameStrategy`, its default).
    #[default]
    Topic,
    /// `<fullname>` of the record, e.g. `io.handoff.Verdict` (`RecordNameStrategy`).
    Record,
    /// `<topic>-<fullname>` (`TopicRecordNameStrategy`).
    TopicRecord,
}

impl SubjectStrategy {
    /// The subject of record `fullname` written to `topic`.
    pub fn subject(self, topic: &str, fullname: &str) -> String {
        match self {
            SubjectStrategy::Topic => format!("{topic}-value"),
            SubjectStrategy::Record => fullname.to_string(),
            SubjectStrategy::TopicRecord => format!("{topic}-{fullname}"),
        }
    }
}

/// The schema registry handoff talks to.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// Base URL, `http://` or `https://` (no credentials in it).
    pub url: String,
    /// Basic-auth user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password: the password itself, `file:/path` (the file's content, without a
    /// trailing newline) or `env:NAME` (an environment variable).
    #[serde(
        default,
        serialize_with = "masked",
        deserialize_with = "secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<String>,
    /// PEM file of the CA(s) to trust for an `https://` URL instead of the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Writer schemas kept in memory, at most.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
    /// Longest wait for one request (connecting included).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// First wait before retrying a registry that did not answer; it doubles per attempt.
    #[serde(default = "default_backoff_initial", with = "humantime_serde")]
    pub backoff_initial: Duration,
    /// Longest wait between two attempts.
    #[serde(default = "default_backoff_max", with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Frame verdicts, escalations and digests too (magic byte 0 + schema id + datum).
    #[serde(default)]
    pub frame_outputs: bool,
    /// With `frame_outputs`: register the output schemas when the registry lacks them
    /// (otherwise they are only looked up, and a missing one refuses the start).
    #[serde(default)]
    pub auto_register: bool,
    /// With `frame_outputs`: `topic` (default), `record` or `topic_record`.
    #[serde(default)]
    pub subject_strategy: SubjectStrategy,
}

/// Default of `cache_capacity`.
pub const DEFAULT_CACHE_CAPACITY: usize = 1000;

fn default_cache_capacity() -> usize {
    DEFAULT_CACHE_CAPACITY
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_backoff_initial() -> Duration {
    Duration::from_millis(100)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(10)
}

impl RegistrySettings {
    /// Settings for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        RegistrySettings {
            url: url.into(),
            username: None,
            password: None,
            ca_file: None,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            timeout: default_timeout(),
            backoff_initial: default_backoff_initial(),
            backoff_max: default_backoff_max(),
            frame_outputs: false,
            auto_register: false,
            subject_strategy: SubjectStrategy::Topic,
        }
    }
}

impl std::fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySettings")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .field("cache_capacity", &self.cache_capacity)
            .field("timeout", &self.timeout)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("frame_outputs", &self.frame_outputs)
            .field("auto_register", &self.auto_register)
            .field("subject_strategy", &self.subject_strategy)
            .finish()
    }
}

fn masked<S: serde::Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("***"),
        None => s.serialize_none(),
    }
}

/// A password may arrive as a number or a boolean (environment values are parsed); a value
/// of another type is refused without showing it.
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    match Option::<Scalar>::deserialize(d) {
        Ok(v) => Ok(v.map(|v| match v {
            Scalar::S(s) => s,
            Scalar::I(i) => i.to_string(),
            Scalar::F(f) => f.to_string(),
            Scalar::B(b) => b.to_string(),
        })),
        Err(_) => Err(serde::de::Error::custom(
            "must be a string (the password, file:/path or env:NAME)",
        )),
    }
}

/// A password reference that cannot be resolved (the message names the file or variable,
/// never a secret).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(String);

/// The password `spec` names: `file:PATH`, `env:NAME` or the value itself — the same
/// references as every Kafka property (see [`super::secret`]).
pub fn resolve_password(spec: &str) -> Result<String, SecretError> {
    super::secret::Source::of(spec)
        .resolve(|n| std::env::var(n).ok())
        .map_err(SecretError)
}

const FIELD: &str = "input.schema_registry";

/// Checks `[input.schema_registry]` and how it fits the rest of `[input]`, without I/O.
pub fn validate(input: &InputSettings, problems: &mut Problems) {
    let Some(r) = &input.schema_registry else {
        return;
    };
    let mut push =
        |field: &str, message: String| problems.push(format!("{FIELD}.{field}"), message);
    if let Err(why) = check_url(&r.url) {
        push("url", format!("{:?} {why}", r.url));
    }
    if r.ca_file.is_some() && !r.url.starts_with("https://") {
        push(
            "ca_file",
            format!("is set but url {:?} is not https://", r.url),
        );
    }
    match (&r.username, &r.password) {
        (Some(u), None) => push("password", format!("is missing: username {u:?} needs one")),
        (None, Some(_)) => push("username", "is missing: password is set".to_string()),
        (Some(u), Some(_)) if u.is_empty() || u.contains(':') => push(
            "username",
            format!("{u:?} must be non-empty and without ':' (basic auth)"),
        ),
        _ => {}
    }
    if let Some(p) = &r.password {
        if let Some(why) = check_password_spec(p) {
            push("password", why);
        }
    }
    if !(1..=1_000_000).contains(&r.cache_capacity) {
        push(
            "cache_capacity",
            format!("{} must be between 1 and 1000000", r.cache_capacity),
        );
    }
    for (field, d, min, max) in [
        ("timeout", r.timeout, 10, 300_000),
        ("backoff_initial", r.backoff_initial, 1, 60_000),
        ("backoff_max", r.backoff_max, 1, 300_000),
    ] {
        let ms = d.as_millis();
        if ms < min || ms > max {
            push(
                field,
                format!(
                    "{} is out of range; between {} and {}",
                    humantime::format_duration(d),
                    humantime::format_duration(Duration::from_millis(min as u64)),
                    humantime::format_duration(Duration::from_millis(max as u64)),
                ),
            );
        }
    }
    if r.backoff_max < r.backoff_initial {
        push(
            "backoff_max",
            format!(
                "{} is shorter than backoff_initial = {}",
                humantime::format_duration(r.backoff_max),
                humantime::format_duration(r.backoff_initial)
            ),
        );
    }
    if !r.frame_outputs && r.auto_register {
        push(
            "auto_register",
            "is set but frame_outputs is false: nothing would be registered".to_string(),
        );
    }
    check_fit(input, r, problems);
}

/// The registry replaces `schema_ids`, and must be used by something.
fn check_fit(input: &InputSettings, r: &RegistrySettings, problems: &mut Problems) {
    if !input.schema_ids.is_empty() {
        problems.push(
            "input.schema_ids",
            format!(
                "{:?} cannot be used with input.schema_registry: every id is looked up there",
                input.schema_ids
            ),
        );
    }
    if input.format == InputFormat::Avro && !r.frame_outputs {
        problems.push(
            FIELD,
            "is set but unused: input.format is avro (plain datums) and frame_outputs is false",
        );
    }
}

/// Why `url` is not a usable registry URL.
fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err("has no host");
    }
    if authority.contains('@') {
        return Err("must not hold credentials: use username and password");
    }
    if url.contains(['?', '#', ' ']) {
        return Err("must be a base URL without query, fragment or spaces");
    }
    Ok(())
}

/// Why a password setting cannot be resolved, from its form alone (never showing a literal):
/// the references every secret may use, and no empty password.
fn check_password_spec(p: &str) -> Option<String> {
    if p.is_empty() {
        return Some("must not be empty".into());
    }
    super::secret::Source::of(p).check()
}

#[cfg(test)]
mod tests;
