//! Changes to a matrix file that keep everything else as written (comments included), with
//! `toml_edit`: the proposed matrix is a file a person reviews as a diff.

use crate::event::Level;
use crate::matrix::{most_specific, Pattern};
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

/// Sets the level of action type `action_type`: in its exact `[[levels]]` entry, or in a new
/// exact entry that carries over who approves (`roles`, `approvals`, `distinct_roles`) and what
/// a timeout does (`on_timeout`,
/// unless the new level is `hard_stop`, which never fails open) from the entry that matched it
/// before — so a change of level never changes who is asked. A `templated` level is kept while
/// it is no stricter than the new level.
fn set_level(doc: &mut DocumentMut, action_type: &str, level: Level) -> Result<(), String> {
    let levels = doc
        .entry("levels")
        .or_insert(Item::ArrayOfTables(Default::default()))
        .as_array_of_tables_mut()
        .ok_or("`levels` is not an array of tables")?;
    let patterns: Vec<Option<Pattern>> = levels
        .iter()
        .map(|t| {
            t.get("pattern")
                .and_then(Item::as_str)
                .and_then(|p| Pattern::parse(p).ok())
        })
        .collect();
    let matched = most_specific(
        patterns
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (p, i))),
        action_type,
    );
    let exact = matched.filter(|&i| {
        levels
            .get(i)
            .and_then(|t| t.get("pattern"))
            .and_then(Item::as_str)
            == Some(action_type)
    });
    let mut entry = match exact {
        Some(_) => None,
        None => {
            let mut t = Table::new();
            t["pattern"] = value(action_type);
            t["level"] = value(level.as_str());
            let from = matched.and_then(|i| levels.get(i));
            for key in [
                "templated",
                "roles",
                "on_timeout",
                "approvals",
                "distinct_roles",
            ] {
                if let Some(v) = from.and_then(|f| f.get(key)) {
                    t[key] = v.clone();
                }
            }
            Some(t)
        }
    };
    let t = match (&mut entry, exact) {
        (Some(t), _) => t,
        (None, Some(i)) => levels.get_mut(i).expect("an index of levels"),
        (None, None) => unreachable!("a new entry when none is exact"),
    };
    t["level"] = value(level.as_str());
    let stricter = |key: &str| {
        t.get(key)
            .and_then(Item::as_str)
            .and_then(Level::from_name)
            .is_some_and(|l| l > level)
    };
    if stricter("templated") {
        t.remove("templated");
    }
    if level == Level::HardStop {
        t.remove("on_timeout");
    }
    if let Some(t) = entry {
        levels.push(t);
    }
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
            text[at..].contains(
                "pattern = \"refund.issue\"\nlevel = \"execute_log\"\nroles = [\"support\"]"
            ),
            "who approves refund.* is carried over: {text}"
        );
    }

    #[test]
    fn a_stricter_level_keeps_who_approves_and_drops_fail_open_at_hard_stop() {
        let family = "pattern = \"loan.*\"\nlevel = \"ask_first\"\nroles = [\"support\"]";
        assert!(DEFAULT_MATRIX_TOML.contains(family));
        let m =
            DEFAULT_MATRIX_TOML.replace(family, &format!("{family}\non_timeout = \"fail_open\""));
        let old = Matrix::from_toml_str(&m, MatrixSource::Default).unwrap();
        assert!(old.fails_open("loan.approve", Level::AskFirst));
        let stricter = |to| Change::Level {
            action_type: "loan.approve".into(),
            from: Level::AskFirst,
            to,
        };
        let t = apply(&m, &[&stricter(Level::HardStop)]).unwrap();
        let new = Matrix::from_toml_str(&t, MatrixSource::Default).unwrap();
        let rule = new.level_rule("loan.approve").unwrap();
        assert_eq!(rule.pattern, "loan.approve");
        assert_eq!(rule.roles.as_deref(), Some(&["support".to_string()][..]));
        assert_eq!(rule.on_timeout, None, "hard_stop never fails open");
        assert!(
            new.fails_open("loan.other", Level::AskFirst),
            "the family keeps it"
        );
        let t = apply(&m, &[&stricter(Level::AskFirst)]).unwrap();
        let new = Matrix::from_toml_str(&t, MatrixSource::Default).unwrap();
        assert!(
            new.fails_open("loan.approve", Level::AskFirst),
            "carried over"
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
