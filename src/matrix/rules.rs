//! The rules in force: one matrix shared by every worker, replaced whole by a reload. Workers
//! look between records (one atomic load) and take the new matrix before their next record, so
//! every record is decided entirely by one version.

use super::Matrix;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The current matrix and a generation that changes with it.
#[derive(Debug)]
pub struct Rules {
    current: RwLock<Arc<Matrix>>,
    generation: AtomicU64,
}

impl Rules {
    /// Rules starting with `matrix` (generation 0).
    pub fn new(matrix: Arc<Matrix>) -> Arc<Rules> {
        Arc::new(Rules {
            current: RwLock::new(matrix),
            generation: AtomicU64::new(0),
        })
    }

    /// Changes with every [`Rules::install`]; cheap enough to read per record.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The matrix in force and its generation.
    pub fn current(&self) -> (Arc<Matrix>, u64) {
        let m = self.current.read().expect("rules lock");
        (m.clone(), self.generation())
    }

    /// Puts `matrix` in force; returns the one it replaces.
    pub fn install(&self, matrix: Arc<Matrix>) -> Arc<Matrix> {
        let mut m = self.current.write().expect("rules lock");
        let old = std::mem::replace(&mut *m, matrix);
        // Bumped under the lock: a reader that sees the new generation gets the new matrix.
        self.generation.fetch_add(1, Ordering::Release);
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_install_changes_the_generation_and_the_matrix_together() {
        let a = Arc::new(Matrix::default_matrix().unwrap());
        let rules = Rules::new(a.clone());
        let (m, g) = rules.current();
        assert!(Arc::ptr_eq(&m, &a));
        assert_eq!(g, 0);
        let b = Arc::new(Matrix::default_matrix().unwrap());
        let old = rules.install(b.clone());
        assert!(Arc::ptr_eq(&old, &a));
        let (m, g) = rules.current();
        assert!(Arc::ptr_eq(&m, &b));
        assert_eq!(g, 1);
    }
}
