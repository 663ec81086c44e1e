//! Every record handoff writes, built one way ([`record`]; an [`Output`] through
//! [`to_record`]), and the one policy for a full producer queue ([`queue`], and its forms for a
//! `BaseProducer` and for async code).

use crate::output::Output;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, FutureRecord};
use std::time::Duration;

/// What a record holds besides its topic: key, value (`None`: null), headers and partition
/// (`None`: by key).
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts<'a> {
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value; `None` sends a null (a tombstone on a compacted topic).
    pub payload: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// Partition; `None` lets the partitioner choose by key.
    pub partition: Option<i32>,
}

/// The value of a received record's header `key` (the first one by that name), if any.
pub fn header<'a, M: Message>(m: &'a M, key: &str) -> Option<&'a [u8]> {
    m.headers()?.iter().find(|h| h.key == key)?.value
}

/// The schema version a received record names in its header (see
/// [`crate::event::wire::parse_schema_version`]: none is version 1).
pub fn schema_version<M: Message>(m: &M) -> Result<u32, String> {
    crate::event::wire::parse_schema_version(header(m, crate::event::wire::SCHEMA_VERSION_HEADER))
}

/// An agent action as the value of a record of the input topic, in the input format of
/// `settings` (a Confluent-framed datum of the first configured schema id, or a plain datum of
/// the current version: send it with [`crate::event::wire::version_header`]).
pub fn action_value(
    settings: &crate::config::Settings,
    codec: &crate::event::Codec,
    action: &crate::event::AgentAction,
) -> Result<Vec<u8>, crate::event::CodecError> {
    use crate::config::InputFormat;
    use crate::event::SchemaKind;
    match (settings.input.format, settings.input.schema_ids.first()) {
        (InputFormat::Confluent, Some(id)) => {
            codec.encode_framed(SchemaKind::AgentAction, action, *id)
        }
        _ => codec.encode(SchemaKind::AgentAction, action),
    }
}

/// The record of `parts` on `topic`, carrying `opaque` to the delivery callback.
pub fn record<'a, D: rdkafka::util::IntoOpaque>(
    topic: &'a str,
    parts: Parts<'a>,
    opaque: D,
) -> BaseRecord<'a, [u8], [u8], D> {
    let mut record = BaseRecord::with_opaque_to(topic, opaque);
    // Most records carry no header: librdkafka then allocates no header list.
    if !parts.headers.is_empty() {
        record = record.headers(headers(parts.headers.iter().copied()));
    }
    record.payload = parts.payload;
    record.key = parts.key;
    record.partition = parts.partition;
    record
}

/// The record for `o` on `topic`, carrying `opaque` to the delivery callback.
pub fn to_record<'a, D: rdkafka::util::IntoOpaque>(
    topic: &'a str,
    o: &'a Output,
    opaque: D,
) -> BaseRecord<'a, [u8], [u8], D> {
    let mut record = record(
        topic,
        Parts {
            key: o.key.as_deref(),
            payload: (!o.null).then_some(&o.payload[..]),
            headers: &[],
            partition: o.partition,
        },
        opaque,
    );
    if !o.headers.is_empty() {
        let hs = o.headers.iter().map(|(k, v)| (k.as_str(), &v[..]));
        record = record.headers(headers(hs));
    }
    record
}

/// The same record for a `FutureProducer` (which waits for the delivery itself).
pub fn to_future(r: BaseRecord<'_, [u8], [u8], ()>) -> FutureRecord<'_, [u8], [u8]> {
    FutureRecord {
        topic: r.topic,
        partition: r.partition,
        payload: r.payload,
        key: r.key,
        timestamp: r.timestamp,
        headers: r.headers,
    }
}

fn headers<'a>(hs: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>) -> OwnedHeaders {
    let mut out = OwnedHeaders::new_with_capacity(hs.len());
    for (key, value) in hs {
        out = out.insert(Header {
            key,
            value: Some(value),
        });
    }
    out
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
        record = match full(send(record))? {
            None => return Ok(()),
            Some(back) if wait() => back,
            Some(_) => return Err(QueueError::GaveUp),
        };
    }
}

/// [`queue`] in async code: while the queue is full, the task sleeps (2 ms) instead of the
/// thread.
pub async fn queue_async<R>(
    mut record: R,
    mut send: impl FnMut(R) -> Option<(KafkaError, R)>,
) -> Result<(), QueueError> {
    loop {
        record = match full(send(record))? {
            None => return Ok(()),
            Some(back) => back,
        };
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// What a send came to: queued (`None`), refused for good, or the record back because the
/// queue is full (`Some`: wait, then send it again).
fn full<R>(sent: Option<(KafkaError, R)>) -> Result<Option<R>, QueueError> {
    match sent {
        None => Ok(None),
        Some((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => Ok(Some(back)),
        Some((e, _)) => Err(QueueError::Refused(e)),
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
