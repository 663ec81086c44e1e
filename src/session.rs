//! Per-session state as the matrix needs it, kept in memory, for the offline tools (`eval`,
//! `test-rules`, `diff`): one store for the whole input. The stream keeps its durable
//! per-partition state in [`crate::state::PartitionState`].

use crate::matrix::SessionState;
use std::collections::HashMap;

/// Session states by session id.
#[derive(Debug, Default, Clone)]
pub struct SessionStore {
    map: HashMap<String, SessionState>,
}

impl SessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of a session (default when unseen).
    pub fn get(&self, session_id: &str) -> SessionState {
        self.map.get(session_id).copied().unwrap_or_default()
    }

    /// Records a session's new state.
    pub fn put(&mut self, session_id: &str, state: SessionState) {
        match self.map.get_mut(session_id) {
            Some(s) => *s = state,
            None => {
                self.map.insert(session_id.to_string(), state);
            }
        }
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
