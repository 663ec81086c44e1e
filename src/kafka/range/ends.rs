//! Where each partition's read stands, and where it ends.
//!
//! The end is fixed when the read starts: a partition is done at the first record written after
//! the read started — one past the high watermark seen then, with a timestamp from then on — or
//! at the first record at or after the range's end, or at the broker's end-of-partition. A record
//! past that watermark but written before the read started is kept: some brokers (tansu) report
//! the watermark up to a batch behind the log, and the rest of that batch was there all along.
//! At most [`MAX_PAST`] such records are taken per partition, so a topic written to without end
//! with old timestamps still ends.

use std::collections::HashMap;

/// Records taken past a partition's high watermark at most: librdkafka's largest batch by
/// default (`batch.num.messages`).
pub const MAX_PAST: u32 = 10_000;

/// One partition's read.
#[derive(Debug, Clone, Copy)]
struct Part {
    /// First offset to read.
    start: i64,
    /// Next offset expected.
    next: i64,
    /// The high watermark when the read started.
    high: i64,
    /// Records taken past `high`.
    past: u32,
    /// Nothing more is read.
    done: bool,
}

/// Every partition's read.
#[derive(Debug)]
pub struct Ends {
    parts: HashMap<i32, Part>,
    /// When the read started, ms.
    started_ms: i64,
}

/// A record's place relative to its partition's end.
#[derive(Debug, PartialEq, Eq)]
pub enum Position {
    /// Before the end: read it.
    Inside,
    /// At or past the end (written after the read started, or at or after the range's end):
    /// the partition is done without it.
    Past,
    /// The partition was done already.
    Done,
    /// A record before the partition's position, delivered again (tansu does, around the end
    /// of its log): skipped.
    Again,
}

impl Ends {
    /// No partitions yet; the read started at `started_ms`.
    pub fn new(started_ms: i64) -> Ends {
        Ends {
            parts: HashMap::new(),
            started_ms,
        }
    }

    /// A partition read from `start`, whose high watermark was `high` when the read started.
    pub fn add(&mut self, partition: i32, start: i64, high: i64) {
        let part = Part {
            start,
            next: start,
            high,
            past: 0,
            done: false,
        };
        self.parts.insert(partition, part);
    }

    /// Every partition is done.
    pub fn done(&self) -> bool {
        self.parts.values().all(|p| p.done)
    }

    /// The partitions not done, in order.
    pub fn waiting(&self) -> Vec<i32> {
        let mut w: Vec<i32> = self
            .parts
            .iter()
            .filter(|(_, p)| !p.done)
            .map(|(k, _)| *k)
            .collect();
        w.sort_unstable();
        w
    }

    /// The broker says `partition` is at its end.
    pub fn finish(&mut self, partition: i32) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.done = true;
        }
    }

    /// Places the record at `offset` of `partition` with timestamp `ts`.
    pub fn at(&mut self, partition: i32, offset: i64, ts: i64, to_ms: Option<i64>) -> Position {
        let started = self.started_ms;
        let Some(p) = self.parts.get_mut(&partition) else {
            return Position::Done;
        };
        if p.done {
            return Position::Done;
        }
        if offset < p.next {
            return Position::Again;
        }
        let beyond = offset >= p.high;
        if to_ms.is_some_and(|b| ts >= b) || (beyond && (ts >= started || p.past >= MAX_PAST)) {
            p.done = true;
            return Position::Past;
        }
        p.past += u32::from(beyond);
        p.next = offset + 1;
        Position::Inside
    }

    /// Records between each partition's start and its high watermark, and how many are read.
    pub fn counts(&self) -> (u64, u64) {
        self.parts.values().fold((0, 0), |(total, read), p| {
            let span = (p.high - p.start).max(0) as u64;
            let behind = if p.done {
                span
            } else {
                ((p.next - p.start).max(0) as u64).min(span)
            };
            (total + span, read + behind)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_000_000;

    fn ends(parts: &[(i32, i64, i64)]) -> Ends {
        let mut e = Ends::new(START);
        for &(p, start, high) in parts {
            e.add(p, start, high);
        }
        e
    }

    #[test]
    fn a_partition_ends_at_the_first_record_written_after_the_read_started() {
        let mut e = ends(&[(0, 10, 13), (1, 5, 5)]);
        assert_eq!(e.waiting(), vec![0, 1]);
        assert_eq!(e.at(0, 10, 1, None), Position::Inside);
        assert_eq!(e.at(0, 11, 1, None), Position::Inside);
        assert_eq!(e.at(0, 12, 1, None), Position::Inside);
        // Past the watermark but written before the read started: the rest of a batch the
        // broker under-reported.
        assert_eq!(e.at(0, 13, START - 5, None), Position::Inside);
        assert_eq!(
            e.at(0, 14, START, None),
            Position::Past,
            "written after the start"
        );
        assert_eq!(e.at(0, 15, START + 1, None), Position::Done);
        // A partition that looks empty ends with the broker's end-of-partition.
        assert!(!e.done());
        e.finish(1);
        assert!(e.done());
        assert_eq!(e.counts(), (3, 3));
    }

    #[test]
    fn the_range_end_stops_a_partition_and_repeats_are_skipped() {
        let mut e = ends(&[(2, 0, 100)]);
        assert_eq!(e.at(2, 0, 1, None), Position::Inside);
        assert_eq!(
            e.at(2, 0, 1, None),
            Position::Again,
            "delivered twice, read once"
        );
        assert_eq!(e.at(2, 1, 99, Some(100)), Position::Inside);
        assert_eq!(e.at(2, 2, 100, Some(100)), Position::Past);
        assert!(e.done());
    }

    #[test]
    fn old_timestamps_past_the_watermark_end_after_a_batch() {
        let mut e = ends(&[(0, 0, 0)]);
        let taken = (0..MAX_PAST as i64 + 50)
            .take_while(|&o| e.at(0, o, 1, None) == Position::Inside)
            .count();
        assert_eq!(taken, MAX_PAST as usize);
        assert!(e.done());
    }

    #[test]
    fn counts_follow_the_read() {
        let mut e = ends(&[(0, 100, 200), (1, 0, 50)]);
        assert_eq!(e.counts(), (150, 0));
        e.at(0, 149, 0, None);
        assert_eq!(e.counts(), (150, 50));
        e.finish(1);
        assert_eq!(e.counts(), (150, 100));
    }
}
