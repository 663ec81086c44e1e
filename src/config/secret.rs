//! Secrets kept out of the configuration file: any librdkafka property value may be
//! `file:/run/secrets/kafka/password` (the file's content, one trailing newline dropped) or
//! `env:NAME` (an environment variable). They are resolved once at start-up, after validation;
//! a problem names the property and where the secret was to come from, never its content.

use super::{is_secret, ConfigError, Settings};
use crate::problems::Problems;
use serde_json::Value;
use std::path::Path;

/// Where a property's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// The value as written.
    Literal(&'a str),
    /// A file's content.
    File(&'a str),
    /// An environment variable.
    Env(&'a str),
}

impl<'a> Source<'a> {
    /// How `value` is to be read.
    pub fn of(value: &'a str) -> Source<'a> {
        if let Some(path) = value.strip_prefix("file:") {
            Source::File(path)
        } else if let Some(name) = value.strip_prefix("env:") {
            Source::Env(name)
        } else {
            Source::Literal(value)
        }
    }

    /// A syntax problem (no I/O), if any.
    pub fn check(self) -> Option<String> {
        match self {
            Source::File("") => Some("`file:` needs a path, e.g. file:/run/secrets/kafka".into()),
            Source::Env(n) if !is_variable_name(n) => Some(format!(
                "`env:{n}` needs a variable name of letters, digits and _, not starting with a digit"
            )),
            _ => None,
        }
    }

    /// The value (reads the file or the variable).
    pub fn resolve(self, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        match self {
            Source::Literal(v) => Ok(v.to_string()),
            Source::File(path) => read_file(Path::new(path)),
            Source::Env(name) => {
                env(name).ok_or_else(|| format!("environment variable {name} is not set"))
            }
        }
    }
}

fn is_variable_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with(|c: char| c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn read_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
}

impl Settings {
    /// The settings as one line of JSON for a start-up log line, with secrets masked.
    pub fn redacted(&self) -> String {
        self.redacted_value().to_string()
    }

    /// The settings for a person to read (`handoff check --config`): indented JSON, one
    /// setting per line, with secrets masked.
    pub fn redacted_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.redacted_value()).expect("a JSON value prints")
    }

    /// The settings as JSON with the librdkafka properties that name a secret masked (the
    /// other sections mask or leave out their secrets when they serialize).
    fn redacted_value(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("settings serialize");
        for map in ["common", "consumer", "producer"] {
            if let Some(Value::Object(m)) = v.get_mut("kafka").and_then(|k| k.get_mut(map)) {
                for (key, val) in m.iter_mut() {
                    if is_secret(key) {
                        *val = Value::String("***".into());
                    }
                }
            }
        }
        // Hashes of people's tokens and agents' keys: not the secrets, but nothing a log or a
        // screen needs (a leaked table would let a guess be checked offline).
        for (section, list, field) in [
            ("inbox", "people", "token_sha256"),
            ("gateway", "agents", "key_sha256"),
        ] {
            let entries = v.get_mut(section).and_then(|s| s.get_mut(list));
            for entry in entries.and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(h) = entry.get_mut(field).filter(|h| !h.is_null()) {
                    *h = Value::String("***".into());
                }
            }
        }
        v
    }

    /// These settings with every `file:`/`env:` property resolved, or every one that cannot be.
    pub fn with_secrets(self) -> Result<Settings, ConfigError> {
        self.with_secrets_from(|n| std::env::var(n).ok())
    }

    /// [`Settings::with_secrets`] with an explicit environment (for tests).
    pub fn with_secrets_from(
        mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut problems = Problems::default();
        let k = &mut self.kafka;
        for (section, map) in [
            ("common", &mut k.common),
            ("consumer", &mut k.consumer),
            ("producer", &mut k.producer),
        ] {
            for (key, value) in map.iter_mut() {
                match Source::of(value).resolve(&env) {
                    Ok(v) if v.is_empty() && is_secret(key) => problems.push(
                        format!("kafka.{section}.{key}"),
                        "is empty: a secret must have a value",
                    ),
                    Ok(v) => *value = v,
                    Err(why) => problems.push(format!("kafka.{section}.{key}"), why),
                }
            }
        }
        if let Some(t) = self.metrics.reload_token.as_mut() {
            match Source::of(t).resolve(&env) {
                Ok(v) if v.len() < 16 => problems.push(
                    "metrics.reload_token",
                    format!("{} bytes; at least 16 are needed", v.len()),
                ),
                Ok(v) => *t = v,
                Err(why) => problems.push("metrics.reload_token", why),
            }
        }
        self.inbox.resolve_secrets(&env, &mut problems);
        self.notify.resolve_secrets(&env, &mut problems);
        self.trust.resolve_secrets(&env, &mut problems);
        if problems.is_empty() {
            return Ok(self);
        }
        Err(ConfigError::Invalid {
            source_name: "secrets".into(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_from_files_and_the_environment_and_failures_name_the_source() {
        let dir = std::env::temp_dir().join(format!("handoff-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "canary-s3cr3t\n").unwrap();
        let mut s = Settings::default();
        s.kafka
            .common
            .insert("sasl.password".into(), format!("file:{}", file.display()));
        s.kafka
            .common
            .insert("sasl.username".into(), "env:KAFKA_USER".into());
        s.kafka.producer.insert("linger.ms".into(), "5".into());
        let env = |n: &str| (n == "KAFKA_USER").then(|| "handoff".to_string());
        let r = s.clone().with_secrets_from(env).unwrap();
        assert_eq!(r.kafka.common["sasl.password"], "canary-s3cr3t");
        assert_eq!(r.kafka.common["sasl.username"], "handoff");
        assert_eq!(r.kafka.producer["linger.ms"], "5");

        let mut bad = s;
        bad.kafka
            .common
            .insert("sasl.password".into(), "file:/nonexistent/pw".into());
        let e = bad.with_secrets_from(|_| None).unwrap_err().to_string();
        assert!(e.contains("kafka.common.sasl.password"), "{e}");
        assert!(e.contains("/nonexistent/pw"), "{e}");
        assert!(e.contains("kafka.common.sasl.username"), "{e}");
        assert!(e.contains("KAFKA_USER is not set"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reference_syntax_is_checked_without_io() {
        for (value, problem) in [
            ("file:", Some("needs a path")),
            ("env:", Some("needs a variable name")),
            ("env:A-B", Some("needs a variable name")),
            ("env:9X", Some("needs a variable name")),
            ("env:KAFKA_PASSWORD", None),
            ("file:/run/secrets/x", None),
            ("plain", None),
        ] {
            let got = Source::of(value).check();
            assert_eq!(got.is_some(), problem.is_some(), "{value}: {got:?}");
            if let (Some(g), Some(p)) = (got, problem) {
                assert!(g.contains(p), "{value}: {g}");
            }
        }
    }
}
