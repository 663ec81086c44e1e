//! `handoff respond`: the simulated people ([`super::people`]) on the wall clock, fed from the
//! role topics, answering on the decisions topic. For the demo, the Prometheus proof and
//! drills; a stand-in for the people, never for handoff.

use super::people::{Answering, People, Shown, Signature};
use super::produce::{Counting, Counts};
use super::SimError;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::event::{Codec, Escalation, HumanDecision, SchemaKind};
use crate::kafka::record::{record, schema_version, send_polling, Parts};
use crate::kafka::{self, Role};
use crate::trust::Signer;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, Producer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the simulated responders behave (the same for every role).
#[derive(Debug, Clone)]
pub struct ResponderConfig {
    /// Time from reading an escalation to answering it.
    pub delay: Duration,
    /// Up to this much more, uniformly.
    pub jitter: Duration,
    /// Share of escalations nobody answers (0..1): their deadlines fire.
    pub no_show: f64,
    /// Weights of approve, reject, revise, redirect, acknowledge.
    pub mix: [f64; 5],
    /// Seed of the choices.
    pub seed: u64,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            delay: Duration::from_secs(2),
            jitter: Duration::from_secs(3),
            no_show: 0.05,
            mix: [60.0, 15.0, 10.0, 5.0, 10.0],
            seed: 1,
        }
    }
}

impl ResponderConfig {
    /// The people's settings: one answer, `delay` to `delay + jitter` after reading, drawn
    /// from the whole mix.
    pub fn answering(&self) -> Answering {
        Answering {
            delay_min: self.delay,
            delay_max: self.delay + self.jitter,
            decide_after: None,
            no_show: self.no_show,
            mix: self.mix,
        }
    }

    /// The people answering every role of `roles` this way, signing `sim-ROLE`.
    pub fn people(&self, roles: &[String]) -> People {
        let signature = Signature {
            decided_by_prefix: "sim-".into(),
            comment: Some("simulated responder".into()),
            drill: false,
        };
        People::new(roles.to_vec(), self.seed, signature).everyone(self.answering())
    }
}

/// What the responders did.
#[derive(Debug, Default)]
pub struct ResponderCounts {
    /// Escalations read.
    pub read: AtomicU64,
    /// Escalations left unanswered on purpose.
    pub no_shows: AtomicU64,
    /// Decisions the broker acknowledged (answered), and those the producer gave up on.
    pub sent: Arc<Counts>,
}

/// Answers escalations from `topics` (the role topics, prefix included) until `stop` is set.
/// `roles` are the matrix's role names (redirects go to another one of them). Blocking. A
/// decision counts as answered once the broker acknowledged it.
pub fn respond(
    settings: &Settings,
    topics: &[String],
    roles: &[String],
    cfg: &ResponderConfig,
    stop: &AtomicBool,
    counts: &Arc<ResponderCounts>,
) -> Result<(), SimError> {
    let consumer: BaseConsumer = kafka::create(
        &settings.kafka,
        Role::Helper("responders"),
        "responder consumer",
    )?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&names)
        .map_err(kafka::Error::client("responder subscribe"))?;
    let producer: BaseProducer<Counting> = kafka::client_config(&settings.kafka, Role::Producer)
        .create_with_context(Counting(counts.sent.clone()))
        .map_err(kafka::Error::client("responder producer"))?;
    let codec = Codec::new(Default::default())?;
    let signer = settings.trust.signer();
    let mut people = cfg.people(roles);
    while !stop.load(Ordering::Acquire) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            let version = schema_version(&m);
            let esc = m.payload().and_then(|p| {
                codec
                    .decode_header_version::<Escalation>(SchemaKind::Escalation, version, p)
                    .ok()
            });
            if let Some(esc) = esc {
                match people.shown(&esc.role, &esc, SystemClock.now_ms()) {
                    Shown::Again => {}
                    Shown::NoShow => {
                        counts.read.fetch_add(1, Ordering::Relaxed);
                        counts.no_shows.fetch_add(1, Ordering::Relaxed);
                    }
                    Shown::NobodyThere | Shown::Planned(_) => {
                        counts.read.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let now = SystemClock.now_ms();
        while let Some(mut d) = people.due(now) {
            d.decided_at_ms = now;
            let to = (
                &producer,
                settings.topics.decisions.as_str(),
                signer.as_ref(),
            );
            send(to, &codec, &d, counts)?;
        }
        producer.poll(Duration::ZERO);
    }
    let _ = producer.flush(Duration::from_secs(10));
    Ok(())
}

/// Queues one decision, waiting while the producer's queue is full; a refused one is logged,
/// counted and dropped (the deadline will fire).
fn send(
    (producer, topic, signer): (&BaseProducer<Counting>, &str, Option<&Signer>),
    codec: &Codec,
    d: &HumanDecision,
    counts: &ResponderCounts,
) -> Result<(), SimError> {
    let bytes = codec.encode(SchemaKind::HumanDecision, d)?;
    let version = crate::event::wire::version_header(SchemaKind::HumanDecision);
    let drill = d.drill.then_some(crate::event::wire::DRILL);
    let signature = signer.map(|s| crate::trust::signature_header(s, &bytes));
    let signed = signature.as_ref().map(|(k, v)| (*k, v.as_slice()));
    let headers: Vec<(&str, &[u8])> = version.into_iter().chain(drill).chain(signed).collect();
    let parts = Parts {
        key: Some(d.session_id.as_bytes()),
        payload: Some(&bytes),
        headers: &headers,
        partition: None,
    };
    if let Err(e) = send_polling(producer, record(topic, parts, ())) {
        tracing::warn!(error = %e, "responder could not queue a decision");
        counts.sent.failed.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_settings_map_to_one_answer_after_delay_to_delay_plus_jitter() {
        let cfg = ResponderConfig {
            delay: Duration::from_secs(2),
            jitter: Duration::from_secs(3),
            ..Default::default()
        };
        let a = cfg.answering();
        assert_eq!(
            (a.delay_min, a.delay_max, a.decide_after),
            (Duration::from_secs(2), Duration::from_secs(5), None)
        );
        assert_eq!((a.no_show, a.mix), (cfg.no_show, cfg.mix));
    }
}
