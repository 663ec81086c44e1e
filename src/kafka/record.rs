//! An [`Output`] as a producer record, and the one policy for a full producer queue.

use crate::output::Output;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use std::time::Duration;

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
    /// The queue was full and the caller stopped waiting (a delivery failed meanwhile).
    #[error("the producer's queue was full and waiting for room was given up")]
    GaveUp,
}

/// Queues `record` with `send` (the producer's `send(..).err()`), waiting while the producer's
/// queue is full — the one policy for a full queue: back-pressure, for as long as the brokers
/// take. `wait` lets the producer make room (a poll for a `BaseProducer`, a short sleep for a
/// `ThreadedProducer`) and returns false to give up.
pub fn queue<R>(
    mut record: R,
    mut send: impl FnMut(R) -> Option<(KafkaError, R)>,
    mut wait: impl FnMut() -> bool,
) -> Result<(), QueueError> {
    loop {
        match send(record) {
            None => return Ok(()),
            Some((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                if !wait() {
                    return Err(QueueError::GaveUp);
                }
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
            true
        },
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
            || true,
        );
        assert!(r.is_ok());
        assert_eq!(tries, 3);
        let mut waits = 0;
        let r = queue(
            1,
            |r| Some((full(), r)),
            || {
                waits += 1;
                waits < 50
            },
        );
        assert!(matches!(r, Err(QueueError::GaveUp)));
        assert_eq!(
            waits, 50,
            "waited until told to give up, with no deadline of its own"
        );
        let r = queue(
            1,
            |r| {
                Some((
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                    r,
                ))
            },
            || true,
        );
        assert!(matches!(r, Err(QueueError::Refused(_))));
    }
}
