//! Reading a recorded topic, or a time range of it, back from Kafka: for `replay`, `diff` on a
//! topic, the audit pack, `suggest`, the canary report and `tail`.
//!
//! A read always ends, also on a live topic that never goes quiet. Each partition is read from
//! the range's start to an end fixed when the read starts ([`ends`]): records written after the
//! read started are not waited for, and a partition is paused at the first of them, at the
//! first record at or after the range's end, or when the broker says it is at its end; the read
//! is over when every partition is.

use crate::config::Settings;
use ends::{Ends, Position};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::io::IsTerminal;

mod ends;
use std::time::{Duration, Instant};

/// How far before a range's start a read begins (records before the start are skipped): a
/// broker that answers a fetch starting inside a record batch from the *next* batch (tansu)
/// would otherwise drop the range's first records.
pub const START_SLACK_MS: i64 = 10_000;

/// How long a read may see nothing at all (no record, no end of partition) before it gives up.
const STALL: Duration = Duration::from_secs(30);

/// Why a topic could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The topic is not there.
    #[error("topic {0:?} does not exist on {1}")]
    MissingTopic(String, String),
    /// Nothing in the range asked for.
    #[error("topic {topic:?} has no records {range}")]
    Empty {
        /// Topic.
        topic: String,
        /// The range, in words.
        range: String,
    },
    /// The client failed.
    #[error("reading {topic:?}: {source}")]
    Kafka {
        /// Topic.
        topic: String,
        /// The client's error.
        source: Box<crate::kafka::Error>,
    },
    /// The brokers stopped answering in the middle of a read.
    #[error(
        "reading {topic:?} from {bootstrap}: nothing arrived for {stall:?} while partitions \
         {waiting:?} were short of their end"
    )]
    Stalled {
        /// Topic.
        topic: String,
        /// Bootstrap servers.
        bootstrap: String,
        /// How long nothing arrived.
        stall: Duration,
        /// The partitions not at their end.
        waiting: Vec<i32>,
    },
}

/// One record read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Kafka timestamp, ms.
    pub timestamp_ms: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub payload: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Recorded {
    /// The value of header `key`, as text.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// A time range by record timestamp; `None` ends are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// First timestamp included, ms.
    pub from_ms: Option<i64>,
    /// First timestamp excluded, ms.
    pub to_ms: Option<i64>,
}

impl Range {
    /// The range in words.
    pub fn describe(&self) -> String {
        match (self.from_ms, self.to_ms) {
            (None, None) => "at all".into(),
            (Some(a), None) => format!("from {a} ms on"),
            (None, Some(b)) => format!("before {b} ms"),
            (Some(a), Some(b)) => format!("between {a} and {b} ms"),
        }
    }

    /// True when `ts` lies in the range.
    pub fn contains(&self, ts: i64) -> bool {
        self.from_ms.is_none_or(|a| ts >= a) && self.to_ms.is_none_or(|b| ts < b)
    }
}

/// The partitions of a topic, or a clear error when it does not exist.
pub fn partitions(settings: &Settings, topic: &str) -> Result<Vec<i32>, SourceError> {
    crate::kafka::admin::partitions(settings, topic)
        .map_err(|e| SourceError::Kafka {
            topic: topic.into(),
            source: Box::new(e),
        })
        .and_then(|parts| {
            if parts.is_empty() {
                Err(SourceError::MissingTopic(
                    topic.into(),
                    settings.kafka.bootstrap_servers.clone(),
                ))
            } else {
                Ok(parts)
            }
        })
}

/// A consumer reading topics back by assignment (no commits).
pub(crate) fn reader(settings: &Settings) -> Result<BaseConsumer, crate::kafka::Error> {
    crate::kafka::create(
        &settings.kafka,
        crate::kafka::Role::Reader("reader"),
        "reader",
    )
}

/// Reads every record of `topic` within `range`, per partition in offset order, starting at
/// `resume` offsets where given (a resumed replay). Ends as the module says.
pub fn read(
    settings: &Settings,
    topic: &str,
    range: Range,
    resume: &HashMap<i32, i64>,
) -> Result<Vec<Recorded>, SourceError> {
    let mut out = Vec::new();
    scan(settings, topic, range, resume, |m, ts| {
        out.push(recorded(m, ts))
    })?;
    out.sort_by_key(|r| (r.partition, r.offset));
    if out.is_empty() && resume.is_empty() {
        return Err(SourceError::Empty {
            topic: topic.into(),
            range: range.describe(),
        });
    }
    Ok(out)
}

