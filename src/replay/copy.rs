//! `handoff replay`: copies a topic, or a time range of it, into the drill namespace at a
//! speed factor, keeping keys, partitions (so per-partition order) and relative timing, and
//! marking every record as a drill. Resumable from a checkpoint file.

use crate::config::Settings;
use crate::event::wire::{DRILL, DRILL_HEADER};
use crate::kafka::range::{self as source, Range, Recorded, SourceError};
use crate::kafka::record::{record, send_polling, Parts, QueueError};
use rdkafka::producer::{BaseProducer, Producer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Header carrying a replayed record's original timestamp (ms).
pub const ORIGINAL_TS_HEADER: &str = "handoff.replay.original_ts";

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Recorded gaps divided by this factor (1 = as recorded, 10 = ten times faster).
    Factor(f64),
    /// As fast as possible.
    Max,
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Speed, String> {
        if s == "max" {
            return Ok(Speed::Max);
        }
        let f: f64 = s
            .trim_end_matches('x')
            .parse()
            .map_err(|_| format!("{s:?}: a factor such as 1, 10 or 0.5, or `max`"))?;
        if !(f.is_finite() && f > 0.0) {
            return Err(format!("{s:?}: the factor must be above 0"));
        }
        Ok(Speed::Factor(f))
    }
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Source topic.
    pub from: String,
    /// Target topic (a `drill.` one).
    pub to: String,
    /// Time range of the source.
    pub range: Range,
    /// Speed.
    pub speed: Speed,
    /// Progress is saved here, and a run resumes from it.
    pub checkpoint: Option<PathBuf>,
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading the source.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The target is not a drill topic.
    #[error("--to {0:?} is not a drill topic: it must start with `drill.` so that a drill never reaches a real person")]
    NotDrill(String),
    /// The target exists with another partition count.
    #[error("{to:?} has {target} partition(s) but {from:?} has {source_partitions}: per-partition order needs the same count")]
    Partitions {
        /// Source topic.
        from: String,
        /// Its partitions.
        source_partitions: usize,
        /// Target topic.
        to: String,
        /// Its partitions.
        target: usize,
    },
    /// Producing or flushing.
    #[error("producing to {0:?}: {1}")]
    Kafka(String, rdkafka::error::KafkaError),
    /// The checkpoint file.
    #[error("checkpoint {0}: {1}")]
    Checkpoint(PathBuf, String),
}

/// Saved progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Checkpoint {
    from: String,
    to: String,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    /// Per source partition: the next offset to copy.
    next: BTreeMap<i32, i64>,
    done: bool,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    /// Records copied by this run.
    pub copied: u64,
    /// True when it continued an earlier run.
    pub resumed: bool,
    /// Wall time.
    pub elapsed: Duration,
    /// Span of the copied records' original timestamps, ms.
    pub recorded_span_ms: i64,
}

fn load_checkpoint(path: &Path, opts: &ReplayOptions) -> Result<Option<Checkpoint>, ReplayError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReplayError::Checkpoint(path.into(), e.to_string())),
    };
    let c: Checkpoint = serde_json::from_str(&text)
        .map_err(|e| ReplayError::Checkpoint(path.into(), e.to_string()))?;
    let same = c.from == opts.from
        && c.to == opts.to
        && c.from_ms == opts.range.from_ms
        && c.to_ms == opts.range.to_ms;
    if !same {
        return Err(ReplayError::Checkpoint(
            path.into(),
            format!(
                "it belongs to another replay ({} → {}, {:?}..{:?}); remove it or give another --checkpoint",
                c.from, c.to, c.from_ms, c.to_ms
            ),
        ));
    }
    Ok(Some(c))
}

fn save_checkpoint(path: &Path, c: &Checkpoint) -> Result<(), ReplayError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(c).expect("serializes"))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| ReplayError::Checkpoint(path.into(), e.to_string()))
}

/// Merges per-partition queues by timestamp, keeping each partition's order.
fn merge(records: Vec<Recorded>) -> Vec<Recorded> {
    let mut queues: BTreeMap<i32, VecDeque<Recorded>> = BTreeMap::new();
    for r in records {
        queues.entry(r.partition).or_default().push_back(r);
    }
    let mut out = Vec::new();
    loop {
        let next = queues
            .iter()
            .filter_map(|(p, q)| q.front().map(|r| (r.timestamp_ms, *p)))
            .min();
        let Some((_, p)) = next else { break };
        out.push(
            queues
                .get_mut(&p)
                .expect("present")
                .pop_front()
                .expect("front"),
        );
    }
    out
}

