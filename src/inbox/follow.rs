//! Follows the changelog (`handoff.state`) from its beginning, every partition, on its own
//! thread: each record replaces its session's open escalations on the board. The inbox is
//! ready once it has read up to the end it saw at start-up.

use super::board::Board;
use crate::config::Settings;
use crate::kafka::{self, Role};
use crate::state::SessionRecord;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// Records applied under one write lock, at most.
const BATCH: usize = 2_000;

/// What the follower feeds.
pub struct Feed {
    /// The board.
    pub board: Arc<RwLock<Board>>,
    /// Its generation, for live pages.
    pub changes: watch::Sender<u64>,
    /// Set once caught up.
    pub ready: Arc<AtomicBool>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Unreadable changelog records.
    pub unreadable: prometheus::IntCounter,
}

/// Starts following; the thread ends when `feed.stop` is set or the consumer fails.
pub fn start(settings: &Settings, feed: Feed) -> Result<std::thread::JoinHandle<()>, kafka::Error> {
    let topic = settings.topics.changelog.clone();
    let partitions = kafka::admin::partitions(settings, &topic)?;
    let consumer: BaseConsumer = kafka::create(
        &settings.kafka,
        Role::Reader("inbox"),
        "inbox changelog reader",
    )?;
    let timeout = settings.pipeline.connect_timeout;
    let at = kafka::changelog::assign_since(&consumer, &topic, &partitions, None, timeout)
        .map_err(kafka::Error::client("inbox assignment"))?;
    let position = kafka::changelog::Position::from_assignment(at);
    tracing::info!(%topic, partitions = partitions.len(), "inbox: reading the open escalations");
    let handle = std::thread::Builder::new()
        .name("inbox-changelog".into())
        .spawn(move || follow(consumer, position, feed))
        .expect("a thread can be spawned");
    Ok(handle)
}

fn follow(consumer: BaseConsumer, mut position: kafka::changelog::Position, feed: Feed) {
    let mut batch = Vec::with_capacity(BATCH);
    while !feed.stop.load(Ordering::Acquire) {
        if !feed.ready.load(Ordering::Acquire) && position.caught_up() {
            let n = feed.board.read().expect("not poisoned").len();
            tracing::info!(open = n, "inbox: caught up with the changelog");
            feed.ready.store(true, Ordering::Release);
        }
        position.poll_batch(&consumer, BATCH, "inbox: changelog", |m| {
            let session = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            batch.push((
                session,
                m.payload().filter(|v| !v.is_empty()).map(<[u8]>::to_vec),
            ));
        });
        if batch.is_empty() {
            continue;
        }
        let mut board = feed.board.write().expect("not poisoned");
        for (session, value) in batch.drain(..) {
            let record = match value.map(|v| SessionRecord::decode(&v)).transpose() {
                Ok(r) => r,
                Err(e) => {
                    feed.unreadable.inc();
                    tracing::warn!(session = %session, error = %e, "inbox: changelog record unreadable; skipped");
                    continue;
                }
            };
            board.apply(&session, record);
        }
        let generation = board.generation();
        drop(board);
        feed.changes
            .send_if_modified(|g| std::mem::replace(g, generation) != generation);
    }
}
