//! Single use of approval receipts. The first use of each action's receipt is a record on
//! `topics.receipts_used` (compacted, keyed by action id); every gateway replica reads the topic
//! whole into a [`Ledger`]. The log decides between replicas: a replica that redeems writes its
//! use, reads the topic up to it, and the use is its own only when the first record for the
//! action is the one it wrote.
//!
//! ```text
//! redeem ─► check (signature, expiry, agent, tool, arguments) ─► pending? used? ─► write use
//!        ◄─ 200, or 409 when the first use read back is another's ◄─ read back ◄─┘
//! ```

use crate::config::Settings;
use crate::kafka::record::{record, to_future, Parts};
use crate::kafka::{self, Role};
use futures::future::BoxFuture;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One use of a receipt, as the topic holds it (JSON, key = action id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Use {
    /// The action run.
    pub action_id: String,
    /// The receipt's id.
    pub jti: String,
    /// The agent that ran it.
    pub agent_id: String,
    /// When (ms since the epoch).
    pub used_at_ms: i64,
    /// Which write this is (told apart when two replicas race).
    pub nonce: String,
}

/// Where a use was written: (partition, offset).
pub type Written = (i32, i64);

/// The first use of every action's receipt read so far, the uses being written, and how far
/// each partition has been read.
#[derive(Debug, Default)]
pub struct Ledger {
    first: HashMap<String, Use>,
    pending: HashSet<String>,
    read_to: HashMap<i32, i64>,
}

impl Ledger {
    /// Takes a use read at (`partition`, `offset`): the first per action stays.
    pub fn apply(&mut self, partition: i32, offset: i64, u: Use) {
        self.first.entry(u.action_id.clone()).or_insert(u);
        let next = self.read_to.entry(partition).or_default();
        *next = (*next).max(offset + 1);
    }

    /// The first use of `action_id`'s receipt, if any.
    pub fn used(&self, action_id: &str) -> Option<&Use> {
        self.first.get(action_id)
    }

    /// True once the record at `at` has been read.
    pub fn has_read(&self, at: Written) -> bool {
        self.read_to.get(&at.0).is_some_and(|next| *next > at.1)
    }

    /// Marks `action_id` as being redeemed here; false when it is already used or being
    /// redeemed.
    pub fn begin(&mut self, action_id: &str) -> bool {
        !self.first.contains_key(action_id) && self.pending.insert(action_id.to_string())
    }

    /// Ends a redemption begun with [`Ledger::begin`].
    pub fn end(&mut self, action_id: &str) {
        self.pending.remove(action_id);
    }

    /// Actions whose receipt was used.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// True when no receipt was used.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }
}

/// A use that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("the use was not recorded on {topic}: {reason}")]
pub struct NotWritten {
    /// The topic.
    pub topic: String,
    /// Why.
    pub reason: String,
}

/// Writes uses; each future resolves with where the use landed, once acknowledged.
pub trait WriteUse: Send + Sync {
    /// Writes `u`.
    fn write(&self, u: &Use) -> BoxFuture<'static, Result<Written, NotWritten>>;
}

/// Writes uses to `topics.receipts_used`.
pub struct KafkaUses {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl KafkaUses {
    /// A producer from the `[kafka]` settings.
    pub fn new(settings: &Settings) -> Result<KafkaUses, kafka::Error> {
        Ok(KafkaUses {
            producer: kafka::create(&settings.kafka, Role::Producer, "gateway receipts producer")?,
            topic: settings.topics.receipts_used.clone(),
            timeout: settings.gateway.submit_timeout,
        })
    }
}

impl WriteUse for KafkaUses {
    fn write(&self, u: &Use) -> BoxFuture<'static, Result<Written, NotWritten>> {
        let value = serde_json::to_vec(u).expect("a use serializes");
        let (producer, topic, timeout) = (self.producer.clone(), self.topic.clone(), self.timeout);
        let key = u.action_id.clone();
        Box::pin(async move {
            let parts = Parts {
                key: Some(key.as_bytes()),
                payload: Some(&value),
                ..Parts::default()
            };
            let send = producer.send(to_future(record(&topic, parts, ())), timeout);
            let not = |reason: String| NotWritten {
                topic: topic.clone(),
                reason,
            };
            match tokio::time::timeout(timeout, send).await {
                Ok(Ok(d)) => Ok((d.partition, d.offset)),
                Ok(Err((e, _))) => Err(not(e.to_string())),
                Err(_) => Err(not("no acknowledgement in time".into())),
            }
        })
    }
}

/// Applies each use straight to a ledger (route tests: as if read back at once).
pub struct MemoryUses {
    /// The ledger the reader would feed.
    pub ledger: Arc<Mutex<Ledger>>,
    offset: Mutex<i64>,
}

impl MemoryUses {
    /// Writes into `ledger`.
    pub fn new(ledger: Arc<Mutex<Ledger>>) -> MemoryUses {
        MemoryUses {
            ledger,
            offset: Mutex::new(0),
        }
    }
}

impl WriteUse for MemoryUses {
    fn write(&self, u: &Use) -> BoxFuture<'static, Result<Written, NotWritten>> {
        let mut offset = self.offset.lock().expect("not poisoned");
        let at = (0, *offset);
        *offset += 1;
        self.ledger
            .lock()
            .expect("not poisoned")
            .apply(at.0, at.1, u.clone());
        Box::pin(std::future::ready(Ok(at)))
    }
}

