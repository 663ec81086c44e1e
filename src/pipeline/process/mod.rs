//! One input record in, every output record out: decode, decide, build the verdict and the
//! escalations, encode. No Kafka I/O here, so the whole mapping is testable without a broker;
//! the pipeline only sends what this returns.
//!
//! [`Processor`] is the stage the pipeline runs. It holds a [`lane::Lane`] for the records it
//! owns and, outside drill processors, a second lane — the drill twin — for drill-marked
//! records, whose outputs it marks for the drill topics. A lane reads input ([`read`]),
//! decides ([`lane`]), writes its outputs ([`writing`] holds how, [`emit`] turns effects into them, [`review`]) and takes new rules between
//! records ([`adopt`]); [`framing`] connects it to the schema registry.

mod adopt;
mod emit;
mod framing;
mod lane;
mod read;
mod receipt;
mod review;
mod stage;
mod writing;

pub use crate::pipeline::topics::Topics;
pub use stage::{Input, Outcome, Stage, StageError};

use crate::config::Settings;
use crate::event::wire::is_drill;
use crate::event::{Codec, CodecError};
use crate::fatigue::Digests;
use crate::matrix::{Matrix, Rules};
use crate::output::{Output, Topic};
use crate::pipeline::stats::Stats;
use crate::state::PartitionState;
use lane::Lane;
use std::sync::{Arc, Mutex};

/// Turns input records into output records, keeping per-partition session state: the
/// processor's own lane, and the drill twin.
pub struct Processor {
    /// The records this processor owns (in a drill processor, the drill records).
    real: Lane,
    /// Drill-marked records outside drill processors: decided the same way, state in memory
    /// only, outputs to the drill topics.
    drill: Option<Lane>,
    /// Where each output goes, by name.
    topics: Topics,
    /// The settings the topic names come from (again at a rule change).
    settings: Arc<Settings>,
}

/// Why a processor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The shipped schemas could not be loaded (a defect).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The schema registry refused or could not answer at start-up.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

/// What kind of record an input is, by its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// An agent action (the input topic).
    Action,
    /// A human decision (the decisions topic).
    Decision,
}

impl Processor {
    /// A processor for the given settings and matrix.
    pub fn new(settings: &Settings, matrix: Arc<Matrix>) -> Result<Self, StartError> {
        let limits = crate::event::EventLimits::default();
        let codec =
            Arc::new(Codec::new(limits)?.with_max_record_bytes(settings.input.max_record_bytes));
        // Rate limits and digests, for real and for drill traffic (never mixed: a digest to a
        // real person's topic must not list drill items).
        let real = Arc::new(Mutex::new(Digests::new(&matrix)));
        let drill = Arc::new(Mutex::new(Digests::new(&matrix)));
        let mut p = Processor::build(settings, matrix, codec, real, drill);
        p.connect_registry(settings)?;
        Ok(p)
    }

    /// Another processor like this one (for another worker), sharing its schemas, rate
    /// limits and digests.
    pub fn sibling(&self, settings: &Settings) -> Processor {
        let real = self.real.digests();
        let drill = self
            .drill
            .as_ref()
            .map_or_else(|| real.clone(), Lane::digests);
        let codec = self.real.codec();
        let mut p = Processor::build(settings, self.real.matrix().clone(), codec, real, drill);
        p.real.share_registry(&self.real);
        if let (Some(twin), Some(from)) = (p.drill.as_mut(), self.drill.as_ref()) {
            twin.share_registry(from);
        }
        if let Some(rules) = self.real.rules() {
            p = p.following(rules.clone());
        }
        p
    }

    /// This processor, taking the matrix of `rules` whenever it changes (between records).
    pub fn following(mut self, rules: Arc<Rules>) -> Processor {
        self.real.follow(rules.clone());
        if let Some(twin) = self.drill.as_mut() {
            twin.follow(rules);
        }
        self.refresh();
        self
    }

    fn build(
        settings: &Settings,
        matrix: Arc<Matrix>,
        codec: Arc<Codec>,
        real_digests: Arc<Mutex<Digests>>,
        drill_digests: Arc<Mutex<Digests>>,
    ) -> Processor {
        // A drill processor's own records are drill records: their digests are the drill's.
        let own = if settings.is_drill() {
            drill_digests.clone()
        } else {
            real_digests
        };
        let real = Lane::new(settings, matrix.clone(), codec.clone(), own, true);
        let drill = (!settings.is_drill()).then(|| {
            Lane::new(
                &settings.drill(),
                matrix.clone(),
                codec,
                drill_digests,
                false,
            )
        });
        Processor {
            topics: Topics::of(settings, &matrix),
            settings: Arc::new(settings.clone()),
            real,
            drill,
        }
    }

