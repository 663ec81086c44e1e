//! Which input offsets may be committed: an offset is done when every output produced for it
//! has been delivered, and a partition's commit point only moves past offsets that are done and
//! have no earlier offset still pending. A failed delivery pins the commit point before it for
//! good, so nothing past a failure is ever committed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The input topic a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The agent actions.
    Actions,
    /// The human decisions.
    Decisions,
}

/// A partition of one of the input topics: the tracker's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    /// Which input topic.
    pub source: Source,
    /// Its partition.
    pub partition: i32,
}

impl Slot {
    /// Partition `partition` of `source`.
    pub fn new(source: Source, partition: i32) -> Slot {
        Slot { source, partition }
    }

    /// Partition `partition` of `topic`: the agent actions when it is `input_topic`, else the
    /// decisions.
    pub fn of(topic: &str, input_topic: &str, partition: i32) -> Slot {
        let source = if topic == input_topic {
            Source::Actions
        } else {
            Source::Decisions
        };
        Slot::new(source, partition)
    }
}

/// What the producer's delivery callback receives with each output: the input record it
/// belongs to, or none (outputs of deadlines and digests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token(usize);

const OFFSET_BITS: u32 = 47;
const OFFSET_MASK: usize = (1 << OFFSET_BITS) - 1;

/// Untracked tokens have both top bits set; an input's never does (partitions are below 2^15,
/// so bit 62 of an input's token is always clear).
const UNTRACKED_BITS: usize = 0b11 << 62;

impl Token {
    /// Outputs of worker `worker` that belong to no input record (deadlines, digests): the
    /// worker counts them until they are delivered.
    pub fn untracked(worker: usize) -> Token {
        debug_assert!(worker < 1 << 16);
        Token(UNTRACKED_BITS | worker)
    }

    /// The worker of an untracked token.
    pub fn worker(self) -> Option<usize> {
        (self.0 & UNTRACKED_BITS == UNTRACKED_BITS).then_some(self.0 & 0xFFFF)
    }

    /// The token of the outputs of input record `offset` of `slot`.
    pub fn new(slot: Slot, offset: i64) -> Token {
        debug_assert!((0..1 << 15).contains(&slot.partition));
        debug_assert!((0..1 << OFFSET_BITS).contains(&offset));
        let source = usize::from(slot.source == Source::Decisions);
        Token(
            (source << 63)
                | ((slot.partition as usize) << OFFSET_BITS)
                | (offset as usize & OFFSET_MASK),
        )
    }

    /// The input record, unless untracked.
    pub fn input(self) -> Option<(Slot, i64)> {
        if self.worker().is_some() {
            return None;
        }
        let source = if self.0 >> 63 == 1 {
            Source::Decisions
        } else {
            Source::Actions
        };
        let partition = ((self.0 >> OFFSET_BITS) & 0xFFFF) as i32;
        Some((Slot::new(source, partition), (self.0 & OFFSET_MASK) as i64))
    }

    /// As the producer's delivery opaque.
    pub fn into_raw(self) -> usize {
        self.0
    }

    /// From the producer's delivery opaque.
    pub fn from_raw(raw: usize) -> Token {
        Token(raw)
    }
}

/// One input offset with outputs in flight.
#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: i64,
    /// Outputs not yet delivered (0: done, kept until it reaches the front).
    left: u32,
    /// When its outputs were handed to the producer (µs on the caller's clock, wrapping).
    sent_us: u32,
    /// The event's time, for end-to-end latency.
    event_ms: i64,
}

/// Offsets with outputs not yet delivered, in offset order. Offsets are dispatched in order, so a new one is pushed at the back; one fully
/// delivered stays, at zero, until it reaches the front (deliveries also come nearly in order):
/// no tree to rebalance per record.
#[derive(Debug, Default, Clone)]
struct Pending {
    entries: VecDeque<Entry>,
    /// Entries with outputs still to deliver.
    live: usize,
}

impl Pending {
    fn position(&self, offset: i64) -> Result<usize, usize> {
        // Nearly always the last or near the front: check the back first.
        match self.entries.back() {
            Some(last) if offset > last.offset => Err(self.entries.len()),
            _ => self.entries.binary_search_by_key(&offset, |e| e.offset),
        }
    }

    /// Adds `outputs` to `offset`; true when it was not pending.
    fn add(&mut self, offset: i64, outputs: u32, event_ms: i64, sent_us: u32) -> bool {
        match self.position(offset) {
            Ok(i) => {
                let e = &mut self.entries[i];
                let new = e.left == 0;
                if new {
                    e.event_ms = event_ms;
                    e.sent_us = sent_us;
                }
                e.left += outputs;
                self.live += usize::from(new);
                new
            }
            Err(i) => {
                let entry = Entry {
                    offset,
                    left: outputs,
                    sent_us,
                    event_ms,
                };
                self.entries.insert(i, entry);
                self.live += 1;
                true
            }
        }
    }

