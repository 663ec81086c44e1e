//! Which input offsets may be committed: an offset is done when every output produced for it
//! has been delivered, and a partition's commit point only moves past offsets that are done and
//! have no earlier offset still pending. A failed delivery pins the commit point before it for
//! good, so nothing past a failure is ever committed.

use std::collections::{BTreeMap, HashMap};

/// Per-partition bookkeeping.
#[derive(Debug, Default, Clone)]
struct Partition {
    /// Offsets with outputs not yet delivered: remaining outputs and the event time.
    pending: BTreeMap<i64, (u32, i64)>,
    /// One past the highest offset dispatched.
    next: Option<i64>,
    /// The first offset whose delivery failed.
    failed: Option<i64>,
}

/// A message fully delivered: its partition and offset, and its event time (for latency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Input partition.
    pub partition: i32,
    /// Input offset.
    pub offset: i64,
    /// Event timestamp carried by the input (0 when unknown).
    pub event_ms: i64,
}

/// Offsets in flight, for every assigned partition of the input topic.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    parts: HashMap<i32, Partition>,
    in_flight: usize,
}

impl Tracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Input messages dispatched and not yet fully delivered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Records that `outputs` records were sent for `offset`. The same offset may come twice
    /// (a consumer may re-deliver after a seek): its outputs then add up, and it is done when
    /// all of them are delivered. An offset without outputs (a decision that changed nothing)
    /// is done at once.
    pub fn dispatched(&mut self, partition: i32, offset: i64, outputs: u32, event_ms: i64) {
        let p = self.parts.entry(partition).or_default();
        if outputs == 0 {
            p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
            return;
        }
        match p.pending.get_mut(&offset) {
            Some(entry) => entry.0 += outputs,
            None => {
                p.pending.insert(offset, (outputs, event_ms));
                self.in_flight += 1;
            }
        }
        p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// Records one delivered output; returns the message when it was its last.
    pub fn delivered(&mut self, partition: i32, offset: i64) -> Option<Done> {
        let p = self.parts.get_mut(&partition)?;
        let entry = p.pending.get_mut(&offset)?;
        entry.0 -= 1;
        if entry.0 > 0 {
            return None;
        }
        let event_ms = entry.1;
        p.pending.remove(&offset);
        self.in_flight -= 1;
        Some(Done {
            partition,
            offset,
            event_ms,
        })
    }

    /// Outputs of an offset not yet delivered (`None` when none are outstanding).
    pub fn remaining(&self, partition: i32, offset: i64) -> Option<u32> {
        self.parts
            .get(&partition)?
            .pending
            .get(&offset)
            .map(|e| e.0)
    }

    /// Records a delivery that failed for good.
    pub fn failed(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.failed = Some(p.failed.map_or(offset, |f| f.min(offset)));
        }
    }

    /// The offset to commit for a partition (the next one to consume), if any progress exists.
    pub fn commit_point(&self, partition: i32) -> Option<i64> {
        let p = self.parts.get(&partition)?;
        let first_pending = p.pending.keys().next().copied();
        let point = match (first_pending, p.next) {
            (Some(o), _) => o,
            (None, Some(n)) => n,
            (None, None) => return None,
        };
        Some(match p.failed {
            Some(f) => point.min(f),
            None => point,
        })
    }

    /// Every partition with its commit point.
    pub fn commit_points(&self) -> Vec<(i32, i64)> {
        let mut v: Vec<(i32, i64)> = self
            .parts
            .keys()
            .filter_map(|&p| Some((p, self.commit_point(p)?)))
            .collect();
        v.sort_unstable();
        v
    }

    /// Forgets a partition (after it was revoked and committed); returns how many of its
    /// messages were still in flight.
    pub fn forget(&mut self, partition: i32) -> usize {
        match self.parts.remove(&partition) {
            Some(p) => {
                self.in_flight -= p.pending.len();
                p.pending.len()
            }
            None => 0,
        }
    }
}

/// The tracker's partition key for partition `partition` of input topic number `source` (0: the
/// agent actions, 1: the human decisions).
pub fn slot(source: u8, partition: i32) -> i32 {
    debug_assert!(source < 2 && (0..1 << 15).contains(&partition));
    partition | (i32::from(source) << 15)
}