/// Calls `keep` with every record of `topic` within `range` (and its timestamp), per partition
/// in offset order, partitions interleaved; returns how many records were read in all (inside
/// the range or not). Ends as the module says; shows its progress on standard error when that
/// is a terminal, and a line every ten seconds otherwise.
pub fn scan(
    settings: &Settings,
    topic: &str,
    range: Range,
    resume: &HashMap<i32, i64>,
    keep: impl FnMut(&BorrowedMessage<'_>, i64),
) -> Result<u64, SourceError> {
    let never = std::sync::atomic::AtomicBool::new(false);
    scan_until(settings, topic, range, resume, &never, keep)
}

/// [`scan`], ending early once `stop` is set.
pub fn scan_until(
    settings: &Settings,
    topic: &str,
    range: Range,
    resume: &HashMap<i32, i64>,
    stop: &std::sync::atomic::AtomicBool,
    mut keep: impl FnMut(&BorrowedMessage<'_>, i64),
) -> Result<u64, SourceError> {
    let parts = partitions(settings, topic)?;
    let c: BaseConsumer =
        crate::kafka::client_config(&settings.kafka, crate::kafka::Role::Reader("reader"))
            .set("enable.partition.eof", "true")
            .create()
            .map_err(|e| kafka(topic, e))?;
    let timeout = settings.pipeline.connect_timeout;
    let mut ends = assign_range(&c, topic, &parts, range, resume, timeout)?;
    let mut progress = Progress::new(topic);
    let mut last = Instant::now();
    let mut read = 0u64;
    while !ends.done() && !stop.load(std::sync::atomic::Ordering::Acquire) {
        if last.elapsed() > STALL {
            return Err(SourceError::Stalled {
                topic: topic.into(),
                bootstrap: settings.kafka.bootstrap_servers.clone(),
                stall: STALL,
                waiting: ends.waiting(),
            });
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last = Instant::now();
                let ts = m.timestamp().to_millis().unwrap_or(0);
                match ends.at(m.partition(), m.offset(), ts, range.to_ms) {
                    Position::Inside => {
                        read += 1;
                        if range.contains(ts) {
                            keep(&m, ts);
                        }
                    }
                    Position::Past => pause(&c, topic, m.partition()),
                    Position::Done | Position::Again => {}
                }
                progress.show(&ends);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                last = Instant::now();
                ends.finish(p);
                pause(&c, topic, p);
            }
            Some(Err(e)) => return Err(kafka(topic, e)),
            None => {}
        }
    }
    progress.finish(read);
    Ok(read)
}

/// Calls `keep` with every record of `topic` from `from_ms` on (from the end when `None`: only
/// what is written from now on), as it arrives, until `stop` is set; returns how many were kept.
/// The one read that does not end by itself: `handoff tail --follow`.
pub fn follow(
    settings: &Settings,
    topic: &str,
    from_ms: Option<i64>,
    stop: &std::sync::atomic::AtomicBool,
    mut keep: impl FnMut(&BorrowedMessage<'_>, i64),
) -> Result<u64, SourceError> {
    let parts = partitions(settings, topic)?;
    let c = reader(settings).map_err(|e| SourceError::Kafka {
        topic: topic.into(),
        source: Box::new(e),
    })?;
    let timeout = settings.pipeline.connect_timeout;
    let mut starts = TopicPartitionList::new();
    for &p in &parts {
        let at = match from_ms {
            Some(ts) => Offset::Offset(ts.saturating_sub(START_SLACK_MS).max(0)),
            None => Offset::End,
        };
        starts
            .add_partition_offset(topic, p, at)
            .map_err(|e| kafka(topic, e))?;
    }
    if from_ms.is_some() {
        starts = c
            .offsets_for_times(starts, timeout)
            .map_err(|e| kafka(topic, e))?;
    }
    c.assign(&starts).map_err(|e| kafka(topic, e))?;
    let mut kept = 0;
    let mut next: HashMap<i32, i64> = HashMap::new();
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let at = next.entry(m.partition()).or_insert(0);
                if m.offset() < *at {
                    continue; // delivered again
                }
                *at = m.offset() + 1;
                let ts = m.timestamp().to_millis().unwrap_or(0);
                if from_ms.is_none_or(|a| ts >= a) {
                    kept += 1;
                    keep(&m, ts);
                }
            }
            Some(Err(e)) => return Err(kafka(topic, e)),
            None => {}
        }
    }
    Ok(kept)
}

