//! [`run`]: a drill on a virtual clock, through handoff's own processor in this process.

use super::observe::Observer;
use super::report::GamedayReport;
use super::scenario::Scenario;
use super::traffic::drill_events;
use super::GamedayError;
use crate::config::Settings;
use crate::event::wire::KIND_HEADER;
use crate::event::{AgentAction, Codec, DecisionKind, SchemaKind};
use crate::matrix::Matrix;
use crate::output::Output;
use crate::pipeline::process::{Input, Processor, Stage};
use crate::sim::people::{People, Shown};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Runs a scenario on a virtual clock starting at `start_ms`, through handoff's processor in
/// this process. `sink` receives every output record (topic name, record) in order: the CLI
/// writes them to the drill topics.
pub fn run(
    scenario: &Scenario,
    matrix: Arc<Matrix>,
    start_ms: i64,
    recorded: Vec<AgentAction>,
    mut sink: impl FnMut(&str, &Output),
) -> Result<GamedayReport, GamedayError> {
    let settings = Settings::default().drill();
    let mut feed = Feed {
        p: Processor::new(&settings, matrix.clone())?,
        codec: Codec::new(Default::default())?,
        input: settings.topics.input.clone(),
        decisions: settings.topics.decisions.clone(),
        offset: 0,
        signer: settings.trust.signer(),
    };
    let topics = feed.p.topics().clone();
    let end_ms = start_ms + scenario.duration.as_millis() as i64;
    let step = scenario.step.as_millis() as i64;
    let events = drill_events(scenario, start_ms, recorded);
    let mut watch = Watch {
        observer: Observer::new(scenario, matrix.clone(), &settings, &events, start_ms)?,
        people: scenario.people(&matrix),
        acks: BTreeMap::new(),
    };
    let mut events = events.into_iter().peekable();
    let mut out: Vec<Output> = Vec::new();
    let mut now = start_ms;
    while now <= end_ms {
        out.clear();
        while let Some(e) = events.next_if(|e| e.timestamp_ms <= now) {
            let bytes = feed.codec.encode(SchemaKind::AgentAction, &e)?;
            feed.process(true, &e.session_id, &bytes, now, &mut out)?;
        }
        while let Some(d) = watch.people.due(now) {
            let bytes = feed.codec.encode(SchemaKind::HumanDecision, &d)?;
            feed.process(false, &d.session_id, &bytes, now, &mut out)?;
        }
        feed.p.tick(now, &mut out)?;
        if feed.p.awaits_delivery() {
            feed.p.delivered();
        }
        for o in &out {
            let topic = topics.name(o.topic, o.drill);
            sink(topic, o);
            watch.output(topic, o, now)?;
        }
        now += step;
    }
    Ok(watch.observer.finish(&watch.acks, &scenario.measure))
}

/// The processor and the offsets of the records handed to it.
struct Feed {
    p: Processor,
    codec: Codec,
    input: String,
    decisions: String,
    offset: i64,
    /// Signs the simulated people's decisions as a real writer would.
    signer: Option<crate::trust::Signer>,
}

impl Feed {
    /// One record of the input topic (or, `false`, of the decisions topic) at `now`.
    fn process(
        &mut self,
        input: bool,
        key: &str,
        bytes: &[u8],
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), GamedayError> {
        self.offset += 1;
        let (topic, kind) = if input {
            (&self.input, SchemaKind::AgentAction)
        } else {
            (&self.decisions, SchemaKind::HumanDecision)
        };
        let mut headers: Vec<(String, Vec<u8>)> = crate::event::wire::version_headers(kind);
        if let (false, Some(signer)) = (input, &self.signer) {
            let (k, v) = crate::trust::signature_header(signer, bytes);
            headers.push((k.to_string(), v));
        }
        let record = Input {
            topic,
            partition: 0,
            offset: self.offset,
            key: Some(key.as_bytes()),
            payload: Some(bytes),
            headers: &headers,
        };
        self.p.process(record, now, out)?;
        Ok(())
    }
}

/// What watches the outputs: the observer, and the people shown the new escalations, with the
/// acknowledgements they plan.
struct Watch {
    observer: Observer,
    people: People,
    acks: BTreeMap<String, i64>,
}

impl Watch {
    fn output(&mut self, topic: &str, o: &Output, now: i64) -> Result<(), GamedayError> {
        let kind = o
            .headers
            .iter()
            .find(|(k, _)| k == KIND_HEADER)
            .map(|(_, v)| v.as_slice());
        let Some((role, x)) = self.observer.observe(topic, kind, &o.payload, now)? else {
            return Ok(());
        };
        if let Shown::Planned(plan) = self.people.shown(&role, &x, now) {
            for (at, k) in plan {
                if k == DecisionKind::Acknowledge {
                    self.acks.insert(x.escalation_id.clone(), at);
                }
            }
        }
        Ok(())
    }
}
