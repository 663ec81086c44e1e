//! [`live`]: a drill on the wall clock against a live `handoff run --drill`.

use super::observe::Observer;
use super::report::GamedayReport;
use super::scenario::Scenario;
use super::traffic::drill_events;
use super::GamedayError;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::event::wire::{version_header, DRILL, KIND_HEADER};
use crate::event::{AgentAction, Codec, DecisionKind, SchemaKind};
use crate::kafka::record::{header, record, send_polling, Parts};
use crate::matrix::Matrix;
use crate::trust::signature_header;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Runs a scenario on the wall clock against a live deployment: a `handoff run --drill` on the
/// cluster of `settings` (drill settings) decides the events this produces to the drill input
/// as their times come; the people answer what reaches the drill role topics; the report is
/// built from those topics. `grace` is how long to keep watching after the last event.
pub fn live(
    scenario: &Scenario,
    matrix: Arc<Matrix>,
    settings: &Settings,
    recorded: Vec<AgentAction>,
    grace: Duration,
    mut progress: impl FnMut(usize, usize),
) -> Result<GamedayReport, GamedayError> {
    let codec = Codec::new(Default::default())?;
    let signer = settings.trust.signer();
    let start_ms = SystemClock.now_ms();
    let events = drill_events(scenario, start_ms, recorded);
    let mut observer = Observer::new(scenario, matrix.clone(), settings, &events, start_ms)?;
    let mut people = scenario.people(&matrix);
    // Watch the verdicts and role topics from their current ends: only this drill's records.
    let consumer = from_the_end(settings, &observer.topics())?;
    let producer: BaseProducer =
        crate::kafka::client_config(&settings.kafka, crate::kafka::Role::Producer)
            .create()
            .map_err(kafka)?;
    let end_ms = start_ms + scenario.duration.as_millis() as i64;
    let stop_ms = end_ms + grace.as_millis() as i64;
    let mut acks: BTreeMap<String, i64> = BTreeMap::new();
    let mut next_event = 0usize;
    loop {
        let now = SystemClock.now_ms();
        if now >= stop_ms {
            break;
        }
        while next_event < events.len() && events[next_event].timestamp_ms <= now {
            let e = &events[next_event];
            next_event += 1;
            let bytes = codec.encode(SchemaKind::AgentAction, e)?;
            let version = version_header(SchemaKind::AgentAction);
            send(
                &producer,
                &settings.topics.input,
                &e.session_id,
                &bytes,
                version.as_slice(),
            )?;
            if next_event % 100 == 0 || next_event == events.len() {
                progress(next_event, events.len());
            }
        }
        while let Some(mut d) = people.due(now) {
            d.decided_at_ms = now;
            if d.decision == DecisionKind::Acknowledge {
                acks.insert(d.escalation_id.clone(), now);
            }
            let bytes = codec.encode(SchemaKind::HumanDecision, &d)?;
            let version = version_header(SchemaKind::HumanDecision);
            let signature = signer.as_ref().map(|s| signature_header(s, &bytes));
            let signed = signature.as_ref().map(|(k, v)| (*k, v.as_slice()));
            let headers: Vec<(&str, &[u8])> = version.into_iter().chain(signed).collect();
            send(
                &producer,
                &settings.topics.decisions,
                &d.session_id,
                &bytes,
                &headers,
            )?;
        }
        producer.poll(Duration::ZERO);
        if let Some(m) = consumer.poll(Duration::from_millis(20)) {
            let m = m.map_err(kafka)?;
            let kind = header(&m, KIND_HEADER).map(<[u8]>::to_vec);
            let at = m.timestamp().to_millis().unwrap_or(now);
            let payload = m.payload().unwrap_or(&[]);
            if let Some((role, x)) = observer.observe(m.topic(), kind.as_deref(), payload, at)? {
                people.shown(&role, &x, now);
            }
        }
    }
    producer.flush(Duration::from_secs(30)).map_err(kafka)?;
    Ok(observer.finish(&acks, &scenario.measure))
}

fn kafka(e: KafkaError) -> GamedayError {
    GamedayError::Kafka(e.to_string())
}

/// A reader assigned to every partition of `topics` at its current end.
fn from_the_end(settings: &Settings, topics: &[String]) -> Result<BaseConsumer, GamedayError> {
    let consumer: BaseConsumer =
        crate::kafka::range::reader(settings).map_err(|e| GamedayError::Kafka(e.to_string()))?;
    let timeout = settings.pipeline.connect_timeout;
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let md = consumer.fetch_metadata(Some(t), timeout).map_err(kafka)?;
        for p in md.topics().iter().flat_map(|x| x.partitions()) {
            let (_, high) = consumer
                .fetch_watermarks(t, p.id(), timeout)
                .map_err(kafka)?;
            tpl.add_partition_offset(t, p.id(), Offset::Offset(high))
                .map_err(kafka)?;
        }
    }
    consumer.assign(&tpl).map_err(kafka)?;
    Ok(consumer)
}

/// Queues a drill record keyed by session, with the header naming its schema version when it
/// has one, waiting while the producer's queue is full.
fn send(
    producer: &BaseProducer,
    topic: &str,
    key: &str,
    bytes: &[u8],
    more: &[(&str, &[u8])],
) -> Result<(), GamedayError> {
    let headers: Vec<(&str, &[u8])> = std::iter::once(DRILL).chain(more.iter().copied()).collect();
    let parts = Parts {
        key: Some(key.as_bytes()),
        payload: Some(bytes),
        headers: &headers,
        partition: None,
    };
    send_polling(producer, record(topic, parts, ())).map_err(|e| GamedayError::Kafka(e.to_string()))
}