/// Assigns every partition from the range's start (less [`START_SLACK_MS`]) or the resumed
/// offset, and notes each one's high watermark now.
fn assign_range(
    c: &BaseConsumer,
    topic: &str,
    parts: &[i32],
    range: Range,
    resume: &HashMap<i32, i64>,
    timeout: Duration,
) -> Result<Ends, SourceError> {
    let mut starts = TopicPartitionList::new();
    for &p in parts {
        let at = match range.from_ms {
            Some(ts) => Offset::Offset(ts.saturating_sub(START_SLACK_MS).max(0)),
            None => Offset::Beginning,
        };
        starts
            .add_partition_offset(topic, p, at)
            .map_err(|e| kafka(topic, e))?;
    }
    if range.from_ms.is_some() {
        starts = c
            .offsets_for_times(starts, timeout)
            .map_err(|source| kafka(topic, source))?;
    }
    let mut ends = Ends::new(crate::clock::SystemClock::now());
    let mut assign = TopicPartitionList::new();
    for el in starts.elements() {
        let p = el.partition();
        let (low, high) = c
            .fetch_watermarks(topic, p, timeout)
            .map_err(|source| kafka(topic, source))?;
        let start = match (resume.get(&p), el.offset()) {
            (Some(&o), _) => o,
            (None, Offset::Offset(o)) => o.max(low),
            (None, Offset::End) => high,
            (None, _) => low,
        };
        // Assigned even when it looks empty: some brokers (tansu) report the high watermark a
        // batch behind; the broker's end-of-partition says when it is.
        ends.add(p, start, high);
        assign
            .add_partition_offset(topic, p, Offset::Offset(start))
            .map_err(|e| kafka(topic, e))?;
    }
    c.assign(&assign).map_err(|source| kafka(topic, source))?;
    Ok(ends)
}

fn pause(c: &BaseConsumer, topic: &str, partition: i32) {
    let mut t = TopicPartitionList::new();
    if t.add_partition_offset(topic, partition, Offset::Invalid)
        .is_ok()
    {
        let _ = c.pause(&t);
    }
}

/// The progress of one read on standard error: a bar on a terminal, a line every ten seconds
/// otherwise; nothing for reads that end within a second.
struct Progress {
    topic: String,
    started: Instant,
    last_line: Instant,
    bar: Option<indicatif::ProgressBar>,
    terminal: bool,
}

impl Progress {
    fn new(topic: &str) -> Progress {
        Progress {
            topic: topic.into(),
            started: Instant::now(),
            last_line: Instant::now(),
            bar: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, ends: &Ends) {
        if self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let (total, done) = ends.counts();
        if self.terminal {
            let bar = self.bar.get_or_insert_with(|| {
                let template = format!(
                    "reading {} {{bar:30}} {{pos}}/{{len}} records  {{per_sec}}  ETA {{eta}}",
                    self.topic
                );
                indicatif::ProgressBar::new(total).with_style(
                    indicatif::ProgressStyle::with_template(&template).expect("a valid template"),
                )
            });
            bar.set_position(done);
        } else if self.last_line.elapsed() >= Duration::from_secs(10) {
            self.last_line = Instant::now();
            eprintln!("reading {}: {done} of {total} records", self.topic);
        }
    }

    fn finish(self, read: u64) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        if !self.terminal && self.started.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "read {}: {read} records in {:.1} s",
                self.topic,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

/// A consumed message as recorded.
pub fn recorded(m: &impl Message, ts: i64) -> Recorded {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|x| (x.key.to_string(), x.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    Recorded {
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: ts,
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
        headers,
    }
}

fn kafka(topic: &str, source: KafkaError) -> SourceError {
    SourceError::Kafka {
        topic: topic.into(),
        source: Box::new(crate::kafka::Error::Client {
            what: "read",
            source,
        }),
    }
}
