//! Reading partitions of a topic from the beginning to their end: a processor restores its
//! partitions' state from the changelog this way before it decides any of their records.

use super::{Error, Role};
use crate::config::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Changelog records of one partition: (key, value or `None` for a tombstone), oldest first.
pub type Records = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Reads partitions of one topic to their end.
#[derive(Debug, Clone)]
pub struct Reader {
    /// Client settings.
    pub kafka: KafkaSettings,
    /// Topic.
    pub topic: String,
    /// Longest time a read may go without a record while short of its end: past it the read
    /// fails with a timeout ([`is_transient`]) — never returns part of the state.
    pub timeout: Duration,
}

/// True for an error a slow or briefly absent broker causes (a timeout, no broker up): worth
/// trying again, never a reason to decide without the state.
pub fn is_transient(e: &Error) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    let Error::Client { source, .. } = e else {
        return matches!(e, Error::Unreachable { .. });
    };
    matches!(
        source.rdkafka_error_code(),
        Some(
            C::OperationTimedOut
                | C::RequestTimedOut
                | C::AllBrokersDown
                | C::BrokerTransportFailure
                | C::NetworkException
                | C::BrokerNotAvailable
                | C::LeaderNotAvailable
                | C::NotCoordinator
        )
    )
}

/// How long the end of a partition must stay quiet: some brokers (tansu) report the high
/// watermark a batch behind.
const QUIET: Duration = Duration::from_millis(300);

/// Assigns `partitions` of `topic` from their beginning; returns each one's high watermark as
/// seen now (where "caught up" is).
pub fn assign_from_beginning(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> Result<HashMap<i32, i64>, KafkaError> {
    let at = assign_since(consumer, topic, partitions, None, timeout)?;
    Ok(at.into_iter().map(|(p, (_, high))| (p, high)).collect())
}

/// Assigns `partitions` of `topic` from the first record written at or after `since_ms` (from
/// their beginning when `None`); returns each one's (start, high watermark) as seen now: it
/// has been read to its end once the next offset reaches the high watermark.
pub fn assign_since(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    since_ms: Option<i64>,
    timeout: Duration,
) -> Result<HashMap<i32, (i64, i64)>, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    let mut at = HashMap::new();
    let start = since_ms.map_or(Offset::Beginning, Offset::Offset);
    for &p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        at.insert(p, (low, high));
        tpl.add_partition_offset(topic, p, start)?;
    }
    if since_ms.is_some() {
        tpl = consumer.offsets_for_times(tpl, timeout)?;
        for e in tpl.elements() {
            if let Some((start, high)) = at.get_mut(&e.partition()) {
                *start = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => *high,
                };
            }
        }
    }
    consumer.assign(&tpl)?;
    Ok(at)
}

/// Where a follower of a topic stands: the next offset it reads per partition, and each
/// partition's end as seen when it started ([`assign_since`]).
#[derive(Debug, Clone, Default)]
pub struct Position {
    next: HashMap<i32, i64>,
    high: HashMap<i32, i64>,
}

impl Position {
    /// From what [`assign_since`] returned.
    pub fn from_assignment(at: HashMap<i32, (i64, i64)>) -> Position {
        let next = at.iter().map(|(p, (start, _))| (*p, *start)).collect();
        let high = at.into_iter().map(|(p, (_, high))| (p, high)).collect();
        Position { next, high }
    }

    /// True once every partition has been read up to its end as seen at the start.
    pub fn caught_up(&self) -> bool {
        self.high
            .iter()
            .all(|(p, h)| self.next.get(p).copied().unwrap_or(0) >= *h)
    }

    /// Polls up to `max` records — waiting up to 100 ms for the first, not at all for the
    /// rest — hands each to `take` and notes where the partition stands. A read error ends the
    /// batch (logged, naming `what`: the client retries by itself).
    pub fn poll_batch(
        &mut self,
        consumer: &BaseConsumer,
        max: usize,
        what: &str,
        mut take: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
    ) {
        let mut timeout = Duration::from_millis(100);
        for _ in 0..max {
            match consumer.poll(timeout) {
                Some(Ok(m)) => {
                    self.next.insert(m.partition(), m.offset() + 1);
                    take(&m);
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "{what}: read error");
                    return;
                }
                None => return,
            }
            timeout = Duration::ZERO;
        }
    }
}

impl Reader {
    /// Every record of `partitions`, by partition. The end is the high watermark seen at the
    /// start, then no new record for a short while. A read that sees no record for `timeout`
    /// while short of its end fails (a timeout, transient) rather than return part of the state.
    pub fn read(&self, partitions: &[i32]) -> Result<Vec<(i32, Records)>, Error> {
        self.read_all(partitions).map_err(Error::client("restore"))
    }

    fn read_all(&self, partitions: &[i32]) -> Result<Vec<(i32, Records)>, KafkaError> {
        let consumer: BaseConsumer =
            super::client_config(&self.kafka, Role::Reader("restore")).create()?;
        let high = assign_from_beginning(&consumer, &self.topic, partitions, self.timeout)?;
        let mut out: HashMap<i32, Records> = partitions.iter().map(|p| (*p, Vec::new())).collect();
        let mut next: HashMap<i32, i64> = HashMap::new();
        let mut last_record = Instant::now();
        loop {
            let reached = partitions
                .iter()
                .all(|p| next.get(p).copied().unwrap_or(0) >= high[p]);
            if reached && last_record.elapsed() >= QUIET {
                break;
            }
            if !reached && last_record.elapsed() > self.timeout {
                return Err(KafkaError::MessageConsumption(
                    rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                ));
            }
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    last_record = Instant::now();
                    next.insert(m.partition(), m.offset() + 1);
                    if let (Some(list), Some(k)) = (out.get_mut(&m.partition()), m.key()) {
                        list.push((k.to_vec(), m.payload().map(<[u8]>::to_vec)));
                    }
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        let mut v: Vec<(i32, Records)> = out.into_iter().collect();
        v.sort_by_key(|(p, _)| *p);
        Ok(v)
    }
}

#[cfg(test)]
mod position_tests {
    use super::Position;

    #[test]
    fn a_follower_is_caught_up_once_every_partition_reached_its_end_seen_at_the_start() {
        let at = [(0, (5, 10)), (1, (3, 3))].into_iter().collect();
        let mut p = Position::from_assignment(at);
        assert!(!p.caught_up(), "partition 0 starts at 5 of 10");
        p.next.insert(0, 10);
        assert!(
            p.caught_up(),
            "an empty start (3 of 3) is caught up at once"
        );
    }
}
