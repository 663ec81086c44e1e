//! Shadow evaluation of a rule change: the old and the new matrix decide the same recorded
//! events, each with its own session state, and the report says how many decisions change and
//! how. Pure: events in, report out.

use crate::event::{AgentAction, Level};
use crate::matrix::Matrix;
use crate::session::SessionStore;
use serde::Serialize;
use std::collections::BTreeMap;

/// One event whose decision changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed {
    /// The action.
    pub action_id: String,
    /// Its type.
    pub action_type: String,
    /// Level under the old matrix.
    pub old_level: Level,
    /// Level under the new matrix.
    pub new_level: Level,
    /// Triggers under the old matrix.
    pub old_triggers: Vec<String>,
    /// Triggers under the new matrix.
    pub new_triggers: Vec<String>,
    /// Roles under the old matrix.
    pub old_roles: Vec<String>,
    /// Roles under the new matrix.
    pub new_roles: Vec<String>,
}

/// Before and after for one role or trigger: events that escalated to it / fired it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BeforeAfter {
    /// With the old matrix.
    pub old: usize,
    /// With the new matrix.
    pub new: usize,
}

/// What a rule change does to recorded events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiffReport {
    /// Rule versions, old and new.
    pub versions: (String, String),
    /// Events compared.
    pub events: usize,
    /// Events whose level, triggers or roles differ.
    pub changed: usize,
    /// (old level, new level) → events, for events whose level changed.
    pub transitions: BTreeMap<String, usize>,
    /// Changed events whose level stayed: only their triggers or roles differ.
    pub same_level: usize,
    /// Events needing a human (ask_first or hard_stop), old and new.
    pub needs_human: BeforeAfter,
    /// Per role: events handed to it.
    pub by_role: BTreeMap<String, BeforeAfter>,
    /// Per trigger: events it fired on.
    pub by_trigger: BTreeMap<String, BeforeAfter>,
    /// Actions the old matrix stopped (hard_stop) that the new one would let further.
    pub relaxed_hard_stops: Vec<String>,
    /// Every changed event, in input order.
    pub changes: Vec<Changed>,
}

impl DiffReport {
    /// Share of events needing a human, old and new.
    pub fn escalation_rates(&self) -> (f64, f64) {
        let n = self.events.max(1) as f64;
        (
            self.needs_human.old as f64 / n,
            self.needs_human.new as f64 / n,
        )
    }

    /// A Markdown report with up to `examples` changed events.
    pub fn markdown(&self, examples: usize) -> String {
        let mut s = String::new();
        self.write_summary(&mut s);
        self.write_tables(&mut s);
        self.write_examples(&mut s, examples);
        s
    }

