//! Where the inbox's answers and its audit trail go: decisions to `human.decisions` (Avro, key
//! = session id, as the processor reads them), audit entries to `handoff.audit` (JSON, key =
//! escalation id). Behind a trait so that page tests keep what would be sent in memory.

use crate::config::Settings;
use crate::event::{AuditEntry, Codec, HumanDecision, SchemaKind};
use crate::kafka::record::{record, to_future, Parts};
use crate::trust::Signer;
use futures::future::BoxFuture;
use rdkafka::producer::FutureProducer;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A publish that failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The decision could not be encoded.
    #[error("cannot encode the decision: {0}")]
    Encode(String),
    /// Kafka did not take it.
    #[error("not delivered to {topic}: {reason}")]
    Delivery {
        /// The topic.
        topic: String,
        /// librdkafka's reason.
        reason: String,
    },
}

/// Sends decisions and audit entries; each future resolves once delivered.
pub trait Publish: Send + Sync {
    /// A decision to `human.decisions`.
    fn decision(&self, d: &HumanDecision) -> BoxFuture<'static, Result<(), PublishError>>;
    /// An audit entry to `handoff.audit`.
    fn audit(&self, e: &AuditEntry) -> BoxFuture<'static, Result<(), PublishError>>;
}

/// The Kafka publisher.
pub struct KafkaPublisher {
    producer: FutureProducer,
    codec: Arc<Codec>,
    decisions: String,
    audit: String,
    /// Signs each decision (`[trust] signing_key`): the inbox vouches that a signed-in person
    /// of the decision's role answered.
    signer: Option<Signer>,
}

impl KafkaPublisher {
    /// A producer from the `[kafka]` settings.
    pub fn new(settings: &Settings) -> Result<KafkaPublisher, crate::kafka::Error> {
        let producer: FutureProducer = crate::kafka::create(
            &settings.kafka,
            crate::kafka::Role::Producer,
            "inbox producer",
        )?;
        let codec = Codec::new(Default::default()).expect("the shipped schemas parse");
        Ok(KafkaPublisher {
            producer,
            codec: Arc::new(codec),
            decisions: settings.topics.decisions.clone(),
            audit: settings.topics.audit.clone(),
            signer: settings.trust.signer(),
        })
    }

    /// Waits up to `timeout` for every record handed over to be delivered (at shutdown: the
    /// last audit entries are not dropped with the producer).
    pub fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        use rdkafka::producer::Producer;
        self.producer
            .flush(timeout)
            .map_err(|e| PublishError::Delivery {
                topic: self.audit.clone(),
                reason: e.to_string(),
            })
    }

    /// Sends `bytes` keyed by `key`, with `headers`.
    fn send(
        &self,
        topic: &str,
        key: &str,
        bytes: Vec<u8>,
        headers: Vec<(&'static str, Vec<u8>)>,
    ) -> BoxFuture<'static, Result<(), PublishError>> {
        let producer = self.producer.clone();
        let (topic, key) = (topic.to_string(), key.to_string());
        Box::pin(async move {
            let headers: Vec<(&str, &[u8])> =
                headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            let parts = Parts {
                key: Some(key.as_bytes()),
                payload: Some(&bytes),
                headers: &headers,
                ..Parts::default()
            };
            let record = to_future(record(&topic, parts, ()));
            match producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => Ok(()),
                Err((e, _)) => Err(PublishError::Delivery {
                    topic,
                    reason: e.to_string(),
                }),
            }
        })
    }
}

impl Publish for KafkaPublisher {
    fn decision(&self, d: &HumanDecision) -> BoxFuture<'static, Result<(), PublishError>> {
        match self.codec.encode(SchemaKind::HumanDecision, d) {
            Ok(bytes) => {
                let version = crate::event::wire::version_header(SchemaKind::HumanDecision);
                let mut headers: Vec<_> =
                    version.map(|(k, v)| (k, v.to_vec())).into_iter().collect();
                if let Some(signer) = &self.signer {
                    headers.push(crate::trust::signature_header(signer, &bytes));
                }
                self.send(&self.decisions, &d.session_id, bytes, headers)
            }
            Err(e) => Box::pin(std::future::ready(Err(PublishError::Encode(e.to_string())))),
        }
    }

    fn audit(&self, e: &AuditEntry) -> BoxFuture<'static, Result<(), PublishError>> {
        let bytes = serde_json::to_vec(e).expect("audit entries serialize");
        self.send(&self.audit, &e.escalation_id, bytes, Vec::new())
    }
}

/// Keeps what would be sent (page tests, benchmarks).
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    /// Decisions, in order.
    pub decisions: Mutex<Vec<HumanDecision>>,
    /// Audit entries, in order.
    pub audit: Mutex<Vec<AuditEntry>>,
}

impl Publish for MemoryPublisher {
    fn decision(&self, d: &HumanDecision) -> BoxFuture<'static, Result<(), PublishError>> {
        self.decisions.lock().expect("not poisoned").push(d.clone());
        Box::pin(std::future::ready(Ok(())))
    }

    fn audit(&self, e: &AuditEntry) -> BoxFuture<'static, Result<(), PublishError>> {
        self.audit.lock().expect("not poisoned").push(e.clone());
        Box::pin(std::future::ready(Ok(())))
    }
}
