//! Reading a recorded topic, or a time range of it, back from Kafka: for `diff` on a topic and
//! for `replay`.

use crate::config::Settings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

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

/// A time range; `None` ends are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// First timestamp included, ms.
    pub from_ms: Option<i64>,
    /// First timestamp excluded, ms.
    pub to_ms: Option<i64>,
}

impl Range {
    fn describe(&self) -> String {
        match (self.from_ms, self.to_ms) {
            (None, None) => "at all".into(),
            (Some(a), None) => format!("from {a} ms on"),
            (None, Some(b)) => format!("before {b} ms"),
            (Some(a), Some(b)) => format!("between {a} and {b} ms"),
        }
    }

    fn contains(&self, ts: i64) -> bool {
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
/// `resume` offsets where given (a resumed replay). Ends at the high watermarks seen at the
/// start, then a second without news (some brokers report the watermark a batch behind).
pub fn read(
    settings: &Settings,
    topic: &str,
    range: Range,
    resume: &HashMap<i32, i64>,
) -> Result<Vec<Recorded>, SourceError> {
    let parts = partitions(settings, topic)?;
    let c = reader(settings).map_err(|e| SourceError::Kafka {
        topic: topic.into(),
        source: Box::new(e),
    })?;
    let timeout = settings.pipeline.connect_timeout;
    let high = assign_range(&c, topic, &parts, range, resume, timeout)?;
    let mut out = read_to_high(&c, topic, &parts, range, &high)?;
    out.sort_by_key(|r| (r.partition, r.offset));
    if out.is_empty() && resume.is_empty() {
        return Err(SourceError::Empty {
            topic: topic.into(),
            range: range.describe(),
        });
    }
    Ok(out)
}

/// Assigns every partition from the range's start (or the resumed offset); returns each
/// partition's high watermark.
fn assign_range(
    c: &BaseConsumer,
    topic: &str,
    parts: &[i32],
    range: Range,
    resume: &HashMap<i32, i64>,
    timeout: Duration,
) -> Result<HashMap<i32, i64>, SourceError> {
    let mut starts = TopicPartitionList::new();
    for &p in parts {
        let _ = starts.add_partition_offset(
            topic,
            p,
            match range.from_ms {
                Some(ts) => Offset::Offset(ts),
                None => Offset::Beginning,
            },
        );
    }
    if range.from_ms.is_some() {
        starts = c
            .offsets_for_times(starts, timeout)
            .map_err(|source| kafka(topic, source))?;
    }
    let mut high = HashMap::new();
    let mut assign = TopicPartitionList::new();
    for el in starts.elements() {
        let p = el.partition();
        let (_, h) = c
            .fetch_watermarks(topic, p, timeout)
            .map_err(|source| kafka(topic, source))?;
        high.insert(p, h);
        let start = match resume.get(&p) {
            Some(&o) => Offset::Offset(o),
            None => match el.offset() {
                Offset::End => Offset::Offset(h),
                o => o,
            },
        };
        let _ = assign.add_partition_offset(topic, p, start);
    }
    c.assign(&assign).map_err(|source| kafka(topic, source))?;
    Ok(high)
}

/// Polls until every partition reached its high watermark (or the range's end) and a second
/// passed quietly; keeps the records within the range.
fn read_to_high(
    c: &BaseConsumer,
    topic: &str,
    parts: &[i32],
    range: Range,
    high: &HashMap<i32, i64>,
) -> Result<Vec<Recorded>, SourceError> {
    let mut out = Vec::new();
    let mut next: HashMap<i32, i64> = HashMap::new();
    let mut done: HashMap<i32, bool> = HashMap::new();
    let mut last = Instant::now();
    loop {
        let reached = parts.iter().all(|p| {
            done.get(p).copied().unwrap_or(false) || next.get(p).copied().unwrap_or(0) >= high[p]
        });
        if reached && last.elapsed() > Duration::from_secs(1) {
            break;
        }
        match c.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                last = Instant::now();
                let ts = m.timestamp().to_millis().unwrap_or(0);
                next.insert(m.partition(), m.offset() + 1);
                if range.to_ms.is_some_and(|b| ts >= b) {
                    done.insert(m.partition(), true);
                    let _ = c.pause(&{
                        let mut t = TopicPartitionList::new();
                        let _ = t.add_partition(topic, m.partition());
                        t
                    });
                    continue;
                }
                if !range.contains(ts) {
                    continue;
                }
                out.push(recorded(&m, ts));
            }
            Some(Err(source)) => return Err(kafka(topic, source)),
            None => {}
        }
    }
    Ok(out)
}

/// A consumed message as recorded.
fn recorded(m: &impl Message, ts: i64) -> Recorded {
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

fn kafka(topic: &str, source: rdkafka::error::KafkaError) -> SourceError {
    SourceError::Kafka {
        topic: topic.into(),
        source: Box::new(crate::kafka::Error::Client {
            what: "read",
            source,
        }),
    }
}
