//! Driving a processor record by record without a broker, as a worker does: partition 0, the
//! next offset each time, explicit times; outputs collected and decoded by topic.

use handoff::event::wire::KIND_HEADER;
use handoff::event::{AgentAction, Codec, Digest, Escalation, HumanDecision, SchemaKind, Verdict};
use handoff::output::Output;
use handoff::pipeline::process::{Input, Outcome, Processor, Stage};

pub struct Run {
    pub p: Processor,
    pub codec: Codec,
    pub offset: i64,
    pub out: Vec<Output>,
}

impl Run {
    pub fn new(p: Processor) -> Run {
        Run {
            p,
            codec: Codec::new(Default::default()).unwrap(),
            offset: 0,
            out: Vec::new(),
        }
    }

    /// Processes one record of `topic` at the next offset of partition 0.
    pub fn record(&mut self, topic: &str, session: &str, bytes: &[u8], now: i64) {
        self.record_with(topic, session, bytes, &[], now);
    }

    /// [`Run::record`] with headers; returns what became of the record.
    pub fn record_with(
        &mut self,
        topic: &str,
        session: &str,
        bytes: &[u8],
        headers: &[(String, Vec<u8>)],
        now: i64,
    ) -> Outcome {
        self.offset += 1;
        self.p
            .process(
                Input {
                    topic,
                    partition: 0,
                    offset: self.offset,
                    key: Some(session.as_bytes()),
                    payload: Some(bytes),
                    headers,
                },
                now,
                &mut self.out,
            )
            .unwrap()
    }

    /// An event carrying the canary header `handoff.canary` = `expect`.
    pub fn canary(&mut self, e: &AgentAction, expect: &str, now: i64) -> Outcome {
        let bytes = self.codec.encode(SchemaKind::AgentAction, e).unwrap();
        let mut h = version_headers();
        h.push(("handoff.canary".to_string(), expect.as_bytes().to_vec()));
        self.record_with("agent.actions", &e.session_id, &bytes, &h, now)
    }

    /// An event as handoff's producers write it (the current schema version, with its header).
    pub fn event(&mut self, e: &AgentAction, now: i64) {
        self.action(e, now);
    }

    /// [`Run::event`], returning what became of it.
    pub fn action(&mut self, e: &AgentAction, now: i64) -> Outcome {
        let bytes = self.codec.encode(SchemaKind::AgentAction, e).unwrap();
        let h = version_headers();
        self.record_with("agent.actions", &e.session_id, &bytes, &h, now)
    }

    pub fn decide(&mut self, d: &HumanDecision, now: i64) {
        let bytes = self.codec.encode(SchemaKind::HumanDecision, d).unwrap();
        let h = handoff::event::wire::version_headers(SchemaKind::HumanDecision);
        self.record_with("human.decisions", &d.session_id, &bytes, &h, now);
    }

    /// A timer tick as a worker runs it (new rules taken first, the drill twin ticked too),
    /// with every digest it sent confirmed delivered.
    pub fn tick(&mut self, now: i64) {
        Stage::tick(&mut self.p, now, &mut self.out).unwrap();
        if self.p.awaits_delivery() {
            self.p.delivered();
        }
    }

    /// The outputs written to the topic named `topic`.
    pub fn on(&self, topic: &str) -> Vec<&Output> {
        let topics = self.p.topics();
        assert!(topics.all().iter().any(|t| t == topic), "no topic {topic}");
        self.out
            .iter()
            .filter(|o| topics.name(o.topic, o.drill) == topic)
            .collect()
    }

    pub fn kind(o: &Output) -> &str {
        o.headers
            .iter()
            .find(|(k, _)| k == KIND_HEADER)
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
            .unwrap_or("")
    }

    pub fn escalations(&self, topic: &str) -> Vec<Escalation> {
        self.on(topic)
            .into_iter()
            .filter(|o| Run::kind(o) == "escalation")
            .map(|o| {
                self.codec
                    .decode(SchemaKind::Escalation, &o.payload)
                    .unwrap()
            })
            .collect()
    }

    pub fn digests(&self, topic: &str) -> Vec<Digest> {
        self.on(topic)
            .into_iter()
            .filter(|o| topic == "handoff.review" || Run::kind(o) == "digest")
            .map(|o| self.codec.decode(SchemaKind::Digest, &o.payload).unwrap())
            .collect()
    }

    pub fn verdicts(&self) -> Vec<Verdict> {
        self.on("agent.verdicts")
            .into_iter()
            .map(|o| self.codec.decode(SchemaKind::Verdict, &o.payload).unwrap())
            .collect()
    }

    /// Takes the outputs so far, each with its topic's name.
    pub fn take(&mut self) -> Vec<(String, Output)> {
        let topics = self.p.topics().clone();
        self.out
            .drain(..)
            .map(|o| (topics.name(o.topic, o.drill).to_string(), o))
            .collect()
    }

    /// The verdicts among taken outputs.
    pub fn verdicts_in(&self, outs: &[(String, Output)]) -> Vec<Verdict> {
        outs.iter()
            .filter(|(t, _)| t == "agent.verdicts")
            .map(|(_, o)| self.codec.decode(SchemaKind::Verdict, &o.payload).unwrap())
            .collect()
    }

    /// The escalations among taken outputs (every role topic), with their topic.
    pub fn escalations_in(&self, outs: &[(String, Output)]) -> Vec<(String, Escalation)> {
        outs.iter()
            .filter(|(t, o)| t.starts_with("escalations.") && Run::kind(o) == "escalation")
            .map(|(t, o)| {
                let x = self
                    .codec
                    .decode(SchemaKind::Escalation, &o.payload)
                    .unwrap();
                (t.clone(), x)
            })
            .collect()
    }

    /// Takes the outputs so far and returns their escalations.
    pub fn taken_escalations(&mut self) -> Vec<(String, Escalation)> {
        let outs = self.take();
        self.escalations_in(&outs)
    }

    /// Takes the outputs so far and returns their verdicts.
    pub fn taken_verdicts(&mut self) -> Vec<Verdict> {
        let outs = self.take();
        self.verdicts_in(&outs)
    }
}

/// The header of an action written with the current schema version, as `Input` headers.
pub fn version_headers() -> Vec<(String, Vec<u8>)> {
    handoff::event::wire::version_headers(SchemaKind::AgentAction)
}
