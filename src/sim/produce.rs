//! The synthetic agent fleet, producing Avro records to a Kafka topic at a given rate.

use super::fleet::Fleet;
use super::SimError;
use crate::config::Settings;
use crate::event::Codec;
use crate::kafka::record::{queue_async, record, Parts, QueueError};
use crate::kafka::{self, Role};
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deliveries counted by the producer's callback.
#[derive(Debug, Default)]
pub struct Counts {
    /// Records delivered.
    pub delivered: AtomicU64,
    /// Records that could not be delivered.
    pub failed: AtomicU64,
}

/// A producer context counting each record once the broker acknowledged it or the producer
/// gave up on it.
pub struct Counting(pub Arc<Counts>);
impl ClientContext for Counting {}
impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.0.delivered.fetch_add(1, Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Relaxed),
        };
    }
}

/// Sends `count` events (or until `stop`) at `rate` events/s (0 = as fast as possible). Returns
/// the number sent once every one is delivered; fails if any delivery failed.
pub async fn produce(
    settings: &Settings,
    topic: &str,
    fleet: &mut Fleet,
    count: Option<u64>,
    rate: u64,
    stop: impl Future<Output = ()>,
    counts: Arc<Counts>,
) -> Result<u64, SimError> {
    kafka::admin::wait_reachable(settings)?;
    let producer: ThreadedProducer<Counting> =
        kafka::client_config(&settings.kafka, Role::Producer)
            .create_with_context(Counting(counts.clone()))
            .map_err(kafka::Error::client("producer"))?;
    let codec = Codec::new(Default::default())?;
    let versioned: Vec<(&str, &[u8])> =
        crate::event::wire::version_header(crate::event::SchemaKind::AgentAction)
            .into_iter()
            .collect();
    let started = Instant::now();
    let mut sent: u64 = 0;
    tokio::pin!(stop);
    'outer: loop {
        if count.is_some_and(|c| sent >= c) {
            break;
        }
        // Pace: how many events should have been sent by now.
        let due = if rate == 0 {
            sent + 1000
        } else {
            (started.elapsed().as_secs_f64() * rate as f64) as u64 + 1
        };
        let due = count.map_or(due, |c| due.min(c));
        if due <= sent {
            tokio::select! {
                _ = &mut stop => break 'outer,
                _ = tokio::time::sleep(Duration::from_millis(5)) => continue,
            }
        }
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        while sent < due {
            let (key, payload) = fleet.next_record_avro(&codec, now);
            let parts = Parts {
                key: Some(&key),
                payload: Some(&payload),
                headers: &versioned,
                ..Parts::default()
            };
            let queued = queue_async(record(topic, parts, ()), |r| producer.send(r).err()).await;
            if let Err(QueueError::Refused(source)) = queued {
                return Err(kafka::Error::Client {
                    what: "produce",
                    source,
                }
                .into());
            }
            sent += 1;
        }
        // Let a stop request through between bursts.
        tokio::select! {
            biased;
            _ = &mut stop => break 'outer,
            _ = tokio::task::yield_now() => {}
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(kafka::Error::client("flush"))?;
    let failed = counts.failed.load(Relaxed);
    if failed > 0 {
        return Err(SimError::Delivery(format!(
            "{failed} of {sent} generated records were not delivered"
        )));
    }
    Ok(sent)
}
