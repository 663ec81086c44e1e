//! The ledger: every attempt and every abandonment, one JSON record each on
//! `topics.notifications` (key = the notification id), and what it says at start-up — which
//! (notification, receiver) pairs are settled, and how many attempts each had — so a restart
//! sends nothing twice. Behind [`Ledger`], so the engine is tested with [`MemoryLedger`].

use super::NotifyError;
use crate::config::Settings;
use crate::kafka::record::Parts;
use crate::kafka::{self, Role};
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// What became of an attempt (or of the notice, for `abandoned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The receiver took it (2xx).
    Delivered,
    /// It did not (another status, a timeout, a refused connection): retried.
    Failed,
    /// 429: retried after its `Retry-After`.
    RateLimited,
    /// Given up: every escalation it announces closed before it was delivered.
    Abandoned,
}

impl Status {
    /// Delivered or abandoned: nothing more will be tried.
    pub fn settles(self) -> bool {
        matches!(self, Status::Delivered | Status::Abandoned)
    }

    /// The ledger's (and the metrics') name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::RateLimited => "rate_limited",
            Status::Abandoned => "abandoned",
        }
    }
}

/// One ledger record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The escalation's or the digest's id (also the record key and `webhook-id`).
    pub notification_id: String,
    /// `escalation` or `digest`.
    pub kind: String,
    /// The escalations it announces (for a digest, those of the items sent to this receiver).
    pub escalation_ids: Vec<String>,
    /// The receiver's name.
    pub receiver: String,
    /// 1 for the first attempt; an abandonment carries the number of attempts made.
    pub attempt: u32,
    /// What became of it.
    pub status: Status,
    /// The answer's status, when there was one.
    pub http_status: Option<u16>,
    /// How long the attempt took.
    pub latency_ms: Option<u64>,
    /// When it was recorded (ms since the epoch).
    pub at_ms: i64,
    /// Why it failed (never a URL or a secret).
    pub error: Option<String>,
}

/// Run once the ledger holds an entry (or has given up on it).
pub type Durable = Box<dyn FnOnce() + Send>;

/// Where entries go. `record` never blocks for long; `durable` runs once the entry is stored
/// (or could not be: logged), from any thread.
pub trait Ledger: Send + Sync {
    /// Records `entry`.
    fn record(&self, entry: LedgerEntry, durable: Option<Durable>);
}

/// A ledger in memory (tests, tools): stored at once.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: Mutex<Vec<LedgerEntry>>,
}

impl MemoryLedger {
    /// Every entry so far, in order.
    pub fn entries(&self) -> Vec<LedgerEntry> {
        self.entries.lock().expect("ledger lock").clone()
    }
}

impl Ledger for MemoryLedger {
    fn record(&self, entry: LedgerEntry, durable: Option<Durable>) {
        self.entries.lock().expect("ledger lock").push(entry);
        if let Some(d) = durable {
            d();
        }
    }
}

/// What the ledger says of one (notification, receiver).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    /// Delivered or abandoned.
    pub settled: bool,
    /// Attempts recorded (the highest attempt number).
    pub attempts: u32,
}

/// What the ledger says, by (notification id, receiver).
pub type History = HashMap<(String, String), Known>;

/// Folds entries into a [`History`]. Pure.
pub fn fold(entries: impl IntoIterator<Item = LedgerEntry>) -> History {
    let mut h = History::new();
    for e in entries {
        let k = h.entry((e.notification_id, e.receiver)).or_default();
        k.settled |= e.status.settles();
        k.attempts = k.attempts.max(e.attempt);
    }
    h
}

/// Reads the whole ledger topic (up to `notify.restore_timeout`) into a [`History`]. A
/// record that is not an entry is skipped with a warning. A missing topic is an empty ledger.
pub fn restore(settings: &Settings) -> Result<History, NotifyError> {
    let topic = &settings.topics.notifications;
    let partitions = kafka::admin::partitions(settings, topic)?;
    if partitions.is_empty() {
        return Ok(History::new());
    }
    let reader = kafka::changelog::Reader {
        kafka: settings.kafka.clone(),
        topic: topic.clone(),
        timeout: settings.notify.restore_timeout,
    };
    let mut skipped = 0usize;
    let entries = reader
        .read(&partitions)?
        .into_iter()
        .flat_map(|(_, records)| records)
        .filter_map(|(_, value)| {
            let e = value.and_then(|v| serde_json::from_slice::<LedgerEntry>(&v).ok());
            skipped += usize::from(e.is_none());
            e
        })
        .collect::<Vec<_>>();
    if skipped > 0 {
        tracing::warn!(%topic, skipped, "ledger records that are not notification entries were skipped");
    }
    let n = entries.len();
    let h = fold(entries);
    tracing::info!(%topic, entries = n, notices = h.len(), settled = h.values().filter(|k| k.settled).count(), "ledger read");
    Ok(h)
}

