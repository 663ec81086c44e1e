//! Taking new rules between records. Everything a lane derived from the old matrix is derived
//! again; its state (streaks, open escalations and their deadlines, queued digest items)
//! carries over untouched. The processor names the role topics again.

use super::lane::{family_slots, Lane};
use crate::matrix::Matrix;
use std::sync::Arc;

impl Lane {
    /// Takes the matrix of the rules followed when it changed since the last record; true when
    /// it did.
    pub(super) fn refresh(&mut self) -> bool {
        let Some(rules) = &self.decide.rules else {
            return false;
        };
        if rules.generation() == self.decide.generation {
            return false;
        }
        let (matrix, generation) = rules.current();
        self.adopt(matrix);
        self.decide.generation = generation;
        true
    }

    /// Decides with `matrix` from now on.
    fn adopt(&mut self, matrix: Arc<Matrix>) {
        let fatigue = &matrix.spec().fatigue;
        self.decide.group_within_ms = fatigue.group_within.as_millis() as i64;
        self.decide.sample_share = fatigue.sample_execute_log;
        self.decide.review_triggers = matrix.review_triggers();
        self.write
            .digests
            .lock()
            .expect("digests lock")
            .reconfigure(&matrix);
        if let Some(stats) = &self.stats {
            self.decide.family_slots = family_slots(stats, &matrix);
        }
        self.warn_on_removed_roles(&matrix);
        self.decide.matrix = matrix;
    }

    /// Open escalations on roles the new matrix does not have are still answerable; at their
    /// deadline their chain ends (see docs/operators/production.md, "Reloading the rules").
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
        self.decide
            .family_slots
            .get(self.decide.matrix.family_index(action_type))
            .copied()
            .unwrap_or(usize::MAX)
    }
}