    /// One output of `offset` delivered: its entry when it was its last.
    fn delivered(&mut self, offset: i64) -> Option<Entry> {
        let i = self.position(offset).ok()?;
        let e = &mut self.entries[i];
        if e.left == 0 {
            return None;
        }
        e.left -= 1;
        if e.left > 0 {
            return None;
        }
        let done = *e;
        self.live -= 1;
        while self.entries.front().is_some_and(|e| e.left == 0) {
            self.entries.pop_front();
        }
        Some(done)
    }

    fn remaining(&self, offset: i64) -> Option<u32> {
        let i = self.position(offset).ok()?;
        Some(self.entries[i].left).filter(|n| *n > 0)
    }

    /// The first offset still pending.
    fn first(&self) -> Option<i64> {
        self.entries.iter().find(|e| e.left > 0).map(|e| e.offset)
    }
}

/// Per-partition bookkeeping.
#[derive(Debug, Default, Clone)]
struct Partition {
    /// Offsets with outputs not yet delivered.
    pending: Pending,
    /// One past the highest offset dispatched.
    next: Option<i64>,
    /// The first offset whose delivery failed.
    failed: Option<i64>,
}

/// A message fully delivered: its partition and offset, and its event time (for latency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Input partition.
    pub partition: Slot,
    /// Input offset.
    pub offset: i64,
    /// Event timestamp carried by the input (0 when unknown).
    pub event_ms: i64,
    /// When its outputs were handed to the producer (`sent_us` of [`Tracker::dispatched`]).
    pub sent_us: u32,
}

/// Offsets in flight, for every assigned partition of the input topic.
#[derive(Debug, Default)]
pub struct Tracker {
    parts: HashMap<Slot, Partition>,
    /// Changed under the tracker's lock, read without it ([`Tracker::in_flight_counter`]): the
    /// consumer checks it before every poll.
    in_flight: Arc<AtomicUsize>,
}

