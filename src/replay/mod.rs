//! Drills and rule changes on recorded traffic: `copy` (replay into the drill namespace),
//! `diff` (shadow evaluation of a rule change) and `gameday`.

pub mod chart;
pub mod copy;
pub mod diff;
pub mod gameday;

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
