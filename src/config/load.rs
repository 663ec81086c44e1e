//! Loading settings: defaults, then a file, then `HANDOFF_…` environment variables (secrets
//! taken as written, never parsed), parsed into [`Settings`] with every problem named, then
//! validated; and which settings are secrets, so nothing shows them.

use super::{ConfigError, Settings};
use crate::problems::Problems;
use serde_json::Value;
use std::path::Path;

pub(super) const SECTIONS: &[&str] = &[
    "kafka", "topics", "input", "matrix", "pipeline", "log", "metrics", "inbox", "notify",
    "canary", "gateway", "trust",
];

/// Whether a setting's dotted path names a secret: a secret librdkafka property, or one of
/// handoff's own secrets (keys, signing secrets, tokens).
pub fn is_secret_setting(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    let last = last.split('[').next().unwrap_or(last);
    matches!(
        last,
        "cookie_key"
            | "previous_cookie_keys"
            | "slack_signing_secret"
            | "proxy_secret"
            | "reload_token"
            | "signing_key"
            | "secret"
            | "password"
    ) || is_secret(path)
}

/// `HANDOFF_INBOX__COOKIE_KEY` → `inbox.cookie_key`.
fn env_path(var: &str) -> String {
    var.trim_start_matches("HANDOFF_")
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether a librdkafka property names a secret.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k.ends_with(".key")
        || k.contains("token")
        || k.contains("sasl.oauthbearer.config")
        || k.contains("ssl.key")
}

impl Settings {
    /// Defaults, then `file` (if any), then `HANDOFF_…` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut env = Vec::new();
        for (k, v) in std::env::vars_os() {
            let Some(k) = k.to_str().filter(|k| k.starts_with("HANDOFF_")) else {
                continue;
            };
            let Ok(v) = v.into_string() else {
                return Err(ConfigError::Read {
                    source_name: "environment".into(),
                    message: format!("{k} is not valid UTF-8 (its value is not shown)"),
                });
            };
            env.push((k.to_string(), v));
        }
        Settings::load_with_env(file, env)
    }

    /// Like [`Settings::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let source_name = file
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<defaults>".into());
        let mut builder = config::Config::builder();
        if let Some(f) = file {
            builder = builder.add_source(config::File::from(f).required(true));
        }
        Settings::build(builder, source_name, file, env)
    }

    /// Settings from the text of a TOML file (defaults beneath, no environment): what
    /// [`Settings::load`] makes of a file with this content.
    pub fn from_toml_str(text: &str) -> Result<Settings, ConfigError> {
        let builder = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml));
        Settings::build(builder, "<text>".into(), None, Vec::new())
    }

    fn build(
        mut builder: config::ConfigBuilder<config::builder::DefaultState>,
        source_name: String,
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        // Secrets are taken as written, never parsed as numbers or booleans (which would
        // change them, and put them in an error message).
        let (secrets, env): (std::collections::HashMap<String, String>, _) = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("HANDOFF_"))
            .partition(|(k, _)| is_secret_setting(&env_path(k)));
        for (k, v) in secrets {
            builder = builder
                .set_override(env_path(&k), v)
                .map_err(|e| ConfigError::Read {
                    source_name: "environment".into(),
                    message: format!("{k}: {}", redact_message(&e.to_string())),
                })?;
        }
        builder = builder.add_source(
            config::Environment::with_prefix("HANDOFF")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let value: Value = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Read {
                source_name: source_name.clone(),
                message: redact_message(&e.to_string()),
            })?;
        let mut problems = Problems::default();
        let mut settings = Settings::from_value(&value, &mut problems);
        if let Some(f) = file {
            settings.canary.resolve_beside(f);
        }
        settings.validate(&mut problems);
        problems.mask_values(is_secret_setting);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid {
                source_name,
                problems,
            })
        }
    }

    pub(super) fn from_value(value: &Value, problems: &mut Problems) -> Settings {
        let empty = Value::Object(Default::default());
        let value = if value.is_object() { value } else { &empty };
        problems.unknown_keys(value, "", SECTIONS);
        let mut s = Settings::default();
        macro_rules! section {
            ($field:ident) => {
                if let Some(v) = value.get(stringify!($field)) {
                    if let Some(x) = problems.take(v, stringify!($field)) {
                        s.$field = x;
                    }
                }
            };
        }
        section!(kafka);
        section!(topics);
        section!(input);
        section!(matrix);
        section!(pipeline);
        section!(log);
        section!(metrics);
        section!(inbox);
        section!(notify);
        section!(canary);
        section!(gateway);
        section!(trust);
        s
    }
}

/// Masks `key=value` pairs whose key names a secret in a message.
pub fn redact_message(msg: &str) -> String {
    msg.split(' ')
        .map(|w| match w.split_once('=') {
            Some((k, _)) if is_secret(k) => format!("{k}=***"),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
