//! Simulated humans: read escalations from the role topics and answer them on the decisions
//! topic after a delay, with a mix of decisions and a share of no-shows. For the demo, the
//! Prometheus proof and drills; a stand-in for the people, never for handoff.

use super::SimError;
use crate::config::Settings;
use crate::event::{Codec, DecisionKind, Escalation, HumanDecision, SchemaKind};
use crate::kafka::{self, Role};
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the simulated responders behave.
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

/// Parses `approve=60,reject=15,…` (kinds left out weigh 0).
pub fn parse_mix(text: &str) -> Result<[f64; 5], String> {
    let mut mix = [0.0; 5];
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected kind=weight, e.g. approve=60"))?;
        let i = DecisionKind::ALL
            .iter()
            .position(|k| k.as_str() == name.trim())
            .ok_or_else(|| {
                format!(
                    "{name:?} is not a decision (approve, reject, revise, redirect, acknowledge)"
                )
            })?;
        mix[i] = weight
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|w| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| format!("{part:?}: the weight must be a number ≥ 0"))?;
    }
    if mix.iter().sum::<f64>() <= 0.0 {
        return Err(format!("{text:?}: at least one weight must be above 0"));
    }
    Ok(mix)
}

/// What the responders did.
#[derive(Debug, Default)]
pub struct ResponderCounts {
    /// Escalations read.
    pub read: AtomicU64,
    /// Decisions sent.
    pub answered: AtomicU64,
    /// Escalations left unanswered on purpose.
    pub no_shows: AtomicU64,
}

/// Answers escalations from `topics` until `stop` is set. `roles` are the matrix's role names
/// (redirects go to another one of them). Blocking.
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
    let producer: BaseProducer =
        kafka::create(&settings.kafka, Role::Producer, "responder producer")?;
    let codec = Codec::new(Default::default())?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let total: f64 = cfg.mix.iter().sum();
    let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut waiting: HashMap<u64, HumanDecision> = HashMap::new();
    let mut n = 0u64;
    // A grouped escalation is published again on each update: answer it once.
    let mut seen = std::collections::HashSet::new();
    while !stop.load(Ordering::Acquire) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            let Some(esc) = m
                .payload()
                .and_then(|p| codec.decode::<Escalation>(SchemaKind::Escalation, p).ok())
            else {
                continue;
            };
            if !seen.insert(esc.escalation_id.clone()) {
                continue;
            }
            counts.read.fetch_add(1, Ordering::Relaxed);
            if rng.random::<f64>() < cfg.no_show {
                counts.no_shows.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let mut pick = rng.random::<f64>() * total;
            let mut kind = DecisionKind::Approve;
            for (k, w) in DecisionKind::ALL.iter().zip(cfg.mix) {
                if pick < w {
                    kind = *k;
                    break;
                }
                pick -= w;
            }
            let other = roles.iter().find(|r| **r != esc.role).cloned();
            if kind == DecisionKind::Redirect && other.is_none() {
                kind = DecisionKind::Approve;
            }
            let wait = cfg.delay + cfg.jitter.mul_f64(rng.random::<f64>());
            n += 1;
            due.push(Reverse((Instant::now() + wait, n)));
            waiting.insert(
                n,
                HumanDecision {
                    escalation_id: esc.escalation_id.clone(),
                    action_id: esc.action_id.clone(),
                    session_id: esc.session_id.clone(),
                    role: esc.role.clone(),
                    decided_by: format!("sim-{}", esc.role),
                    decision: kind,
                    comment: Some("simulated responder".into()),
                    revised_output: (kind == DecisionKind::Revise)
                        .then(|| format!("(revised) {}", esc.context.headline)),
                    redirect_role: (kind == DecisionKind::Redirect)
                        .then(|| other.unwrap_or_default()),
                    decided_at_ms: 0,
                    drill: esc.drill,
                },
            );
        }
        while let Some(Reverse((at, id))) = due.peek().copied() {
            if at > Instant::now() {
                break;
            }
            due.pop();
            let mut d = waiting.remove(&id).expect("scheduled");
            d.decided_at_ms = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
            let bytes = codec.encode(SchemaKind::HumanDecision, &d)?;
            let mut record = BaseRecord::to(&settings.topics.decisions)
                .key(d.session_id.as_bytes())
                .payload(&bytes);
            if d.drill {
                record = record.headers(rdkafka::message::OwnedHeaders::new().insert(
                    rdkafka::message::Header {
                        key: crate::event::wire::DRILL_HEADER,
                        value: Some("true"),
                    },
                ));
            }
            if let Err((e, _)) = producer.send(record) {
                tracing::warn!(error = %e, "responder could not queue a decision");
            } else {
                counts.answered.fetch_add(1, Ordering::Relaxed);
            }
        }
        producer.poll(Duration::ZERO);
    }
    let _ = producer.flush(Duration::from_secs(10));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_bad_ones_name_the_part() {
        assert_eq!(
            parse_mix("approve=3, acknowledge=1").unwrap(),
            [3.0, 0.0, 0.0, 0.0, 1.0]
        );
        assert!(parse_mix("approve").unwrap_err().contains("kind=weight"));
        assert!(parse_mix("maybe=2").unwrap_err().contains("\"maybe\""));
        assert!(parse_mix("reject=-1").unwrap_err().contains("≥ 0"));
        assert!(parse_mix("reject=0").unwrap_err().contains("above 0"));
    }
}
