//! Collects every problem in a configuration before refusing it, so a user fixes them all in
//! one go. Each problem names the field (as a dotted path) and says what is wrong with the
//! value.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the field, e.g. `triggers.low_confidence.threshold` or `levels[3].level`.
    pub path: String,
    /// What is wrong, naming the bad value.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found so far, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Hides the values quoted (between backticks) in the messages of the problems whose
    /// path `secret` says is a secret: a parser's message names the bad value. References
    /// (`env:…`, `file:…`) stay.
    pub fn mask_values(&mut self, secret: impl Fn(&str) -> bool) {
        for p in self.0.iter_mut().filter(|p| secret(&p.path)) {
            // serde quotes the value it could not take with backticks (a number) or double
            // quotes (a string: only in its own "invalid …" messages; handoff's name other
            // settings' values that way, which stay).
            p.message = mask_between(&p.message, '`');
            if p.message.starts_with("invalid ") {
                p.message = mask_between(&p.message, '"');
            }
        }
    }

    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Deserializes `value` as a `T`, or records where and why it failed and returns `None`.
    /// The path in the record is `path` joined with serde's path inside the value.
    pub fn take<T: DeserializeOwned>(&mut self, value: &Value, path: &str) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let inner = e.path().to_string();
                let full = join(path, if inner == "." { "" } else { &inner });
                self.push(full, e.into_inner().to_string());
                None
            }
        }
    }

    /// Deserializes each element of an array on its own, so a bad element does not hide the
    /// problems of the next one. A value that is not an array is one problem.
    /// Each element comes with its index in the file, for later messages.
    pub fn take_list<T: DeserializeOwned>(
        &mut self,
        value: Option<&Value>,
        path: &str,
    ) -> Vec<(usize, T)> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| Some((i, self.take(item, &format!("{path}[{i}]"))?)))
                .collect(),
            Some(other) => {
                self.push(path, format!("expected a list, found {}", kind(other)));
                Vec::new()
            }
        }
    }

    /// Records a problem for each key of `value` that is not in `known`.
    pub fn unknown_keys(&mut self, value: &Value, path: &str, known: &[&str]) {
        if let Value::Object(map) = value {
            for key in map.keys() {
                if !known.contains(&key.as_str()) {
                    self.push(
                        join(path, key),
                        format!(
                            "unknown field `{key}`, expected one of {}",
                            known
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Joins two dotted paths, either of which may be empty.
pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ if b.starts_with('[') => format!("{a}{b}"),
        _ => format!("{a}.{b}"),
    }
}

/// A short name for the JSON type of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

/// Reads a configuration file (TOML, YAML or JSON, chosen by its extension) with the `config`
/// crate into a JSON value, ready for piecewise deserialization.
pub fn read_file(path: &std::path::Path) -> Result<Value, String> {
    let file = config::File::from(path).required(true);
    config::Config::builder()
        .add_source(file)
        .build()
        .and_then(|c| c.try_deserialize::<Value>())
        .map_err(|e| e.to_string())
}

/// A path as written in the configuration file `named_in`: a relative one is taken from that
/// file's directory, as a person reading the file expects, not from the current directory; an
/// absolute one stays as it is. Every file naming other files (settings, scenarios, rule
/// tests) resolves them with this.
pub fn beside(named_in: &std::path::Path, path: &std::path::Path) -> std::path::PathBuf {
    match named_in.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// Like [`read_file`], for text already in memory.
pub fn read_str(text: &str, format: config::FileFormat) -> Result<Value, String> {
    config::Config::builder()
        .add_source(config::File::from_str(text, format))
        .build()
        .and_then(|c| c.try_deserialize::<Value>())
        .map_err(|e| e.to_string())
}

/// `text` with what stands between each pair of `quote`s replaced by `***`, unless it is a
/// reference (`env:NAME`, `file:PATH`: where a secret is, not what).
fn mask_between(text: &str, quote: char) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split(quote).enumerate() {
        if i > 0 {
            out.push(quote);
        }
        let reference = part.starts_with("env:") || part.starts_with("file:");
        out.push_str(if i % 2 == 1 && !reference {
            "***"
        } else {
            part
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::beside;
    use std::path::Path;

    #[test]
    fn a_relative_path_is_taken_from_the_directory_of_the_file_naming_it() {
        let at = |file: &str, path: &str| beside(Path::new(file), Path::new(path));
        assert_eq!(
            at("/etc/handoff/handoff.toml", "m.toml"),
            Path::new("/etc/handoff/m.toml")
        );
        assert_eq!(
            at("deploy/x.toml", "../m.toml"),
            Path::new("deploy/../m.toml")
        );
        assert_eq!(at("handoff.toml", "m.toml"), Path::new("m.toml"));
        assert_eq!(
            at("/etc/handoff.toml", "/srv/m.toml"),
            Path::new("/srv/m.toml")
        );
    }
}
