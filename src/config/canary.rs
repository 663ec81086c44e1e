//! `[canary]`: synthetic escalations with a known right answer, sent by `handoff canary` (off
//! by default). Checked without I/O like every section; the cases' event files are read, and
//! checked against the matrix, when `handoff canary` starts.

use crate::event::canary::Expect;
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One kind of canary: an event the matrix hands to `role`, and the answer it deserves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryCase {
    /// The matrix role whose people must catch it.
    pub role: String,
    /// The right answer.
    pub expect: Expect,
    /// A JSON file holding the agent action event (its ids and time are made new for each
    /// canary sent); a relative path is read from the settings file's directory.
    pub event: PathBuf,
}

/// The canaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySettings {
    /// `handoff canary` refuses to run unless this is true.
    #[serde(default)]
    pub enabled: bool,
    /// Canaries sent to each role of the cases per hour (at random moments, about this many).
    #[serde(default = "default_per_role_per_hour")]
    pub per_role_per_hour: f64,
    /// What is sent, taken in turn per role.
    #[serde(default)]
    pub cases: Vec<CanaryCase>,
}

fn default_per_role_per_hour() -> f64 {
    1.0
}

impl Default for CanarySettings {
    fn default() -> Self {
        CanarySettings {
            enabled: false,
            per_role_per_hour: default_per_role_per_hour(),
            cases: Vec::new(),
        }
    }
}

/// More than one a second per role would no longer be a sample.
const MAX_PER_ROLE_PER_HOUR: f64 = 3600.0;

impl CanarySettings {
    /// Takes the cases' relative event paths from the directory of `file`, the settings file
    /// that names them (see [`crate::problems::beside`]); an empty path is left for
    /// [`CanarySettings::validate`] to name.
    pub fn resolve_beside(&mut self, file: &Path) {
        for c in &mut self.cases {
            if !c.event.as_os_str().is_empty() {
                c.event = crate::problems::beside(file, &c.event);
            }
        }
    }

    /// Records every problem of the section.
    pub fn validate(&self, problems: &mut Problems) {
        let rate = self.per_role_per_hour;
        if !(rate > 0.0 && rate <= MAX_PER_ROLE_PER_HOUR) {
            problems.push(
                "canary.per_role_per_hour",
                format!("{rate} is not in (0, {MAX_PER_ROLE_PER_HOUR}]"),
            );
        }
        if self.enabled && self.cases.is_empty() {
            problems.push(
                "canary.cases",
                "canary.enabled = true needs at least one [[canary.cases]]",
            );
        }
        for (i, c) in self.cases.iter().enumerate() {
            if c.role.trim().is_empty() {
                problems.push(format!("canary.cases[{i}].role"), "is empty");
            }
            if c.event.as_os_str().is_empty() {
                problems.push(format!("canary.cases[{i}].event"), "is empty");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_listed() {
        let s = CanarySettings {
            enabled: true,
            per_role_per_hour: 0.0,
            cases: vec![CanaryCase {
                role: " ".into(),
                expect: Expect::Reject,
                event: PathBuf::new(),
            }],
        };
        let mut p = Problems::default();
        s.validate(&mut p);
        let paths: Vec<&str> = p.0.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "canary.per_role_per_hour",
                "canary.cases[0].role",
                "canary.cases[0].event"
            ]
        );
        let empty = CanarySettings {
            enabled: true,
            ..Default::default()
        };
        let mut p = Problems::default();
        empty.validate(&mut p);
        assert_eq!(p.0[0].path, "canary.cases");
        let mut p = Problems::default();
        CanarySettings::default().validate(&mut p);
        assert!(p.is_empty(), "off by default, and valid");
    }
}