/// Copies the records; `progress(copied, total)` is called as it goes.
pub fn replay(
    settings: &Settings,
    opts: &ReplayOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, ReplayError> {
    if !opts.to.starts_with(crate::config::DRILL_PREFIX) {
        return Err(ReplayError::NotDrill(opts.to.clone()));
    }
    let started = Instant::now();
    let mut cp = match &opts.checkpoint {
        Some(p) => load_checkpoint(p, opts)?,
        None => None,
    };
    let resumed = cp.is_some();
    if cp.as_ref().is_some_and(|c| c.done) {
        return Ok(ReplayReport {
            copied: 0,
            resumed,
            elapsed: started.elapsed(),
            recorded_span_ms: 0,
        });
    }
    let resume: HashMap<i32, i64> = cp
        .as_ref()
        .map(|c| c.next.iter().map(|(p, o)| (*p, *o)).collect())
        .unwrap_or_default();
    let source_parts = source::partitions(settings, &opts.from)?;
    let records = merge(source::read(settings, &opts.from, opts.range, &resume)?);
    ensure_target(settings, opts, source_parts.len())?;
    let producer: BaseProducer =
        crate::kafka::client_config(&settings.kafka, crate::kafka::Role::Producer)
            .create()
            .map_err(|e| ReplayError::Kafka(opts.to.clone(), e))?;
    let cp = cp.get_or_insert_with(|| Checkpoint {
        from: opts.from.clone(),
        to: opts.to.clone(),
        from_ms: opts.range.from_ms,
        to_ms: opts.range.to_ms,
        ..Default::default()
    });
    let t0 = records.first().map_or(0, |r| r.timestamp_ms);
    let span = records.last().map_or(0, |r| r.timestamp_ms) - t0;
    let copied = copy(&producer, opts, &records, cp, &mut progress)?;
    Ok(ReplayReport {
        copied,
        resumed,
        elapsed: started.elapsed(),
        recorded_span_ms: span,
    })
}

/// The target: created like the source, or checked against it.
fn ensure_target(
    settings: &Settings,
    opts: &ReplayOptions,
    source_partitions: usize,
) -> Result<(), ReplayError> {
    match source::partitions(settings, &opts.to) {
        Ok(p) if p.len() != source_partitions => Err(ReplayError::Partitions {
            from: opts.from.clone(),
            source_partitions,
            to: opts.to.clone(),
            target: p.len(),
        }),
        Ok(_) => Ok(()),
        Err(SourceError::MissingTopic(..)) => {
            let mut s = settings.clone();
            s.kafka.partitions = source_partitions as i32;
            crate::kafka::admin::ensure_topics_blocking(&s, std::slice::from_ref(&opts.to))
                .map_err(|e| ReplayError::Checkpoint(PathBuf::from(&opts.to), e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Produces the merged records to the target at the chosen speed, saving progress about once
/// a second and at the end. Returns how many were copied.
fn copy(
    producer: &BaseProducer,
    opts: &ReplayOptions,
    records: &[Recorded],
    cp: &mut Checkpoint,
    progress: &mut impl FnMut(u64, u64),
) -> Result<u64, ReplayError> {
    let kafka_err = |e| ReplayError::Kafka(opts.to.clone(), e);
    let total = records.len() as u64;
    let t0 = records.first().map_or(0, |r| r.timestamp_ms);
    let begin = Instant::now();
    let mut last_save = Instant::now();
    let mut copied = 0u64;
    let mut pending: BTreeMap<i32, i64> = BTreeMap::new();
    for r in records {
        if let Speed::Factor(f) = opts.speed {
            let due = Duration::from_secs_f64(((r.timestamp_ms - t0).max(0) as f64 / 1000.0) / f);
            if let Some(wait) = due.checked_sub(begin.elapsed()) {
                producer.poll(Duration::ZERO);
                std::thread::sleep(wait);
            }
        }
        let headers = drill_headers(r);
        let hs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, &v[..])).collect();
        let parts = Parts {
            key: r.key.as_deref(),
            payload: r.payload.as_deref(),
            headers: &hs,
            partition: Some(r.partition),
        };
        send_polling(producer, record(&opts.to, parts, ())).map_err(|e| match e {
            QueueError::Refused(e) => kafka_err(e),
            QueueError::GaveUp => unreachable!("a polling send waits for room"),
        })?;
        pending.insert(r.partition, r.offset + 1);
        copied += 1;
        if last_save.elapsed() > Duration::from_secs(1) {
            // Saved progress only covers delivered records.
            producer.flush(Duration::from_secs(60)).map_err(kafka_err)?;
            cp.next.extend(pending.iter().map(|(p, o)| (*p, *o)));
            if let Some(path) = &opts.checkpoint {
                save_checkpoint(path, cp)?;
            }
            last_save = Instant::now();
            progress(copied, total);
        }
    }
    producer.flush(Duration::from_secs(60)).map_err(kafka_err)?;
    cp.next.extend(pending);
    cp.done = true;
    if let Some(path) = &opts.checkpoint {
        save_checkpoint(path, cp)?;
    }
    progress(copied, total);
    Ok(copied)
}

/// A recorded record's headers, marked as a drill and carrying its original timestamp.
fn drill_headers(r: &Recorded) -> Vec<(&str, Vec<u8>)> {
    let mut headers: Vec<(&str, Vec<u8>)> = r
        .headers
        .iter()
        .filter(|(k, _)| k != DRILL_HEADER && k != ORIGINAL_TS_HEADER)
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    headers.push((DRILL.0, DRILL.1.to_vec()));
    headers.push((ORIGINAL_TS_HEADER, r.timestamp_ms.to_string().into_bytes()));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(partition: i32, offset: i64, ts: i64) -> Recorded {
        Recorded {
            partition,
            offset,
            timestamp_ms: ts,
            key: None,
            payload: None,
            headers: vec![],
        }
    }

    #[test]
    fn merging_orders_by_time_and_keeps_each_partitions_order() {
        // Partition 1's clock goes backwards once: its order still wins.
        let merged = merge(vec![
            rec(0, 0, 10),
            rec(0, 1, 30),
            rec(1, 0, 20),
            rec(1, 1, 5),
            rec(1, 2, 40),
        ]);
        let order: Vec<(i32, i64)> = merged.iter().map(|r| (r.partition, r.offset)).collect();
        assert_eq!(order, vec![(0, 0), (1, 0), (1, 1), (0, 1), (1, 2)]);
    }

    #[test]
    fn speeds_parse_and_bad_ones_say_why() {
        assert_eq!("10".parse::<Speed>(), Ok(Speed::Factor(10.0)));
        assert_eq!("10x".parse::<Speed>(), Ok(Speed::Factor(10.0)));
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert!("0".parse::<Speed>().unwrap_err().contains("above 0"));
        assert!("fast".parse::<Speed>().unwrap_err().contains("max"));
    }
}
