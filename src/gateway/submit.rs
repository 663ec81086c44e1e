//! Where submitted actions go: `agent.actions`, keyed by session, in the input format the
//! processor reads, with the schema-version header; each future resolves once the broker has
//! acknowledged the record. Behind a trait so that route tests keep what would be sent.

use crate::config::Settings;
use crate::event::{AgentAction, Codec, SchemaKind};
use crate::kafka::record::{record, to_future, Parts};
use futures::future::BoxFuture;
use rdkafka::producer::FutureProducer;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A submission that was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The action could not be encoded (a bug: it was validated).
    #[error("cannot encode the action: {0}")]
    Encode(String),
    /// The broker did not acknowledge it in time.
    #[error("not delivered to {topic}: {reason}")]
    Delivery {
        /// The topic.
        topic: String,
        /// librdkafka's reason.
        reason: String,
    },
}

/// Sends actions; each future resolves once acknowledged.
pub trait Submit: Send + Sync {
    /// An action to the input topic.
    fn submit(&self, action: &AgentAction) -> BoxFuture<'static, Result<(), SubmitError>>;
}

/// The Kafka submitter.
pub struct KafkaSubmitter {
    producer: FutureProducer,
    codec: Codec,
    settings: Settings,
    timeout: Duration,
}

impl KafkaSubmitter {
    /// A producer from the `[kafka]` settings.
    pub fn new(settings: &Settings) -> Result<KafkaSubmitter, crate::kafka::Error> {
        let producer: FutureProducer = crate::kafka::create(
            &settings.kafka,
            crate::kafka::Role::Producer,
            "gateway producer",
        )?;
        let codec = Codec::new(Default::default()).expect("the shipped schemas parse");
        Ok(KafkaSubmitter {
            producer,
            codec,
            settings: settings.clone(),
            timeout: settings.gateway.submit_timeout,
        })
    }

    /// Waits up to `timeout` for what was handed over to be delivered.
    pub fn flush(&self, timeout: Duration) {
        use rdkafka::producer::Producer;
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "gateway: submissions not delivered at shutdown");
        }
    }
}

impl Submit for KafkaSubmitter {
    fn submit(&self, action: &AgentAction) -> BoxFuture<'static, Result<(), SubmitError>> {
        let value = match crate::kafka::record::action_value(&self.settings, &self.codec, action) {
            Ok(v) => v,
            Err(e) => return Box::pin(std::future::ready(Err(SubmitError::Encode(e.to_string())))),
        };
        let producer = self.producer.clone();
        let topic = self.settings.topics.input.clone();
        let key = action.session_id.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let headers: Vec<(&str, &[u8])> =
                crate::event::wire::version_header(SchemaKind::AgentAction)
                    .into_iter()
                    .collect();
            let parts = Parts {
                key: Some(key.as_bytes()),
                payload: Some(&value),
                headers: &headers,
                ..Parts::default()
            };
            let send = producer.send(to_future(record(&topic, parts, ())), timeout);
            match tokio::time::timeout(timeout, send).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _))) => Err(SubmitError::Delivery {
                    topic,
                    reason: e.to_string(),
                }),
                Err(_) => Err(SubmitError::Delivery {
                    topic,
                    reason: format!(
                        "no acknowledgement within {}",
                        humantime::format_duration(timeout)
                    ),
                }),
            }
        })
    }
}

/// Keeps what would be sent (route tests, benchmarks).
#[derive(Debug, Default)]
pub struct MemorySubmitter {
    /// Actions, in order.
    pub actions: Mutex<Vec<AgentAction>>,
    /// When set, every submission fails with this reason.
    pub failing: Mutex<Option<String>>,
}

impl Submit for MemorySubmitter {
    fn submit(&self, action: &AgentAction) -> BoxFuture<'static, Result<(), SubmitError>> {
        if let Some(reason) = self.failing.lock().expect("not poisoned").clone() {
            return Box::pin(std::future::ready(Err(SubmitError::Delivery {
                topic: "agent.actions".into(),
                reason,
            })));
        }
        self.actions
            .lock()
            .expect("not poisoned")
            .push(action.clone());
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A shared submitter.
pub type Submitter = Arc<dyn Submit>;
