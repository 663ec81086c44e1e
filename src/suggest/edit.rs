//! Changes to a matrix file that keep everything else as written (comments included), with
//! `toml_edit`: the proposed matrix is a file a person reviews as a diff.

use crate::event::Level;
use serde::Serialize;
use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table};

/// A change `suggest` can propose.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// The level of an action type (an exact `[[levels]]` pattern).
    Level {
        /// The action type.
        action_type: String,
        /// Its level now.
        from: Level,
        /// Its level proposed.
        to: Level,
    },
    /// The confidence gate of an action type (`[triggers.low_confidence] per_action`).
    Gate {
        /// The action type.
        action_type: String,
        /// The gate now.
        from: f64,
        /// The gate proposed.
        to: f64,
    },
    /// A phrase dropped from a phrase trigger (`keywords` of `policy_keyword`, `phrases` of
    /// `human_requested`).
    Phrase {
        /// The trigger.
        trigger: String,
        /// The phrase.
        phrase: String,
    },
}

impl Change {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Change::Level {
                action_type,
                from,
                to,
            } => {
                format!("{action_type}: level {} → {}", from.as_str(), to.as_str())
            }
            Change::Gate {
                action_type,
                from,
                to,
            } => {
                format!("{action_type}: confidence gate {from:.2} → {to:.2}")
            }
            Change::Phrase { trigger, phrase } => {
                format!("{trigger}: drop the phrase {phrase:?}")
            }
        }
    }

    /// The action type changed (none for a phrase: every type it fires on).
    pub fn action_type(&self) -> Option<&str> {
        match self {
            Change::Level { action_type, .. } | Change::Gate { action_type, .. } => {
                Some(action_type)
            }
            Change::Phrase { .. } => None,
        }
    }
}

/// Applies `changes` to the matrix text; an error says which could not be written.
pub fn apply(text: &str, changes: &[&Change]) -> Result<String, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("the matrix is not TOML: {e}"))?;
    for c in changes {
        match c {
            Change::Level {
                action_type, to, ..
            } => set_level(&mut doc, action_type, *to)?,
            Change::Gate {
                action_type, to, ..
            } => set_gate(&mut doc, action_type, *to)?,
            Change::Phrase { trigger, phrase } => drop_phrase(&mut doc, trigger, phrase)?,
        }
    }
    Ok(doc.to_string())
}

fn set_level(doc: &mut DocumentMut, pattern: &str, level: Level) -> Result<(), String> {
    let levels = doc
        .entry("levels")
        .or_insert(Item::ArrayOfTables(Default::default()))
        .as_array_of_tables_mut()
        .ok_or("`levels` is not an array of tables")?;
    if let Some(t) = levels
        .iter_mut()
        .find(|t| t.get("pattern").and_then(Item::as_str) == Some(pattern))
    {
        t["level"] = value(level.as_str());
        t.remove("templated");
        return Ok(());
    }
    let mut t = Table::new();
    t["pattern"] = value(pattern);
    t["level"] = value(level.as_str());
    levels.push(t);
    Ok(())
}

fn set_gate(doc: &mut DocumentMut, pattern: &str, threshold: f64) -> Result<(), String> {
    let rounded = (threshold * 100.0).round() / 100.0;
    let gate = doc
        .get_mut("triggers")
        .and_then(|t| t.get_mut("low_confidence"))
        .and_then(Item::as_table_like_mut)
        .ok_or("the matrix has no [triggers.low_confidence]")?;
    if gate.get("per_action").is_none() {
        gate.insert("per_action", value(Array::new()));
    }
    let list = gate
        .get_mut("per_action")
        .and_then(Item::as_array_mut)
        .ok_or("`per_action` is not an array")?;
    for entry in list.iter_mut() {
        if let Some(t) = entry.as_inline_table_mut() {
            if t.get("pattern").and_then(|v| v.as_str()) == Some(pattern) {
                t.insert("threshold", rounded.into());
                return Ok(());
            }
        }
    }
    let mut t = InlineTable::new();
    t.insert("pattern", pattern.into());
    t.insert("threshold", rounded.into());
    list.push(t);
    Ok(())
}

/// Removes `phrase` (compared case-insensitively) from `[triggers.<trigger>]`'s `keywords` or
/// `phrases`.
fn drop_phrase(doc: &mut DocumentMut, trigger: &str, phrase: &str) -> Result<(), String> {
    let table = doc
        .get_mut("triggers")
        .and_then(|t| t.get_mut(trigger))
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| format!("the matrix has no [triggers.{trigger}]"))?;
    for key in ["keywords", "phrases"] {
        let Some(list) = table.get_mut(key).and_then(Item::as_array_mut) else {
            continue;
        };
        let at = list
            .iter()
            .position(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(phrase)));
        if let Some(i) = at {
            list.remove(i);
            return Ok(());
        }
    }
    Err(format!("[triggers.{trigger}] does not list {phrase:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};

    #[test]
    fn changes_land_in_the_matrix_and_keep_its_comments() {
        let grad = Change::Level {
            action_type: "refund.issue".into(),
            from: Level::AskFirst,
            to: Level::ExecuteLog,
        };
        let gate = Change::Gate {
            action_type: "research.search".into(),
            from: 0.70,
            to: 0.6,
        };
        let text = apply(DEFAULT_MATRIX_TOML, &[&grad, &gate]).unwrap();
        assert!(text.contains("# handoff — the shipped default escalation matrix."));
        assert!(
            text.contains("{ pattern = \"research.search\", threshold = 0.6 }"),
            "{text}"
        );
        let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
        assert_eq!(m.threshold("research.search"), 0.6);
        assert_eq!(m.threshold("email.send"), 0.8, "others untouched");
        let at = text.find("pattern = \"refund.*\"").unwrap();
        assert!(
            text[at..].contains("pattern = \"refund.issue\"\nlevel = \"execute_log\""),
            "{text}"
        );
    }

    #[test]
    fn a_dropped_phrase_leaves_the_list_and_only_it() {
        let drop = Change::Phrase {
            trigger: "human_requested".into(),
            phrase: "Real Person".into(),
        };
        let text = apply(DEFAULT_MATRIX_TOML, &[&drop]).unwrap();
        assert!(!text.contains("\"real person\""));
        assert!(text.contains("\"real agent\""), "the rest kept");
        let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
        let before = Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap();
        assert_eq!(m.phrases().len() + 1, before.phrases().len());
        let missing = Change::Phrase {
            trigger: "policy_keyword".into(),
            phrase: "never listed".into(),
        };
        assert_eq!(
            apply(DEFAULT_MATRIX_TOML, &[&missing]).unwrap_err(),
            "[triggers.policy_keyword] does not list \"never listed\""
        );
    }
}