/// The input topic number and partition of a tracker key.
pub fn unslot(slot: i32) -> (u8, i32) {
    ((slot >> 15) as u8, slot & ((1 << 15) - 1))
}

/// The token of outputs that belong to no input record (deadlines firing): the tracker never
/// holds its slot, so its deliveries only matter when they fail.
pub const UNTRACKED: usize = usize::MAX;

/// Packs a tracker key and an offset into a delivery token.
pub fn token(partition: i32, offset: i64) -> usize {
    debug_assert!((0..1 << 16).contains(&partition) && (0..1 << 48).contains(&offset));
    ((partition as usize) << 48) | (offset as usize & ((1 << 48) - 1))
}

/// Unpacks a delivery token.
pub fn untoken(t: usize) -> (i32, i64) {
    ((t >> 48) as i32, (t & ((1 << 48) - 1)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_point_waits_for_every_output_of_every_earlier_offset() {
        let mut t = Tracker::new();
        t.dispatched(0, 10, 2, 1);
        t.dispatched(0, 11, 1, 2);
        t.dispatched(0, 12, 3, 3);
        assert_eq!(t.commit_point(0), Some(10));
        assert_eq!(
            t.delivered(0, 11),
            Some(Done {
                partition: 0,
                offset: 11,
                event_ms: 2
            })
        );
        assert_eq!(t.commit_point(0), Some(10), "11 is done but 10 is not");
        assert_eq!(t.delivered(0, 10), None, "one of two outputs");
        assert_eq!(t.commit_point(0), Some(10));
        assert!(t.delivered(0, 10).is_some());
        assert_eq!(t.commit_point(0), Some(12));
        t.delivered(0, 12);
        t.delivered(0, 12);
        t.delivered(0, 12);
        assert_eq!(t.commit_point(0), Some(13));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn a_failure_pins_the_commit_point_for_good() {
        let mut t = Tracker::new();
        for o in 0..5 {
            t.dispatched(3, o, 1, 0);
        }
        t.delivered(3, 0);
        t.failed(3, 1);
        t.delivered(3, 1);
        for o in 2..5 {
            t.delivered(3, o);
        }
        assert_eq!(t.commit_point(3), Some(1));
    }

    #[test]
    fn partitions_are_independent_and_can_be_forgotten() {
        let mut t = Tracker::new();
        t.dispatched(0, 5, 1, 0);
        t.dispatched(1, 7, 1, 0);
        t.delivered(1, 7);
        assert_eq!(t.commit_points(), vec![(0, 5), (1, 8)]);
        assert_eq!(t.forget(0), 1);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.commit_points(), vec![(1, 8)]);
        assert_eq!(
            t.delivered(0, 5),
            None,
            "a late delivery for a forgotten partition is ignored"
        );
    }

    #[test]
    fn an_offset_dispatched_twice_is_done_when_all_its_outputs_are() {
        let mut t = Tracker::new();
        t.dispatched(0, 4, 2, 0);
        t.dispatched(0, 4, 1, 0);
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.delivered(0, 4), None);
        assert_eq!(t.delivered(0, 4), None);
        assert!(t.delivered(0, 4).is_some());
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.commit_point(0), Some(5));
    }

    #[test]
    fn an_offset_without_outputs_is_done_at_once() {
        let mut t = Tracker::new();
        t.dispatched(0, 3, 1, 0);
        t.dispatched(0, 4, 0, 0);
        assert_eq!(t.commit_point(0), Some(3));
        t.delivered(0, 3);
        assert_eq!(t.commit_point(0), Some(5));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn slots_keep_topics_apart_and_untracked_tokens_are_ignored() {
        assert_eq!(unslot(slot(1, 3)), (1, 3));
        assert_ne!(slot(0, 3), slot(1, 3));
        let mut t = Tracker::new();
        t.dispatched(slot(1, 3), 9, 1, 0);
        let (k, o) = untoken(UNTRACKED);
        assert_eq!(t.delivered(k, o), None);
        assert_eq!(t.commit_point(slot(1, 3)), Some(9));
        assert_eq!(t.commit_point(slot(0, 3)), None);
    }

    #[test]
    fn tokens_round_trip() {
        for (p, o) in [(0, 0), (1, 1), (31, (1 << 40) + 7), (32_000, (1 << 48) - 1)] {
            assert_eq!(untoken(token(p, o)), (p, o));
        }
    }
}
