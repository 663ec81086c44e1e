//! An [`Output`] as a producer record, and the one policy for a full producer queue.

use crate::output::Output;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use std::time::{Duration, Instant};

/// The record for `o` on `topic`, carrying `opaque` to the delivery callback.
pub fn to_record<'a, D: rdkafka::util::IntoOpaque>(
    topic: &'a str,
    o: &'a Output,
    opaque: D,
) -> BaseRecord<'a, [u8], [u8], D> {
    let mut record = BaseRecord::with_opaque_to(topic, opaque);
    // Most outputs carry no header: librdkafka then allocates no header list.
    if !o.headers.is_empty() {
        let mut hs = OwnedHeaders::new_with_capacity(o.headers.len());
        for (k, v) in &o.headers {
            hs = hs.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        record = record.headers(hs);
    }
    if !o.null {
        record = record.payload(&o.payload[..]);
    }
    if let Some(k) = &o.key {
        record = record.key(&k[..]);
    }
    if let Some(p) = o.partition {
        record = record.partition(p);
    }
    record
}

/// Why a record could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The producer refused the record (too large, unknown partition, …).
    #[error("{0}")]
    Refused(KafkaError),
    /// The queue stayed full until the deadline (the brokers are not taking records).
    #[error("the producer's queue stayed full for {0:?}")]
    Full(Duration),
}

/// Queues `record` with `send` (the producer's `send(..).err()`), waiting while the producer's queue is full: `wait` lets the
/// producer make room (a poll for a `BaseProducer`, a short sleep for a `ThreadedProducer`),
/// until `deadline` when one is given.
pub fn queue<R>(
    mut record: R,
    mut send: impl FnMut(R) -> Option<(KafkaError, R)>,
    mut wait: impl FnMut(),
    deadline: Option<Duration>,
) -> Result<(), QueueError> {
    let started = Instant::now();
    loop {
        match send(record) {
            None => return Ok(()),
            Some((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                if let Some(d) = deadline.filter(|d| started.elapsed() > *d) {
                    return Err(QueueError::Full(d));
                }
                record = back;
                wait();
            }
            Some((e, _)) => return Err(QueueError::Refused(e)),
        }
    }
}

/// Sends a record with a `BaseProducer`, polling it while its queue is full.
pub fn send_polling<C: rdkafka::producer::ProducerContext>(
    p: &rdkafka::producer::BaseProducer<C>,
    record: BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>,
) -> Result<(), QueueError> {
    p.poll(Duration::ZERO);
    queue(
        record,
        |r| p.send(r).err(),
        || {
            p.poll(Duration::from_millis(5));
        },
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_is_waited_for_and_other_errors_are_returned() {
        let full = || KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull);
        let mut tries = 0;
        let r = queue(
            1,
            |r| {
                tries += 1;
                (tries < 3).then(|| (full(), r))
            },
            || {},
            None,
        );
        assert!(r.is_ok());
        assert_eq!(tries, 3);
        let r = queue(
            1,
            |r| Some((full(), r)),
            || std::thread::sleep(Duration::from_millis(2)),
            Some(Duration::from_millis(10)),
        );
        assert!(matches!(r, Err(QueueError::Full(_))));
        let r = queue(
            1,
            |r| {
                Some((
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                    r,
                ))
            },
            || {},
            None,
        );
        assert!(matches!(r, Err(QueueError::Refused(_))));
    }
}
