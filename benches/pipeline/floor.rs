//! The floor: the least a Kafka copy can do. librdkafka's consumer polled on one thread, each
//! record's outputs handed straight from the consumer's buffer to a `ThreadedProducer`, an
//! input complete when its last output is delivered; offsets stored every
//! `offset_store_interval` like handoff's. The same librdkafka settings as handoff (both clients
//! from `kafka::client_config`), the same number and size of output records per input; no
//! framework, no decoding, no copy out of the consumer. The outputs follow handoff's lanes:
//! per output topic, the records per input and their size, pinned to the input's partition
//! where handoff pins them.

use handoff::config::Settings;
use handoff::kafka::{self, Role};
use handoff::pipeline::stats::Stats;
use handoff::pipeline::steps::Step;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One input's outputs still in flight, its Kafka timestamp, and when its copies were sent.
struct InFlight {
    left: AtomicU32,
    ts_ms: i64,
    sent: Instant,
}

struct Ctx {
    stats: Arc<Stats>,
    failed: Arc<AtomicU64>,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Arc<InFlight>;
    fn delivery(&self, r: &DeliveryResult<'_>, f: Arc<InFlight>) {
        if r.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if f.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            let acked = f.sent.elapsed().as_micros() as u64;
            self.stats.steps.record(Step::ProduceAck, acked);
            self.stats
                .completed(f.ts_ms, handoff::clock::SystemClock::now());
        }
    }
}

/// A running floor copy.
pub struct Floor {
    /// Its counters (consumed, completed, produced, end-to-end latency), as handoff's.
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Floor {
    /// Starts copying `settings.topics.input` to `outs`, one topic per lane of `mix`.
    pub fn start(settings: &Settings, outs: Vec<String>, mix: Vec<super::Lane>) -> Floor {
        let stats = Arc::new(Stats::new(Vec::new(), &[], "floor"));
        let stop = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer = kafka::client_config(&settings.kafka, Role::Member)
            .create()
            .expect("floor consumer");
        consumer
            .subscribe(&[settings.topics.input.as_str()])
            .expect("subscribe");
        let failed = Arc::new(AtomicU64::new(0));
        let producer: ThreadedProducer<Ctx> = kafka::client_config(&settings.kafka, Role::Producer)
            .create_with_context(Ctx {
                stats: stats.clone(),
                failed: failed.clone(),
            })
            .expect("floor producer");
        let store_every = settings.pipeline.offset_store_interval;
        let input = settings.topics.input.clone();
        let (s, st) = (stats.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("floor".into())
            .spawn(move || {
                let lanes = Lanes { outs, mix };
                copy(&consumer, &producer, &s, &st, &lanes, &input, store_every);
                producer
                    .flush(Duration::from_secs(60))
                    .expect("floor flush");
                assert_eq!(failed.load(Ordering::Relaxed), 0, "floor deliveries failed");
            })
            .expect("floor thread");
        Floor {
            stats,
            stop,
            thread,
        }
    }

    /// Stops and waits until every output is flushed.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("floor thread");
    }
}

/// The output topics and how each is written.
struct Lanes {
    outs: Vec<String>,
    mix: Vec<super::Lane>,
}

fn copy(
    consumer: &BaseConsumer,
    producer: &ThreadedProducer<Ctx>,
    stats: &Stats,
    stop: &AtomicBool,
    lanes: &Lanes,
    input: &str,
    store_every: Duration,
) {
    let mut seen: u64 = 0;
    // The next offset to store per partition (-1: nothing new).
    let mut next: Vec<i64> = Vec::new();
    let mut stored_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let m = match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => m,
            // As handoff's consumer: a transient error (a topic still being created) is waited out.
            Some(Err(_)) | None => continue,
        };
        stats.consumed();
        let ts_ms = m.timestamp().to_millis().unwrap_or(0);
        if ts_ms > 0 {
            let waited_ms = (handoff::clock::SystemClock::now() - ts_ms).max(0) as u64;
            stats.steps.record(Step::ConsumerWait, waited_ms * 1000);
        }
        // No allocation per record: the copies per lane are computed twice.
        let total: u32 = lanes.mix.iter().map(|l| super::copies(seen, l.share)).sum();
        let track = Arc::new(InFlight {
            left: AtomicU32::new(total),
            ts_ms,
            sent: Instant::now(),
        });
        let payload = m.payload().unwrap_or_default();
        for (lane, out) in lanes.mix.iter().zip(&lanes.outs) {
            let n = super::copies(seen, lane.share);
            let value = &payload[..payload.len().min(lane.bytes)];
            for _ in 0..n {
                let mut rec =
                    BaseRecord::with_opaque_to(out.as_str(), track.clone()).payload(value);
                if let Some(k) = m.key() {
                    rec = rec.key(k);
                }
                if lane.pinned {
                    rec = rec.partition(m.partition());
                }
                kafka::record::queue(
                    rec,
                    |r| producer.send(r).err(),
                    || {
                        std::thread::sleep(Duration::from_millis(1));
                        true
                    },
                )
                .expect("floor send");
            }
            stats.produced.fetch_add(u64::from(n), Ordering::Relaxed);
            stats
                .produced_bytes
                .fetch_add(u64::from(n) * value.len() as u64, Ordering::Relaxed);
        }
        seen += 1;
        if total == 0 {
            stats.completed(track.ts_ms, handoff::clock::SystemClock::now());
        }
        let p = m.partition() as usize;
        if next.len() <= p {
            next.resize(p + 1, -1);
        }
        next[p] = m.offset() + 1;
        if stored_at.elapsed() >= store_every {
            store(consumer, input, &mut next);
            stored_at = Instant::now();
        }
    }
    store(consumer, input, &mut next);
}

/// Stores the consumed positions (the copy does not wait for delivery: a floor, not a
/// guarantee).
fn store(consumer: &BaseConsumer, input: &str, next: &mut [i64]) {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in next.iter_mut().enumerate() {
        if *o >= 0 {
            tpl.add_partition_offset(input, p as i32, Offset::Offset(*o))
                .expect("offset");
            *o = -1;
        }
    }
    if tpl.count() > 0 {
        let _ = consumer.store_offsets(&tpl);
    }
}
