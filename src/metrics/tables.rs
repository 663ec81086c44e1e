//! Label handles per role and per action type family, resolved once per name. A rule change can
//! name new roles and families: their handles are added then; the ones of names it drops stay
//! (counters do not go back). A slot, once given to a name, is that name's for the process's life.

use crate::event::{DecisionKind, Level, Tier};
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};
use std::sync::{Arc, RwLock};

/// One role's handles.
pub(super) struct RoleHandles {
    /// Warm, immediate.
    pub escalations: [IntCounter; 2],
    /// Warm, immediate.
    pub time_to_human: [Histogram; 2],
    /// One per decision kind.
    pub human_decisions: [IntCounter; 5],
    /// Warm, immediate.
    pub pending: [IntGauge; 2],
    /// Warm, immediate.
    pub deadline_misses: [IntCounter; 2],
    pub grouped: IntCounter,
    pub folded: IntCounter,
}

/// The labelled families the tables take their handles from.
pub(super) struct Vecs {
    pub events: IntCounterVec,
    pub escalations: IntCounterVec,
    pub time_to_human: HistogramVec,
    pub human_decisions: IntCounterVec,
    pub pending: IntGaugeVec,
    pub deadline_misses: IntCounterVec,
    pub grouped: IntCounterVec,
    pub folded: IntCounterVec,
    pub digests: IntCounterVec,
}

struct Table<T> {
    names: Vec<String>,
    handles: Vec<Arc<T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            names: Vec::new(),
            handles: Vec::new(),
        }
    }
}

/// Per-role and per-family handles, shared by every clone of the metrics.
#[derive(Clone)]
pub(super) struct Tables {
    vecs: Arc<Vecs>,
    roles: Arc<RwLock<Table<RoleHandles>>>,
    families: Arc<RwLock<Table<[IntCounter; 4]>>>,
    other: Arc<[IntCounter; 4]>,
}

const TIERS: [Tier; 2] = [Tier::Warm, Tier::Immediate];

fn slot_of<T>(table: &RwLock<Table<T>>, name: &str, make: impl FnOnce(&str) -> T) -> usize {
    if let Some(i) = table
        .read()
        .expect("metrics table")
        .names
        .iter()
        .position(|n| n == name)
    {
        return i;
    }
    let mut t = table.write().expect("metrics table");
    if let Some(i) = t.names.iter().position(|n| n == name) {
        return i;
    }
    t.names.push(name.to_string());
    t.handles.push(Arc::new(make(name)));
    t.names.len() - 1
}

impl Tables {
    pub fn new(vecs: Vecs) -> Self {
        let other = Level::ALL.map(|l| vecs.events.with_label_values(&[l.as_str(), "other"]));
        Tables {
            vecs: Arc::new(vecs),
            roles: Arc::default(),
            families: Arc::default(),
            other: Arc::new(other),
        }
    }

    /// The slot of role `name`, its handles (and its digest counter) made the first time.
    pub fn role(&self, name: &str) -> usize {
        let v = &self.vecs;
        slot_of(&self.roles, name, |role| {
            v.digests.with_label_values(&[role]);
            RoleHandles {
                escalations: TIERS.map(|t| v.escalations.with_label_values(&[role, t.as_str()])),
                time_to_human: TIERS
                    .map(|t| v.time_to_human.with_label_values(&[role, t.as_str()])),
                human_decisions: DecisionKind::ALL
                    .map(|d| v.human_decisions.with_label_values(&[role, d.as_str()])),
                pending: TIERS.map(|t| v.pending.with_label_values(&[role, t.as_str()])),
                deadline_misses: TIERS
                    .map(|t| v.deadline_misses.with_label_values(&[role, t.as_str()])),
                grouped: v.grouped.with_label_values(&[role]),
                folded: v.folded.with_label_values(&[role]),
            }
        })
    }

    /// The slot of action type family `name`.
    pub fn family(&self, name: &str) -> usize {
        let v = &self.vecs;
        slot_of(&self.families, name, |f| {
            Level::ALL.map(|l| v.events.with_label_values(&[l.as_str(), f]))
        })
    }

    /// The handles of role slot `slot` (`None`: not a slot).
    pub fn role_handles(&self, slot: usize) -> Option<Arc<RoleHandles>> {
        self.roles
            .read()
            .expect("metrics table")
            .handles
            .get(slot)
            .cloned()
    }

    /// Counts `n` events of family slot `slot` at `level`; out of range is "other".
    pub fn count_events(&self, slot: usize, level: Level, n: u64) {
        let t = self.families.read().expect("metrics table");
        match t.handles.get(slot) {
            Some(h) => h[level as usize].inc_by(n),
            None => self.other[level as usize].inc_by(n),
        }
    }

    /// Escalations produced per role name, in slot order (warm + immediate).
    pub fn escalations_by_role(&self) -> Vec<(String, u64)> {
        let t = self.roles.read().expect("metrics table");
        t.names
            .iter()
            .zip(&t.handles)
            .map(|(n, h)| (n.clone(), h.escalations.iter().map(|c| c.get()).sum()))
            .collect()
    }
}
