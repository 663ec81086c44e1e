//! Per-session state as the matrix needs it, kept in memory. The stream keeps one store per
//! partition; the offline tools keep one for the whole input.

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

    /// Forgets sessions whose last event is older than `older_than_ms`; returns how many.
    pub fn evict_idle(&mut self, older_than_ms: i64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, s| s.last_event_ms >= older_than_ms);
        before - self.map.len()
    }
}
