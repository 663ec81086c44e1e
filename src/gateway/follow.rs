//! Follows `agent.verdicts` (every partition, by assignment, no group: each replica reads it
//! all) from `look_back` ago, on its own thread, into the window. The gateway is ready once it
//! has read up to the end it saw at start-up: a restarted or second replica answers the same.

use super::window::Window;
use super::GatewayMetrics;
use crate::config::Settings;
use crate::event::{Codec, SchemaKind, Verdict};
use crate::kafka::{self, Role};
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Records decoded before the window's lock is taken, at most.
const BATCH: usize = 1_000;

/// What the follower feeds.
pub struct Feed {
    /// The window.
    pub window: Arc<Mutex<Window>>,
    /// Set once caught up.
    pub ready: Arc<AtomicBool>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Its metrics.
    pub metrics: GatewayMetrics,
}

/// Starts following; the thread ends when `feed.stop` is set.
pub fn start(settings: &Settings, feed: Feed) -> Result<std::thread::JoinHandle<()>, kafka::Error> {
    let topic = settings.topics.verdicts.clone();
    let partitions = kafka::admin::partitions(settings, &topic)?;
    let consumer: BaseConsumer = kafka::create(
        &settings.kafka,
        Role::Reader("gateway"),
        "gateway verdicts reader",
    )?;
    let since = crate::clock::SystemClock::now()
        .saturating_sub(i64::try_from(settings.gateway.look_back.as_millis()).unwrap_or(i64::MAX));
    let timeout = settings.pipeline.connect_timeout;
    let at =
        kafka::changelog::assign_since(&consumer, &topic, &partitions, Some(since.max(0)), timeout)
            .map_err(kafka::Error::client("gateway assignment"))?;
    let position = kafka::changelog::Position::from_assignment(at);
    tracing::info!(%topic, partitions = partitions.len(), "gateway: reading the recent verdicts");
    let handle = std::thread::Builder::new()
        .name("gateway-verdicts".into())
        .spawn(move || follow(consumer, position, feed))
        .expect("a thread can be spawned");
    Ok(handle)
}

fn follow(consumer: BaseConsumer, mut position: kafka::changelog::Position, feed: Feed) {
    let codec = Codec::new(Default::default()).expect("the shipped schemas parse");
    let mut batch: Vec<Verdict> = Vec::with_capacity(BATCH);
    while !feed.stop.load(Ordering::Acquire) {
        if !feed.ready.load(Ordering::Acquire) && position.caught_up() {
            let n = feed.window.lock().expect("not poisoned").len();
            tracing::info!(actions = n, "gateway: caught up with the verdicts");
            feed.ready.store(true, Ordering::Release);
        }
        position.poll_batch(&consumer, BATCH, "gateway: verdicts", |m| {
            let version = kafka::record::schema_version(m);
            let payload = m.payload().unwrap_or_default();
            match codec.decode_header_version(SchemaKind::Verdict, version, payload) {
                Ok(v) => batch.push(v),
                Err(e) => {
                    feed.metrics.unreadable.inc();
                    tracing::warn!(partition = m.partition(), offset = m.offset(), error = %e,
                        "gateway: verdict unreadable; skipped");
                }
            }
        });
        if batch.is_empty() {
            continue;
        }
        let mut window = feed.window.lock().expect("not poisoned");
        for v in batch.drain(..) {
            let applied = window.apply(v);
            if let Some(d) = applied.to_final {
                feed.metrics.to_final.observe(d.as_secs_f64());
            }
        }
        feed.metrics.window.set(window.len() as i64);
    }
}