    /// The state of a partition, if held.
    pub fn state(&self, partition: i32) -> Option<&PartitionState> {
        self.real.state(partition)
    }

    /// The matrix deciding.
    pub fn matrix(&self) -> &Matrix {
        self.real.matrix()
    }

    /// Loads a partition's state from its changelog records, oldest first.
    pub fn restore(&mut self, partition: i32, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        self.real.restore(partition, records)
    }

    /// What kind of record `input` is.
    fn kind(&self, input: &Input<'_>) -> InputKind {
        if input.topic == self.real.decisions_topic() {
            InputKind::Decision
        } else {
            InputKind::Action
        }
    }

    /// Maps one input record to its outputs. `now_ms` comes from the caller's clock. A
    /// drill-marked record (header, or a decision marked `drill`) goes to the drill twin.
    pub fn process(
        &mut self,
        input: Input<'_>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        self.refresh();
        let drill = is_drill(input.headers) && self.drill.is_some();
        match self.kind(&input) {
            InputKind::Action if drill => {
                self.in_drill(out, |twin, out| twin.process_action(input, now_ms, out))
            }
            InputKind::Action => self.real.process_action(input, now_ms, out),
            InputKind::Decision => {
                let d = match self.real.read_decision(&input) {
                    Ok(d) => d,
                    Err(refusal) => return self.real.refuse(input, refusal, out),
                };
                if (drill || d.0.drill) && self.drill.is_some() {
                    self.in_drill(out, |twin, out| twin.apply_decision(input, d, now_ms, out))
                } else {
                    self.real.apply_decision(input, d, now_ms, out)
                }
            }
        }
    }

    /// Runs `f` on the drill twin and marks the outputs it adds as drill traffic (written to
    /// the drill topics). Only called when there is a twin.
    fn in_drill<T>(
        &mut self,
        out: &mut Vec<Output>,
        f: impl FnOnce(&mut Lane, &mut Vec<Output>) -> T,
    ) -> T {
        let twin = self.drill.as_mut().expect("a drill twin");
        let from = out.len();
        let result = f(twin, out);
        for o in &mut out[from..] {
            o.drill = true;
        }
        result
    }

    /// Takes new rules in both lanes; names the role topics again when they changed.
    fn refresh(&mut self) {
        let changed = self.real.refresh();
        if let Some(twin) = self.drill.as_mut() {
            twin.refresh();
        }
        if changed {
            self.topics = Topics::of(&self.settings, self.real.matrix());
        }
    }

    /// Connects the registry of `settings`, if any, to both lanes (requests now: a failure
    /// refuses the start).
    fn connect_registry(
        &mut self,
        settings: &Settings,
    ) -> Result<(), crate::registry::RegistryError> {
        let Some(r) = &settings.input.schema_registry else {
            return Ok(());
        };
        let shared = Arc::new(crate::registry::SchemaRegistry::new(r, &self.real.codec())?);
        self.real
            .connect_registry(settings, &shared, &self.topics, false)?;
        if let Some(twin) = self.drill.as_mut() {
            twin.connect_registry(settings, &shared, &self.topics, true)?;
        }
        Ok(())
    }
}

impl Stage for Processor {
    fn topics(&self) -> &Topics {
        &self.topics
    }
    fn process(
        &mut self,
        input: Input<'_>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        Processor::process(self, input, now_ms, out)
    }
    fn forget_partition(&mut self, partition: i32) {
        self.real.forget(partition);
        if let Some(twin) = self.drill.as_mut() {
            twin.forget(partition);
        }
    }
    fn attach(&mut self, stats: Arc<Stats>) {
        if let Some(twin) = self.drill.as_mut() {
            twin.attach(stats.clone());
        }
        self.real.attach(stats);
    }
    fn changelog(&self) -> Option<Topic> {
        Some(Topic::Changelog)
    }
    fn restore(&mut self, partition: i32, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        Processor::restore(self, partition, records)
    }
    fn tick(&mut self, now_ms: i64, out: &mut Vec<Output>) -> Result<(), StageError> {
        self.refresh();
        self.real.tick(now_ms, out)?;
        if self.drill.is_some() {
            self.in_drill(out, |twin, out| twin.tick(now_ms, out))?;
        }
        Ok(())
    }
    fn awaits_delivery(&self) -> bool {
        self.real.awaits_delivery() || self.drill.as_ref().is_some_and(Lane::awaits_delivery)
    }
    fn delivered(&mut self) {
        self.real.delivered();
        if let Some(twin) = self.drill.as_mut() {
            twin.delivered();
        }
    }
    fn role_names(&self) -> Vec<String> {
        self.matrix()
            .roles()
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }
    fn families(&self) -> Vec<String> {
        self.matrix().families().to_vec()
    }
    fn label(&self) -> String {
        self.matrix().version().to_string()
    }
}

#[cfg(test)]
mod tests;
