//! Taking new rules between records. Everything the processor derived from the old matrix is
//! derived again; its state (streaks, open escalations and their deadlines, queued digest
//! items) carries over untouched.

use super::{role_topics, Processor, FIRST_ROLE};
use crate::matrix::Matrix;
use crate::pipeline::stats::Stats;
use std::sync::Arc;

impl Processor {
    /// Takes the matrix of the rules followed when it changed since the last record.
    pub(super) fn refresh(&mut self) {
        let Some(rules) = &self.rules else { return };
        if rules.generation() == self.generation {
            return;
        }
        let (matrix, generation) = rules.current();
        self.adopt(matrix);
        self.generation = generation;
    }

    /// Decides with `matrix` from now on.
    fn adopt(&mut self, matrix: Arc<Matrix>) {
        if let Some(twin) = self.drill.as_mut() {
            twin.adopt(matrix.clone());
        }
        self.topics.truncate(FIRST_ROLE);
        self.topics.extend(role_topics(&self.role_prefix, &matrix));
        self.own_topics = self.topics.len();
        if let Some(twin) = &self.drill {
            self.topics.extend(twin.topics.iter().cloned());
        }
        let fatigue = &matrix.spec().fatigue;
        self.group_within_ms = fatigue.group_within.as_millis() as i64;
        self.sample_share = fatigue.sample_execute_log;
        self.review_triggers = matrix.review_triggers();
        self.digests
            .lock()
            .expect("digests lock")
            .reconfigure(&matrix);
        if let Some(stats) = &self.stats {
            self.family_slots = family_slots(stats, &matrix);
        }
        self.warn_on_removed_roles(&matrix);
        self.matrix = matrix;
    }

    /// Open escalations on roles the new matrix does not have are still answerable; at their
    /// deadline their chain ends (see the README's "Reloading the rules").
    fn warn_on_removed_roles(&self, matrix: &Matrix) {
        let orphaned: Vec<String> = self
            .states
            .values()
            .flat_map(|s| s.pending())
            .filter(|(role, _)| matrix.role_index(role).is_none())
            .map(|(role, _)| role)
            .collect();
        if orphaned.is_empty() {
            return;
        }
        let mut roles = orphaned.clone();
        roles.sort();
        roles.dedup();
        tracing::warn!(
            open = orphaned.len(),
            roles = %roles.join(", "),
            version = matrix.version(),
            "open escalations on roles the new rules remove: answers still count; at their \
             deadline their chain ends"
        );
    }

    /// The metrics slot of an action type's family ("other" when there is none).
    pub(super) fn family_slot(&self, action_type: &str) -> usize {
        self.family_slots
            .get(self.matrix.family_index(action_type))
            .copied()
            .unwrap_or(usize::MAX)
    }
}

/// The metrics slot of each of the matrix's families, in its order.
pub(super) fn family_slots(stats: &Stats, matrix: &Matrix) -> Vec<usize> {
    matrix
        .families()
        .iter()
        .map(|f| stats.metrics.family(f))
        .collect()
}