/// Where redemptions are kept: the ledger read from the topic, the writer of uses, and
/// whether the ledger has caught up.
pub struct Redemptions {
    /// First uses read so far.
    pub ledger: Arc<Mutex<Ledger>>,
    /// Writes a use.
    pub uses: Arc<dyn WriteUse>,
    /// Set once the ledger has read the topic to the end it saw at start.
    pub ready: Arc<AtomicBool>,
}

impl Redemptions {
    /// A ledger in memory, each use applied at once (route tests; one process).
    pub fn in_memory() -> Redemptions {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        Redemptions {
            uses: Arc::new(MemoryUses::new(ledger.clone())),
            ledger,
            ready: Arc::new(AtomicBool::new(true)),
        }
    }
}

/// Reads `topics.receipts_used` from the beginning into `ledger` on its own thread, until `stop`;
/// sets `ready` once caught up with the end it saw at start.
pub fn follow(
    settings: &Settings,
    ledger: Arc<Mutex<Ledger>>,
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, kafka::Error> {
    let topic = settings.topics.receipts_used.clone();
    let partitions = kafka::admin::partitions(settings, &topic)?;
    let consumer: BaseConsumer = kafka::create(
        &settings.kafka,
        Role::Reader("gateway"),
        "gateway receipts reader",
    )?;
    let timeout = settings.pipeline.connect_timeout;
    let at = kafka::changelog::assign_since(&consumer, &topic, &partitions, None, timeout)
        .map_err(kafka::Error::client("gateway receipts assignment"))?;
    let mut position = kafka::changelog::Position::from_assignment(at);
    let thread = std::thread::Builder::new()
        .name("gateway-receipts".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                if !ready.load(Ordering::Acquire) && position.caught_up() {
                    ready.store(true, Ordering::Release);
                }
                let mut read = Vec::new();
                position.poll_batch(&consumer, 1_000, "gateway: receipts used", |m| {
                    match m.payload().map(serde_json::from_slice::<Use>) {
                        Some(Ok(u)) => read.push((m.partition(), m.offset(), u)),
                        _ => tracing::warn!(
                            partition = m.partition(),
                            offset = m.offset(),
                            "gateway: a receipt use that does not read; skipped"
                        ),
                    }
                });
                let mut ledger = ledger.lock().expect("not poisoned");
                for (p, o, u) in read {
                    ledger.apply(p, o, u);
                }
            }
        })
        .expect("a thread can be spawned");
    Ok(thread)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(action: &str, nonce: &str) -> Use {
        Use {
            action_id: action.into(),
            jti: "j".into(),
            agent_id: "agent-1".into(),
            used_at_ms: 1,
            nonce: nonce.into(),
        }
    }

    #[test]
    fn the_first_use_read_wins_and_a_pending_redemption_blocks_another() {
        let mut l = Ledger::default();
        assert!(l.begin("a-1"));
        assert!(!l.begin("a-1"), "being redeemed");
        l.apply(0, 7, u("a-1", "theirs"));
        l.apply(0, 8, u("a-1", "mine"));
        assert_eq!(l.used("a-1").unwrap().nonce, "theirs");
        assert!(l.has_read((0, 8)) && !l.has_read((0, 9)) && !l.has_read((1, 0)));
        l.end("a-1");
        assert!(!l.begin("a-1"), "used");
        assert!(l.begin("a-2"));
        assert_eq!(l.len(), 1);
    }
}