/// The producer's context: runs each entry's `durable` on its delivery report.
pub struct LedgerContext;

impl ClientContext for LedgerContext {}

impl ProducerContext for LedgerContext {
    type DeliveryOpaque = Box<Mutex<Option<Durable>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, durable: Self::DeliveryOpaque) {
        if let Err((e, _)) = result {
            // The notice still counts as settled: what was delivered is not sent again for
            // want of its ledger line. Only the record is missing.
            tracing::warn!(error = %e, "a ledger entry could not be written");
        }
        let d = durable.lock().expect("durable lock").take();
        if let Some(d) = d {
            d();
        }
    }
}

/// The ledger on Kafka.
pub struct KafkaLedger {
    producer: ThreadedProducer<LedgerContext>,
    topic: String,
}

/// Longest wait for room in a full producer queue before an entry is given up (logged).
const QUEUE_WAIT: Duration = Duration::from_millis(200);

impl KafkaLedger {
    /// A producer for `settings.topics.notifications` (the `[kafka]` producer settings).
    pub fn new(settings: &Settings) -> Result<KafkaLedger, NotifyError> {
        let producer = kafka::client_config(&settings.kafka, Role::Producer)
            .create_with_context(LedgerContext)
            .map_err(kafka::Error::client("ledger producer"))?;
        Ok(KafkaLedger {
            producer,
            topic: settings.topics.notifications.clone(),
        })
    }

    /// Waits up to `timeout` for every entry to be written.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "ledger entries not all written at shutdown");
        }
    }
}

impl Ledger for KafkaLedger {
    fn record(&self, entry: LedgerEntry, durable: Option<Durable>) {
        let json = serde_json::to_vec(&entry).expect("an entry serializes");
        let parts = Parts {
            key: Some(entry.notification_id.as_bytes()),
            payload: Some(&json),
            ..Parts::default()
        };
        let record = kafka::record::record(&self.topic, parts, Box::new(Mutex::new(durable)));
        // The ledger is not worth holding a notification for: wait at most QUEUE_WAIT.
        let started = std::time::Instant::now();
        let queued = kafka::record::queue(
            record,
            |r| self.producer.send(r).err(),
            || {
                std::thread::sleep(Duration::from_millis(5));
                started.elapsed() < QUEUE_WAIT
            },
        );
        if let Err(e) = queued {
            tracing::warn!(error = %e, notification = %entry.notification_id, "a ledger entry could not be queued");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, receiver: &str, attempt: u32, status: Status) -> LedgerEntry {
        LedgerEntry {
            notification_id: id.into(),
            kind: "escalation".into(),
            escalation_ids: vec![id.into()],
            receiver: receiver.into(),
            attempt,
            status,
            http_status: None,
            latency_ms: None,
            at_ms: 0,
            error: None,
        }
    }

    #[test]
    fn the_history_knows_what_is_settled_and_how_many_attempts_were_made() {
        use Status::*;
        let h = fold([
            entry("a", "slack", 1, Failed),
            entry("a", "slack", 2, RateLimited),
            entry("a", "slack", 3, Delivered),
            entry("a", "pager", 1, Failed),
            entry("b", "pager", 1, Failed),
            entry("b", "pager", 1, Abandoned),
            entry("c", "pager", 1, Delivered),
            entry("c", "pager", 2, Delivered),
        ]);
        let k = |id: &str, r: &str| h.get(&(id.to_string(), r.to_string())).copied();
        let table = [
            (
                "a",
                "slack",
                Some(Known {
                    settled: true,
                    attempts: 3,
                }),
            ),
            (
                "a",
                "pager",
                Some(Known {
                    settled: false,
                    attempts: 1,
                }),
            ),
            (
                "b",
                "pager",
                Some(Known {
                    settled: true,
                    attempts: 1,
                }),
            ),
            (
                "c",
                "pager",
                Some(Known {
                    settled: true,
                    attempts: 2,
                }),
            ),
            ("c", "slack", None),
        ];
        for (id, r, want) in table {
            assert_eq!(k(id, r), want, "{id} {r}");
        }
    }

    #[test]
    fn entries_are_json_with_snake_case_statuses() {
        let mut e = entry("esc-1", "pager", 2, Status::RateLimited);
        e.http_status = Some(429);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["status"], "rate_limited");
        assert_eq!(v["http_status"], 429);
        assert_eq!(v["notification_id"], "esc-1");
        let back: LedgerEntry = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        for s in [
            Status::Delivered,
            Status::Failed,
            Status::RateLimited,
            Status::Abandoned,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn a_memory_ledger_stores_at_once() {
        let l = MemoryLedger::default();
        let (tx, rx) = std::sync::mpsc::channel();
        l.record(
            entry("a", "r", 1, Status::Delivered),
            Some(Box::new(move || tx.send(()).unwrap())),
        );
        assert!(rx.try_recv().is_ok());
        assert_eq!(l.entries().len(), 1);
    }
}