impl Tracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Input messages dispatched and not yet fully delivered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The same count, to read without the tracker's lock.
    pub fn in_flight_counter(&self) -> Arc<AtomicUsize> {
        self.in_flight.clone()
    }

    /// Records that `outputs` records were sent for `offset`. The same offset may come twice
    /// (a consumer may re-deliver after a seek): its outputs then add up, and it is done when
    /// all of them are delivered. An offset without outputs (a decision that changed nothing)
    /// is done at once. `sent_us` is the caller's clock in µs (wrapping), handed back in [`Done`].
    pub fn dispatched(
        &mut self,
        partition: Slot,
        offset: i64,
        outputs: u32,
        event_ms: i64,
        sent_us: u32,
    ) {
        let p = self.parts.entry(partition).or_default();
        if outputs == 0 {
            p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
            return;
        }
        if p.pending.add(offset, outputs, event_ms, sent_us) {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
        }
        p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// Records one delivered output; returns the message when it was its last.
    pub fn delivered(&mut self, partition: Slot, offset: i64) -> Option<Done> {
        let p = self.parts.get_mut(&partition)?;
        let e = p.pending.delivered(offset)?;
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        Some(Done {
            partition,
            offset,
            event_ms: e.event_ms,
            sent_us: e.sent_us,
        })
    }

    /// Outputs of an offset not yet delivered (`None` when none are outstanding).
    pub fn remaining(&self, partition: Slot, offset: i64) -> Option<u32> {
        self.parts.get(&partition)?.pending.remaining(offset)
    }

    /// Records a delivery that failed for good.
    pub fn failed(&mut self, partition: Slot, offset: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.failed = Some(p.failed.map_or(offset, |f| f.min(offset)));
        }
    }

    /// The offset to commit for a partition (the next one to consume), if any progress exists.
    pub fn commit_point(&self, partition: Slot) -> Option<i64> {
        let p = self.parts.get(&partition)?;
        let first_pending = p.pending.first();
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
    pub fn commit_points(&self) -> Vec<(Slot, i64)> {
        let mut v: Vec<(Slot, i64)> = self
            .parts
            .keys()
            .filter_map(|&p| Some((p, self.commit_point(p)?)))
            .collect();
        v.sort_unstable();
        v
    }

    /// Forgets a partition (after it was revoked and committed); returns how many of its
    /// messages were still in flight.
    pub fn forget(&mut self, partition: Slot) -> usize {
        match self.parts.remove(&partition) {
            Some(p) => {
                self.in_flight.fetch_sub(p.pending.live, Ordering::AcqRel);
                p.pending.live
            }
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: i32) -> Slot {
        Slot::new(Source::Actions, p)
    }

    #[test]
    fn commit_point_waits_for_every_output_of_every_earlier_offset() {
        let mut t = Tracker::new();
        t.dispatched(a(0), 10, 2, 1, 0);
        t.dispatched(a(0), 11, 1, 2, 0);
        t.dispatched(a(0), 12, 3, 3, 0);
        assert_eq!(t.commit_point(a(0)), Some(10));
        assert_eq!(
            t.delivered(a(0), 11),
            Some(Done {
                partition: a(0),
                offset: 11,
                event_ms: 2,
                sent_us: 0
            })
        );
        assert_eq!(t.commit_point(a(0)), Some(10), "11 is done but 10 is not");
        assert_eq!(t.delivered(a(0), 10), None, "one of two outputs");
        assert_eq!(t.commit_point(a(0)), Some(10));
        assert!(t.delivered(a(0), 10).is_some());
        assert_eq!(t.commit_point(a(0)), Some(12));
        t.delivered(a(0), 12);
        t.delivered(a(0), 12);
        t.delivered(a(0), 12);
        assert_eq!(t.commit_point(a(0)), Some(13));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn a_failure_pins_the_commit_point_for_good() {
        let mut t = Tracker::new();
        for o in 0..5 {
            t.dispatched(a(3), o, 1, 0, 0);
        }
        t.delivered(a(3), 0);
        t.failed(a(3), 1);
        t.delivered(a(3), 1);
        for o in 2..5 {
            t.delivered(a(3), o);
        }
        assert_eq!(t.commit_point(a(3)), Some(1));
    }

    #[test]
    fn partitions_are_independent_and_can_be_forgotten() {
        let mut t = Tracker::new();
        t.dispatched(a(0), 5, 1, 0, 0);
        t.dispatched(a(1), 7, 1, 0, 0);
        t.delivered(a(1), 7);
        assert_eq!(t.commit_points(), vec![(a(0), 5), (a(1), 8)]);
        assert_eq!(t.forget(a(0)), 1);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.commit_points(), vec![(a(1), 8)]);
        assert_eq!(
            t.delivered(a(0), 5),
            None,
            "a late delivery for a forgotten partition is ignored"
        );
    }

    #[test]
    fn an_offset_dispatched_twice_is_done_when_all_its_outputs_are() {
        let mut t = Tracker::new();
        t.dispatched(a(0), 4, 2, 0, 100);
        t.dispatched(a(0), 4, 1, 0, 900);
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.delivered(a(0), 4), None);
        assert_eq!(t.delivered(a(0), 4), None);
        // Its produce time runs from the first send.
        assert_eq!(t.delivered(a(0), 4).map(|d| d.sent_us), Some(100));
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.commit_point(a(0)), Some(5));
    }

    #[test]
    fn an_offset_without_outputs_is_done_at_once() {
        let mut t = Tracker::new();
        t.dispatched(a(0), 3, 1, 0, 0);
        t.dispatched(a(0), 4, 0, 0, 0);
        assert_eq!(t.commit_point(a(0)), Some(3));
        t.delivered(a(0), 3);
        assert_eq!(t.commit_point(a(0)), Some(5));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn slots_keep_topics_apart_and_tokens_round_trip() {
        let d = Slot::new(Source::Decisions, 3);
        assert_ne!(d, a(3));
        let mut t = Tracker::new();
        t.dispatched(d, 9, 1, 0, 0);
        assert_eq!(t.commit_point(d), Some(9));
        assert_eq!(t.commit_point(a(3)), None);
        assert_eq!(Token::untracked(3).input(), None);
        assert_eq!(Token::untracked(3).worker(), Some(3));
        let biggest = Token::new(Slot::new(Source::Decisions, (1 << 15) - 1), (1 << 47) - 1);
        assert_eq!(
            biggest.worker(),
            None,
            "an input's token is never untracked"
        );
        for (slot, o) in [
            (a(0), 0),
            (d, 1),
            (a(31), (1 << 40) + 7),
            (Slot::new(Source::Decisions, 32_000), (1 << 47) - 1),
        ] {
            let t = Token::new(slot, o);
            assert_eq!(Token::from_raw(t.into_raw()).input(), Some((slot, o)));
        }
    }

    /// Deliveries in any order, offsets dispatched twice: the commit point and the count in
    /// flight always equal a plain model's (a map of offset → outputs left).
    #[test]
    fn any_delivery_order_agrees_with_a_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            let mut t = Tracker::new();
            let mut model: std::collections::BTreeMap<i64, u32> = Default::default();
            let mut next = 0i64;
            let mut outstanding: Vec<i64> = Vec::new();
            for _ in 0..300 {
                if rng.random_bool(0.5) || outstanding.is_empty() {
                    // Mostly the next offset, sometimes one again (a re-delivery).
                    let offset = if next > 0 && rng.random_bool(0.1) {
                        rng.random_range(0..next)
                    } else {
                        next += 1;
                        next - 1
                    };
                    let n = rng.random_range(1..4u32);
                    t.dispatched(a(0), offset, n, 7, 0);
                    *model.entry(offset).or_default() += n;
                    outstanding.extend(std::iter::repeat_n(offset, n as usize));
                } else {
                    let i = rng.random_range(0..outstanding.len());
                    let offset = outstanding.swap_remove(i);
                    let done = t.delivered(a(0), offset).is_some();
                    let left = model.get_mut(&offset).unwrap();
                    *left -= 1;
                    assert_eq!(done, *left == 0);
                    if *left == 0 {
                        model.remove(&offset);
                    }
                }
                let want = model.keys().next().copied().unwrap_or(next);
                assert_eq!(t.commit_point(a(0)), Some(want));
                assert_eq!(t.in_flight(), model.len());
            }
        }
    }
}
