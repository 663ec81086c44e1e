//! `[notify]`: where escalations are announced (webhooks, Slack) and for which roles and tiers.
//! Checked without I/O like every section; receiver URLs and signing secrets may be
//! `file:`/`env:` references and are never shown.

use crate::problems::Problems;
use serde::{Deserialize, Serialize};

/// Notification receivers and their routing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {}

impl NotifySettings {
    /// Checks values without I/O.
    pub fn validate(&self, _problems: &mut Problems) {}

    /// Resolves `file:`/`env:` references of its secrets.
    pub fn resolve_secrets(
        &mut self,
        _env: &impl Fn(&str) -> Option<String>,
        _problems: &mut Problems,
    ) {
    }
}