    /// The headline: versions, how many decisions change, escalation rates, relaxed stops.
    fn write_summary(&self, s: &mut String) {
        use std::fmt::Write;
        let (old, new) = self.escalation_rates();
        let _ = writeln!(
            s,
            "# Rule change: {} → {}\n",
            self.versions.0, self.versions.1
        );
        let _ = writeln!(
            s,
            "{} events compared; **{} decisions change** ({:.2}%).\n",
            self.events,
            self.changed,
            100.0 * self.changed as f64 / self.events.max(1) as f64
        );
        let _ = writeln!(
            s,
            "Escalation rate (ask_first or hard_stop): {:.2}% → {:.2}% ({} → {} events).\n",
            100.0 * old,
            100.0 * new,
            self.needs_human.old,
            self.needs_human.new
        );
        if !self.relaxed_hard_stops.is_empty() {
            let _ = writeln!(
                s,
                "**{} hard_stop decision(s) would be relaxed**, e.g. {}.\n",
                self.relaxed_hard_stops.len(),
                self.relaxed_hard_stops
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }

    /// The tables: how decisions changed (level transitions, then those whose level stayed),
    /// then counts by role and by trigger.
    fn write_tables(&self, s: &mut String) {
        use std::fmt::Write;
        if self.changed > 0 {
            let _ = writeln!(s, "| level change | events |\n|---|---:|");
            for (t, n) in &self.transitions {
                let _ = writeln!(s, "| {t} | {n} |");
            }
            if self.same_level > 0 {
                let n = self.same_level;
                let _ = writeln!(s, "| same level, other triggers or roles | {n} |");
            }
            s.push('\n');
        }
        for (title, map) in [("role", &self.by_role), ("trigger", &self.by_trigger)] {
            let rows: Vec<_> = map
                .iter()
                .filter(|(_, b)| b.old != 0 || b.new != 0)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(s, "| {title} | old | new | change |\n|---|---:|---:|---:|");
            for (name, b) in rows {
                let _ = writeln!(
                    s,
                    "| {name} | {} | {} | {:+} |",
                    b.old,
                    b.new,
                    b.new as i64 - b.old as i64
                );
            }
            s.push('\n');
        }
    }

    /// Up to `examples` changed decisions.
    fn write_examples(&self, s: &mut String, examples: usize) {
        use std::fmt::Write;
        if !self.changes.is_empty() && examples > 0 {
            let _ = writeln!(
                s,
                "Examples ({} of {}):\n",
                examples.min(self.changes.len()),
                self.changes.len()
            );
            for c in self.changes.iter().take(examples) {
                let _ = writeln!(
                    s,
                    "- `{}` {}: {} [{}] → {} [{}]; roles [{}] → [{}]",
                    c.action_id,
                    c.action_type,
                    c.old_level.as_str(),
                    c.old_triggers.join(", "),
                    c.new_level.as_str(),
                    c.new_triggers.join(", "),
                    c.old_roles.join(", "),
                    c.new_roles.join(", ")
                );
            }
        }
    }
}

/// Decides every event with both matrices and reports the differences.
pub fn diff<'a>(
    old: &Matrix,
    new: &Matrix,
    events: impl IntoIterator<Item = &'a AgentAction>,
) -> DiffReport {
    let mut report = DiffReport {
        versions: (old.version().to_string(), new.version().to_string()),
        ..Default::default()
    };
    let (mut s_old, mut s_new) = (SessionStore::new(), SessionStore::new());
    for e in events {
        report.events += 1;
        let a = decide(old, &mut s_old, e);
        let b = decide(new, &mut s_new, e);
        if a.0.needs_human() {
            report.needs_human.old += 1;
        }
        if b.0.needs_human() {
            report.needs_human.new += 1;
        }
        for r in &a.2 {
            report.by_role.entry(r.clone()).or_default().old += 1;
        }
        for r in &b.2 {
            report.by_role.entry(r.clone()).or_default().new += 1;
        }
        for t in &a.1 {
            report.by_trigger.entry(t.clone()).or_default().old += 1;
        }
        for t in &b.1 {
            report.by_trigger.entry(t.clone()).or_default().new += 1;
        }
        if a == b {
            continue;
        }
        report.changed += 1;
        if a.0 == b.0 {
            report.same_level += 1;
        } else {
            let t = format!("{} → {}", a.0.as_str(), b.0.as_str());
            *report.transitions.entry(t).or_default() += 1;
        }
        if a.0 == Level::HardStop && b.0 < Level::HardStop {
            report.relaxed_hard_stops.push(e.action_id.clone());
        }
        report.changes.push(Changed {
            action_id: e.action_id.clone(),
            action_type: e.action_type.clone(),
            old_level: a.0,
            new_level: b.0,
            old_triggers: a.1,
            new_triggers: b.1,
            old_roles: a.2,
            new_roles: b.2,
        });
    }
    report
}

/// Level, trigger names and role names of one event under one matrix.
fn decide(
    m: &Matrix,
    sessions: &mut SessionStore,
    e: &AgentAction,
) -> (Level, Vec<String>, Vec<String>) {
    let state = sessions.get(&e.session_id);
    let d = m.evaluate(e, &state);
    sessions.put(&e.session_id, d.session);
    (d.level, d.triggers.names(), m.role_names(d.roles))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{MatrixSource, DEFAULT_MATRIX_TOML};

    fn event(id: &str, action_type: &str, confidence: f64) -> AgentAction {
        serde_json::from_value(serde_json::json!({
            "action_id": id, "session_id": id, "agent_id": "bot",
            "timestamp_ms": 1_798_761_600_000_i64, "action_type": action_type,
            "confidence": confidence, "request": "r", "summary": "s",
            "reversible": true, "affects_others": false
        }))
        .unwrap()
    }

    #[test]
    fn a_level_transition_is_counted_only_when_the_level_changed() {
        let old = Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap();
        let raised = DEFAULT_MATRIX_TOML.replace("threshold = 0.70", "threshold = 0.85");
        assert_ne!(raised, DEFAULT_MATRIX_TOML);
        let new = Matrix::from_toml_str(&raised, MatrixSource::Default).unwrap();
        let events = [
            // Logged before, asked after: a level change.
            event("a", "chat.reply", 0.8),
            // Asked before (a refund) and after, now also for low confidence.
            event("b", "refund.issue", 0.8),
            // Confident: the same decision.
            event("c", "chat.reply", 0.95),
        ];
        let r = diff(&old, &new, &events);
        assert_eq!(r.changed, 2);
        assert_eq!(
            r.transitions,
            BTreeMap::from([("execute_log → ask_first".to_string(), 1)])
        );
        assert_eq!(r.same_level, 1);
        let (b_old, b_new) = (&r.changes[1].old_triggers, &r.changes[1].new_triggers);
        assert!(
            b_old.is_empty() && b_new == &["low_confidence"],
            "{b_new:?}"
        );
        let md = r.markdown(0);
        assert!(!md.contains("ask_first → ask_first"), "{md}");
        assert!(md.contains("| execute_log → ask_first | 1 |"), "{md}");
        assert!(
            md.contains("| same level, other triggers or roles | 1 |"),
            "{md}"
        );
    }
}
