//! Metadata and topic administration: is the cluster there, which topics exist and how they
//! are partitioned, creating what is missing.

use super::{create, Error, Role};
use crate::config::Settings;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::ProducerContext;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientContext;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A client for metadata requests.
fn metadata_client(settings: &Settings) -> Result<BaseProducer, Error> {
    create(&settings.kafka, Role::Admin, "metadata client")
}

/// Keeps librdkafka's last error reason (e.g. "SSL handshake failed: … certificate verify
/// failed"), which a failed metadata request does not carry.
#[derive(Default)]
struct LastError(Mutex<Option<String>>);

impl ClientContext for LastError {
    fn error(&self, error: KafkaError, reason: &str) {
        let all_down = matches!(error, KafkaError::Global(RDKafkaErrorCode::AllBrokersDown));
        if all_down {
            return;
        }
        let mut last = self.0.lock().expect("last error lock");
        // A security failure names the cause; the disconnects that follow it do not.
        if last.as_deref().is_some_and(names_security) && !names_security(reason) {
            return;
        }
        *last = Some(reason.to_string());
    }
}

/// A TLS or SASL failure ("SSL handshake failed", "SASL authentication error").
fn names_security(reason: &str) -> bool {
    reason.contains("SSL") || reason.contains("SASL")
}

impl ProducerContext for LastError {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// Waits until the brokers answer, asking again with a doubling pause (100 ms up to 2 s)
/// until `pipeline.connect_timeout` has passed: a cluster that is still starting is waited
/// for, one that stays away is reported with the client's last error.
pub fn wait_reachable(settings: &Settings) -> Result<(), Error> {
    let client: BaseProducer<LastError> = super::client_config(&settings.kafka, Role::Admin)
        .create_with_context(LastError::default())
        .map_err(Error::client("metadata client"))?;
    let timeout = settings.pipeline.connect_timeout;
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        let attempt = left
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(100));
        let e = match client.client().fetch_metadata(None, attempt) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        // Serves librdkafka's error events, which name the cause.
        client.poll(Duration::ZERO);
        let reason = client.context().0.lock().expect("last error lock").clone();
        let reason = reason.unwrap_or_else(|| e.to_string());
        if started.elapsed() + pause >= timeout {
            return Err(Error::Unreachable {
                bootstrap: settings.kafka.bootstrap_servers.clone(),
                timeout,
                reason,
            });
        }
        tracing::info!(%reason, retry_in = ?pause, "Kafka does not answer yet");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Creates the missing topics among `topics`; the changelog and the receipts' uses are
/// compacted.
pub async fn ensure_topics(settings: &Settings, topics: &[String]) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> =
        create(&settings.kafka, Role::Admin, "admin client")?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            let topic = NewTopic::new(
                t,
                settings.kafka.partitions,
                TopicReplication::Fixed(settings.kafka.replication_factor),
            );
            if *t == settings.topics.changelog || *t == settings.topics.receipts_used {
                // Only the last state of each session matters; a receipt's first use is
                // kept for as long as its action id.
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(settings.pipeline.connect_timeout));
    let results = admin
        .create_topics(new.iter(), &opts)
        .await
        .map_err(Error::client("create topics"))?;
    for r in results {
        match r {
            Ok(t) => tracing::info!(topic = %t, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::CreateTopic {
                    topic,
                    message: code.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// For a process beside `run` (the inbox, the gateway), from async code: waits until the brokers
/// answer ([`wait_reachable`]) and `topics` exist ([`ensure_topics_blocking`]), off the runtime's
/// threads.
pub async fn reachable_with_topics(settings: &Settings, topics: &[&str]) -> Result<(), Error> {
    let settings = settings.clone();
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        wait_reachable(&settings)?;
        ensure_topics_blocking(&settings, &topics)
    })
    .await
    .expect("the check does not panic")
}

/// [`ensure_topics`] from synchronous code outside any async runtime (the tools).
pub fn ensure_topics_blocking(settings: &Settings, topics: &[String]) -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a single-threaded runtime")
        .block_on(ensure_topics(settings, topics))
}

/// The partition ids of `topic`; empty when it does not exist.
pub fn partitions(settings: &Settings, topic: &str) -> Result<Vec<i32>, Error> {
    let client = metadata_client(settings)?;
    let md = client
        .client()
        .fetch_metadata(Some(topic), settings.pipeline.connect_timeout)
        .map_err(Error::client("metadata"))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}

/// The partition ids of `topic`, or [`Error::MissingTopic`].
pub fn existing_partitions(settings: &Settings, topic: &str) -> Result<Vec<i32>, Error> {
    let parts = partitions(settings, topic)?;
    if parts.is_empty() {
        return Err(Error::MissingTopic {
            topic: topic.into(),
            bootstrap: settings.kafka.bootstrap_servers.clone(),
        });
    }
    Ok(parts)
}

/// Checks that the decisions and changelog topics have as many partitions as the input: a
/// session's events, decisions and state must meet in the same partition number.
pub fn check_copartitioned(settings: &Settings, changelog: Option<&str>) -> Result<(), Error> {
    let t = &settings.topics;
    let input = partitions(settings, &t.input)?.len();
    let mut others = vec![("topics.decisions", t.decisions.as_str())];
    if let Some(c) = changelog {
        others.push(("topics.changelog", c));
    }
    for (field, topic) in others {
        let n = partitions(settings, topic)?.len();
        if n != input {
            return Err(Error::NotCopartitioned {
                field,
                topic: topic.to_string(),
                partitions: n,
                input: t.input.clone(),
                input_partitions: input,
            });
        }
    }
    Ok(())
}
