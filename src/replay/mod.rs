//! Drills and rule changes on recorded traffic: reading a topic range back (`source`), and
//! `diff` (shadow evaluation of a rule change).

pub mod chart;
pub mod copy;
pub mod diff;
pub mod gameday;
pub mod source;

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Sends a record, waiting while the producer's queue is full.
pub fn send_waiting(
    p: &BaseProducer,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), KafkaError> {
    loop {
        p.poll(Duration::ZERO);
        match p.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                p.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}
