//! One input record in, every output record out: decode, decide, build the verdict and the
//! escalations, encode. No Kafka I/O here, so the whole mapping is testable without a broker;
//! the pipeline only sends what this returns.

use crate::config::{InputFormat, Settings};
use crate::error::{Classify, ErrorClass};
use crate::escalation;
use crate::event::{Codec, CodecError, SchemaKind};
use crate::fatigue::{Digests, Folded};
use crate::matrix::{Matrix, Rules};
use crate::pipeline::stats::Stats;
use crate::state::{Effect, PartitionState, SessionRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::event::wire::is_drill;
use crate::output::Output;

mod adopt;
mod emit;
mod framing;

use adopt::family_slots;
mod stage;

pub use stage::{Input, Outcome, Stage, StageError};

/// `dig-` and 24 hex digits of a hash of the target and the item keys.
fn digest_id(target: &str, items: &[Folded]) -> String {
    let keys: Vec<String> = items
        .iter()
        .map(|f| crate::fatigue::item_key(&f.item))
        .collect();
    let mut parts = vec![target];
    parts.extend(keys.iter().map(String::as_str));
    escalation::hashed_id("dig-", &parts)
}

impl Stage for Processor {
    fn topics(&self) -> &[String] {
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
        if let Some(state) = self.states.remove(&partition) {
            self.count_pending(&state, -1);
        }
        if let Some(twin) = self.drill.as_mut() {
            twin.forget_partition(partition);
        }
    }
    fn attach(&mut self, stats: Arc<Stats>) {
        self.attach_registry(&stats.metrics);
        if let Some(twin) = self.drill.as_mut() {
            twin.attach(stats.clone());
        }
        self.family_slots = family_slots(&stats, &self.matrix);
        self.stats = Some(stats);
    }
    fn changelog(&self) -> Option<usize> {
        Some(CHANGELOG)
    }
    fn restore(&mut self, partition: i32, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        Processor::restore(self, partition, records)
    }
    fn tick(&mut self, now_ms: i64, out: &mut Vec<Output>) -> Result<(), StageError> {
        self.refresh();
        Processor::tick(self, now_ms, out)?;
        self.in_twin(out, |twin, out| Processor::tick(twin, now_ms, out))
            .unwrap_or(Ok(()))
    }
    fn awaits_delivery(&self) -> bool {
        !self.unconfirmed.is_empty() || self.drill.as_ref().is_some_and(|t| t.awaits_delivery())
    }
    fn delivered(&mut self) {
        let items = std::mem::take(&mut self.unconfirmed);
        self.digests.lock().expect("digests lock").confirm(&items);
        if let Some(twin) = self.drill.as_mut() {
            twin.delivered();
        }
    }
    fn role_names(&self) -> Vec<String> {
        self.matrix.roles().iter().map(|r| r.name.clone()).collect()
    }
    fn families(&self) -> Vec<String> {
        self.matrix.families().to_vec()
    }
    fn label(&self) -> String {
        self.matrix.version().to_string()
    }
}

/// Turns input records into output records, keeping per-partition session state.
pub struct Processor {
    matrix: Arc<Matrix>,
    codec: Arc<Codec>,
    format: InputFormat,
    schema_ids: Vec<u32>,
    max_record_bytes: usize,
    /// Largest record the producer sends (`message.max.bytes`): a dead letter whose original
    /// value would not fit is written without it.
    max_output_bytes: usize,
    /// Output topics: verdicts, dead letters, changelog, review, canaries, then one per matrix
    /// role (in role order); the drill twin's follow.
    topics: Vec<String>,
    decisions_topic: String,
    states: HashMap<i32, PartitionState>,
    stats: Option<Arc<Stats>>,
    effects: Vec<Effect>,
    digests: Arc<Mutex<Digests>>,
    /// Items of digests sent by the last tick, confirmed once they are delivered.
    unconfirmed: Vec<Folded>,
    group_within_ms: i64,
    review_triggers: crate::matrix::TriggerSet,
    sample_share: f64,
    /// Topics of this processor's own outputs; the drill twin's follow.
    own_topics: usize,
    /// Sessions with nothing open are forgotten after this long without a change.
    retention_ms: i64,
    last_expiry_ms: i64,
    /// False for the drill twin: its state lives in memory only (it is never restored).
    persist_state: bool,
    /// How changelog records are written.
    changelog_format: crate::state::ChangelogFormat,
    /// Where drill-marked records go (none in a drill processor).
    drill: Option<Box<Processor>>,
    /// The rules to follow when they change (none: `matrix` decides for good).
    rules: Option<Arc<Rules>>,
    /// The generation of `rules` that `matrix` is.
    generation: u64,
    /// Role topics are this followed by the role's topic.
    role_prefix: String,
    /// Metrics slot of each of the matrix's action type families.
    family_slots: Vec<usize>,
    /// The schema registry, when configured.
    framing: framing::Framing,
}

/// The topic of each of the matrix's roles, in role order.
fn role_topics<'a>(prefix: &'a str, matrix: &'a Matrix) -> impl Iterator<Item = String> + 'a {
    matrix
        .roles()
        .iter()
        .map(move |r| crate::config::role_topic_under(prefix, &r.topic))
}

/// How often idle sessions are looked for.
const EXPIRY_EVERY_MS: i64 = 60_000;

/// Index of the verdicts topic in [`Processor::topics`].
pub const VERDICTS: usize = 0;
/// Index of the dead-letter topic.
pub const DEAD_LETTER: usize = 1;
/// Index of the changelog topic.
pub const CHANGELOG: usize = 2;
/// Index of the review topic.
pub const REVIEW_TOPIC: usize = 3;
/// Index of the canaries topic.
pub const CANARIES: usize = 4;
const FIRST_ROLE: usize = 5;

/// Rate limits and digests, for production and for drill traffic (never mixed: a digest
/// to a real person's topic must not list drill items).
#[derive(Clone)]
struct SharedDigests {
    production: Arc<Mutex<Digests>>,
    drill: Arc<Mutex<Digests>>,
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

impl Processor {
    /// A processor for the given settings and matrix.
    pub fn new(settings: &Settings, matrix: Arc<Matrix>) -> Result<Self, StartError> {
        let limits = crate::event::EventLimits::default();
        let codec =
            Arc::new(Codec::new(limits)?.with_max_record_bytes(settings.input.max_record_bytes));
        let digests = SharedDigests {
            production: Arc::new(Mutex::new(Digests::new(&matrix))),
            drill: Arc::new(Mutex::new(Digests::new(&matrix))),
        };
        let mut p = Processor::build(settings, matrix, codec, digests, true);
        p.connect_registry(settings)?;
        Ok(p)
    }

    /// Another processor like this one (for another worker), sharing its schemas, rate
    /// limits and digests.
    pub fn sibling(&self, settings: &Settings) -> Processor {
        let digests = SharedDigests {
            production: self.digests.clone(),
            drill: self
                .drill
                .as_ref()
                .map_or_else(|| self.digests.clone(), |t| t.digests.clone()),
        };
        let mut p = Processor::build(
            settings,
            self.matrix.clone(),
            self.codec.clone(),
            digests,
            self.persist_state,
        );
        p.share_registry(self);
        if let Some(rules) = &self.rules {
            p = p.following(rules.clone());
        }
        p
    }

    /// This processor, taking the matrix of `rules` whenever it changes (between records).
    pub fn following(mut self, rules: Arc<Rules>) -> Processor {
        self.rules = Some(rules);
        self.generation = u64::MAX;
        self.refresh();
        self
    }

    fn build(
        settings: &Settings,
        matrix: Arc<Matrix>,
        codec: Arc<Codec>,
        digests: SharedDigests,
        persist_state: bool,
    ) -> Processor {
        let mut topics = vec![
            settings.topics.verdicts.clone(),
            settings.topics.dead_letter.clone(),
            settings.topics.changelog.clone(),
            settings.topics.review.clone(),
            settings.topics.canaries.clone(),
        ];
        topics.extend(role_topics(&settings.topics.role_prefix, &matrix));
        let own_topics = topics.len();
        // Outside drills, drill-marked records go to a twin whose every topic is a drill topic.
        let drill = (!settings.is_drill()).then(|| {
            let twin = Processor::build(
                &settings.drill(),
                matrix.clone(),
                codec.clone(),
                digests.clone(),
                false,
            );
            topics.extend(twin.topics.iter().cloned());
            Box::new(twin)
        });
        let own_digests = if settings.is_drill() {
            digests.drill
        } else {
            digests.production
        };
        Processor {
            codec,
            format: settings.input.format,
            schema_ids: settings.input.schema_ids.clone(),
            max_record_bytes: settings.input.max_record_bytes,
            max_output_bytes: settings.kafka.message_max_bytes(),
            topics,
            decisions_topic: settings.topics.decisions.clone(),
            states: HashMap::new(),
            stats: None,
            effects: Vec::new(),
            digests: own_digests,
            unconfirmed: Vec::new(),
            group_within_ms: matrix.spec().fatigue.group_within.as_millis() as i64,
            review_triggers: matrix.review_triggers(),
            sample_share: matrix.spec().fatigue.sample_execute_log,
            own_topics,
            retention_ms: settings.pipeline.state_retention.as_millis() as i64,
            last_expiry_ms: 0,
            persist_state,
            changelog_format: settings.pipeline.changelog_format,
            drill,
            matrix,
            rules: None,
            generation: 0,
            role_prefix: settings.topics.role_prefix.clone(),
            family_slots: Vec::new(),
            framing: Default::default(),
        }
    }

    /// The state of a partition, if held.
    pub fn state(&self, partition: i32) -> Option<&PartitionState> {
        self.states.get(&partition)
    }

    /// The matrix deciding.
    pub fn matrix(&self) -> &Matrix {
        &self.matrix
    }

    fn count_pending(&self, state: &PartitionState, sign: i64) {
        if let Some(stats) = &self.stats {
            for (role, tier) in state.pending() {
                let e = if sign > 0 {
                    Effect::Opened(role, tier)
                } else {
                    Effect::Closed(role, tier)
                };
                stats.effect(&e);
            }
        }
    }

    /// Loads a partition's state from its changelog records, oldest first.
    pub fn restore(&mut self, partition: i32, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        let mut state = PartitionState::new();
        let mut bad = 0usize;
        let n = records.len();
        for (key, value) in records {
            let session = String::from_utf8_lossy(&key).into_owned();
            match value.filter(|v| !v.is_empty()) {
                None => state.restore(&session, None),
                Some(v) => match SessionRecord::decode(&v) {
                    Ok(r) => state.restore(&session, Some(r)),
                    Err(e) => {
                        bad += 1;
                        tracing::warn!(partition, session = %session, error = %e, "changelog record unreadable; skipped");
                    }
                },
            }
        }
        tracing::info!(
            partition,
            records = n,
            sessions = state.sessions(),
            pending = state.pending().len(),
            unreadable = bad,
            "state restored from the changelog"
        );
        self.count_pending(&state, 1);
        {
            // Items folded but not confirmed delivered go into the next digests again.
            let mut digests = self.digests.lock().expect("digests lock");
            for (target, item) in state.queued() {
                let at = item.created_at_ms;
                let folded = Folded {
                    partition,
                    item,
                    drill: false,
                };
                digests.fold(&target, folded, at);
            }
        }
        if let Some(old) = self.states.insert(partition, state) {
            self.count_pending(&old, -1);
        }
    }

    /// Maps one input record to its outputs. `now_ms` comes from the caller's clock.
    pub fn process(
        &mut self,
        input: Input<'_>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        self.refresh();
        let decision = input.topic == self.decisions_topic;
        if is_drill(input.headers) {
            let outcome = self.in_twin(out, |twin, out| {
                twin.process_one(decision, input, now_ms, out)
            });
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
        self.process_one(decision, input, now_ms, out)
    }

    fn process_one(
        &mut self,
        decision: bool,
        input: Input<'_>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        if decision {
            self.process_decision(input, now_ms, out)
        } else {
            self.process_action(input, now_ms, out)
        }
    }

    /// Runs `f` on the drill twin, if there is one, and moves the outputs it adds to the twin's
    /// topics (which follow this processor's own in [`Processor::topics`]).
    fn in_twin<T>(
        &mut self,
        out: &mut Vec<Output>,
        f: impl FnOnce(&mut Processor, &mut Vec<Output>) -> T,
    ) -> Option<T> {
        let twin = self.drill.as_mut()?;
        let from = out.len();
        let result = f(twin, out);
        for o in &mut out[from..] {
            o.topic += self.own_topics;
        }
        Some(result)
    }

    /// The value of an input record within the size limit, or why it is a dead letter.
    fn value<'a>(&self, input: &Input<'a>) -> Result<&'a [u8], Refusal> {
        match input.payload {
            None => Err(Refusal::DeadLetter(
                "empty",
                "the record has no value (null)".to_string(),
            )),
            Some([]) => Err(Refusal::DeadLetter(
                "empty",
                "the record's value is empty (0 bytes)".to_string(),
            )),
            Some(p) if p.len() > self.max_record_bytes => Err(Refusal::DeadLetter(
                "too_large",
                format!(
                    "record of {} bytes is larger than input.max_record_bytes = {}",
                    p.len(),
                    self.max_record_bytes
                ),
            )),
            Some(p) => Ok(p),
        }
    }

    /// Decides one agent action record: decode → evaluate → plan → state (the hand-overs as
    /// effects) → the one output path.
    fn process_action(
        &mut self,
        input: Input<'_>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        let decoded = self.value(&input).and_then(|v| {
            let canary = crate::event::canary::expected(input.headers)
                .map_err(|e| Refusal::DeadLetter("canary_header", e.to_string()))?;
            Ok((self.decode_action(v)?, canary))
        });
        let (event, canary) = match decoded {
            Ok(e) => e,
            Err(Refusal::Fatal(e)) => return Err(e),
            Err(Refusal::DeadLetter(reason, message)) => {
                out.push(self.dead_letter(input, reason, &message));
                return Ok(Outcome::DeadLetter { reason });
            }
        };
        let state = self.states.entry(input.partition).or_default();
        let (before, apply) = state.state_for(&event.session_id, input.offset);
        let decision = self.matrix.evaluate(&event, &before);
        if apply {
            state.apply_streak(&event.session_id, input.offset, before, decision.session);
        }
        let drill = is_drill(input.headers);
        let plan = escalation::plan(&self.matrix, &event, &decision, now_ms, drill);
        // Trigger names are only needed for hand-overs (most events have none).
        let needs_human = decision.level.needs_human();
        let triggers = if needs_human {
            decision.triggers.names()
        } else {
            Vec::new()
        };
        let mut effects = std::mem::take(&mut self.effects);
        state.hand_over(
            &self.matrix,
            &event,
            before,
            &triggers,
            plan,
            self.group_within_ms,
            now_ms,
            &mut effects,
        );
        if let Some(expect) = canary {
            // Decided like any other; kept from the agents and from the real metrics.
            state.mark_canary(&event.session_id, &event.action_id, expect);
            crate::state::disguise(&mut effects, 0, expect);
        } else if !needs_human {
            if let Some(item) = self.review_item(&event, &decision, now_ms) {
                effects.push(Effect::Review(Box::new(item)));
            }
        }
        let emitted = self.emit(input.partition, &mut effects, out, false, now_ms);
        self.effects = effects;
        emitted?;
        if canary.is_some() {
            return Ok(Outcome::Canary);
        }
        Ok(Outcome::Decided {
            level: decision.level,
            family: self.family_slot(&event.action_type),
            triggers: decision.triggers.iter().collect(),
            event_ms: event.timestamp_ms,
        })
    }

    /// Applies one human decision: the final verdict (or the redirect), metrics, and the state
    /// write — held back until the verdict is delivered, so a crash cannot record a decision as
    /// applied whose verdict was lost.
    fn process_decision(
        &mut self,
        input: Input<'_>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        let decoded = self.value(&input).and_then(|p| {
            self.codec
                .decode::<crate::event::HumanDecision>(SchemaKind::HumanDecision, p)
                .map_err(refusal)
        });
        let d = match decoded {
            Ok(d) => d,
            Err(Refusal::Fatal(e)) => return Err(e),
            Err(Refusal::DeadLetter(reason, message)) => {
                out.push(self.dead_letter(input, reason, &message));
                return Ok(Outcome::DeadLetter { reason });
            }
        };
        if d.drill {
            // An answer to a drill escalation: the drill twin holds it.
            let outcome = self.in_twin(out, |twin, out| twin.process_decision(input, now_ms, out));
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
        let state = self.states.entry(input.partition).or_default();
        let mut effects = std::mem::take(&mut self.effects);
        match state.decide(&self.matrix, &d, now_ms, &mut effects) {
            Ok(()) => {}
            Err(crate::state::Ignored::Invalid(message)) => {
                self.effects = effects;
                out.push(self.dead_letter(input, "invalid_decision", &message));
                return Ok(Outcome::DeadLetter {
                    reason: "invalid_decision",
                });
            }
            Err(why) => {
                if let Some(stats) = &self.stats {
                    stats.decision_ignored(&why, input.partition, input.offset);
                }
            }
        }
        let emitted = self.emit(input.partition, &mut effects, out, true, now_ms);
        self.effects = effects;
        emitted?;
        Ok(Outcome::HumanDecision)
    }
}

/// Why an input record is not decided: bad input (a dead letter naming the reason) or a
/// defect of handoff's own (fatal).
enum Refusal {
    DeadLetter(&'static str, String),
    Fatal(StageError),
}

/// The error class decides: bad input is a dead letter, anything else stops the pipeline.
fn refusal(e: CodecError) -> Refusal {
    match e.class() {
        ErrorClass::DeadLetter => Refusal::DeadLetter(e.reason(), e.to_string()),
        ErrorClass::Fatal | ErrorClass::Retry => Refusal::Fatal(StageError {
            what: "input record",
            id: e.reason().to_string(),
            source: Box::new(e),
        }),
    }
}

#[cfg(test)]
mod tests;
