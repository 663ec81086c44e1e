//! One input record in, every output record out: decode, decide, build the verdict and the
//! escalations, encode. No Kafka I/O here, so the whole mapping is testable without a broker;
//! the pipeline only sends what this returns.

use crate::config::{InputFormat, Settings};
use crate::escalation;
use crate::event::{Codec, CodecError, Level, SchemaKind};
use crate::event::{DigestItem, DigestReason};
use crate::fatigue::{Digests, Folded, REVIEW};
use crate::matrix::{Matrix, Trigger};
use crate::pipeline::stats::Stats;
use crate::state::{Effect, PartitionState, SessionRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use crate::event::wire::{dlq_headers, is_drill, DRILL_HEADER, KIND_HEADER};
pub use crate::output::Output;

/// What became of one input, for statistics.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Decided.
    Decided {
        /// Level.
        level: Level,
        /// Action type family (index into [`Stage::families`]; out of range is "other").
        family: usize,
        /// Roles (indexes into the matrix's roles) that got an escalation, with its tier.
        roles: Vec<(usize, crate::event::Tier)>,
        /// Triggers fired.
        triggers: Vec<Trigger>,
        /// Event time.
        event_ms: i64,
    },
    /// Parked on the dead-letter topic.
    DeadLetter {
        /// Short reason (`avro_decode`, `invalid_field`, …).
        reason: &'static str,
    },
    /// A human decision, applied or ignored (counted by the stage).
    HumanDecision,
}

/// An input record as received.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub payload: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [(String, Vec<u8>)],
}

/// What the pipeline runs for each input record: handoff's [`Processor`], or another stage
/// (the benchmark's passthrough) with the same Kafka machinery around it.
pub trait Stage: Send {
    /// Output topic names; [`Output::topic`] indexes into this.
    fn topics(&self) -> &[String];
    /// Maps one input record to its outputs (at least one).
    fn process(&mut self, input: Input<'_>, now_ms: i64, out: &mut Vec<Output>) -> Outcome;
    /// Drops whatever state the stage keeps for a revoked partition.
    fn forget_partition(&mut self, partition: i32);
    /// Role names for statistics (index = role in [`Outcome::Decided`]).
    fn role_names(&self) -> Vec<String>;
    /// Action type families for statistics (index = family in [`Outcome::Decided`]).
    fn families(&self) -> Vec<String> {
        Vec::new()
    }
    /// A label for logs and the `handoff_rule_info` metric (the rule version for handoff).
    fn label(&self) -> String;
    /// Receives the running pipeline's statistics (for counters the stage keeps itself).
    fn attach(&mut self, _stats: Arc<Stats>) {}
    /// The topic the stage restores its state from, partitioned like the input.
    fn changelog(&self) -> Option<usize> {
        None
    }
    /// Loads a newly assigned partition's state from its changelog records (key, value; a
    /// `None` value is a tombstone), oldest first.
    fn restore(&mut self, _partition: i32, _records: Vec<(Vec<u8>, Option<Vec<u8>>)>) {}
    /// Acts on whatever is due at `now_ms` (acknowledgement deadlines, digests).
    fn tick(&mut self, _now_ms: i64, _out: &mut Vec<Output>) {}
    /// True when the outputs of the last tick must be confirmed delivered ([`Stage::delivered`]).
    fn awaits_delivery(&self) -> bool {
        false
    }
    /// Called once the last tick's outputs are delivered.
    fn delivered(&mut self) {}
}

/// `dig-` and 24 hex digits of a hash of the target and the item keys.
fn digest_id(target: &str, items: &[Folded]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(target.as_bytes());
    for f in items {
        h.update([0x1f]);
        h.update(crate::fatigue::item_key(&f.item).as_bytes());
    }
    let d = h.finalize();
    let mut s = String::from("dig-");
    for b in &d[..12] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl Stage for Processor {
    fn topics(&self) -> &[String] {
        &self.topics
    }
    fn process(&mut self, input: Input<'_>, now_ms: i64, out: &mut Vec<Output>) -> Outcome {
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
        if let Some(twin) = self.drill.as_mut() {
            twin.attach(stats.clone());
        }
        self.stats = Some(stats);
    }
    fn changelog(&self) -> Option<usize> {
        Some(CHANGELOG)
    }
    fn restore(&mut self, partition: i32, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        Processor::restore(self, partition, records)
    }
    fn tick(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        Processor::tick(self, now_ms, out);
        self.in_twin(out, |twin, out| {
            Processor::tick(twin, now_ms, out);
        });
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
    codec: Codec,
    format: InputFormat,
    schema_ids: Vec<u32>,
    max_record_bytes: usize,
    /// Output topics: verdicts, dead letters, changelog, then one per matrix role (in role
    /// order).
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
    /// Where drill-marked records go (none in a drill processor).
    drill: Option<Box<Processor>>,
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
const FIRST_ROLE: usize = 4;

impl Processor {
    /// A processor for the given settings and matrix.
    pub fn new(settings: &Settings, matrix: Arc<Matrix>) -> Result<Self, CodecError> {
        let limits = crate::event::EventLimits::default();
        let codec = Codec::new(limits)?;
        let mut topics = vec![
            settings.topics.verdicts.clone(),
            settings.topics.dead_letter.clone(),
            settings.topics.changelog.clone(),
            settings.topics.review.clone(),
        ];
        topics.extend(
            matrix
                .roles()
                .iter()
                .map(|r| format!("{}{}", settings.topics.role_prefix, r.topic)),
        );
        // Outside drills, drill-marked records go to a twin whose every topic is a drill topic.
        let drill = if settings.is_drill() {
            None
        } else {
            let twin = Processor::new(&settings.drill(), matrix.clone())?;
            topics.extend(twin.topics.iter().cloned());
            Some(Box::new(twin))
        };
        Ok(Processor {
            codec,
            format: settings.input.format,
            schema_ids: settings.input.schema_ids.clone(),
            max_record_bytes: settings.input.max_record_bytes,
            topics,
            decisions_topic: settings.topics.decisions.clone(),
            states: HashMap::new(),
            stats: None,
            effects: Vec::new(),
            digests: Arc::new(Mutex::new(Digests::new(&matrix))),
            unconfirmed: Vec::new(),
            group_within_ms: matrix.spec().fatigue.group_within.as_millis() as i64,
            review_triggers: matrix.review_triggers(),
            sample_share: matrix.spec().fatigue.sample_execute_log,
            own_topics: FIRST_ROLE + matrix.roles().len(),
            retention_ms: settings.pipeline.state_retention.as_millis() as i64,
            last_expiry_ms: 0,
            drill,
            matrix,
        })
    }

    /// Shares rate limits and digests with the other processors of this process (one per
    /// worker).
    pub fn with_digests(mut self, digests: Arc<Mutex<Digests>>) -> Self {
        self.digests = digests;
        self
    }

    /// Rate limits and digests, to share.
    pub fn digests(&self) -> Arc<Mutex<Digests>> {
        self.digests.clone()
    }

    /// The state of a partition, if held.
    pub fn state(&self, partition: i32) -> Option<&PartitionState> {
        self.states.get(&partition)
    }

    fn count_pending(&self, state: &PartitionState, sign: i64) {
        if let Some(stats) = &self.stats {
            for (role, tier) in state.pending() {
                let e = if sign > 0 {
                    Effect::Opened(role, tier)
                } else {
                    Effect::Closed(role, tier)
                };
                stats.effect(&e, "");
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
                Some(v) => match serde_json::from_slice::<SessionRecord>(&v) {
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
                digests.fold(
                    &target,
                    Folded {
                        partition,
                        item,
                        drill: false,
                    },
                    at,
                );
            }
        }
        if let Some(old) = self.states.insert(partition, state) {
            self.count_pending(&old, -1);
        }
    }

    /// Fires the acknowledgement deadlines due at `now_ms`, in every partition held; sends the
    /// digests due; drops delivered digest items from the sessions' queues.
    pub fn tick(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let mut parts: Vec<i32> = self.states.keys().copied().collect();
        parts.sort_unstable();
        if now_ms - self.last_expiry_ms >= EXPIRY_EVERY_MS {
            // Sessions quiet for the retention time leave memory and the changelog.
            self.last_expiry_ms = now_ms;
            for &p in &parts {
                let state = self.states.get_mut(&p).expect("listed");
                let n = state.expire(now_ms, self.retention_ms);
                if n > 0 {
                    tracing::debug!(partition = p, sessions = n, "idle sessions expired");
                    let mut none = Vec::new();
                    self.emit(p, &mut none, out, false, now_ms);
                }
            }
        }
        for &p in &parts {
            let done = self.digests.lock().expect("digests lock").take_done(p);
            if done.is_empty() {
                continue;
            }
            let state = self.states.get_mut(&p).expect("listed");
            for (session, key) in done {
                state.unqueue(&session, &key);
            }
            let mut none = Vec::new();
            self.emit(p, &mut none, out, false, now_ms);
        }
        let due = self.digests.lock().expect("digests lock").take_due(now_ms);
        for d in due {
            let topic = if d.target == REVIEW {
                Some(REVIEW_TOPIC)
            } else {
                self.matrix.role_index(&d.target).map(|i| FIRST_ROLE + i)
            };
            let Some(topic) = topic else { continue };
            let digest = crate::event::Digest {
                digest_id: digest_id(&d.target, &d.items),
                target: d.target.clone(),
                first_at_ms: d.first_at_ms,
                sent_at_ms: now_ms,
                rule_version: self.matrix.version().to_string(),
                drill: d.items.iter().any(|f| f.drill),
                items: d.items.iter().map(|f| f.item.clone()).collect(),
            };
            let mut o = Output::new(
                topic,
                Some(d.target.as_bytes().to_vec()),
                self.codec
                    .encode(SchemaKind::Digest, &digest)
                    .expect("digests always encode"),
            );
            o.headers.push((KIND_HEADER.into(), b"digest".to_vec()));
            out.push(o);
            if let Some(stats) = &self.stats {
                stats.metrics.digest(&d.target);
            }
            tracing::info!(target_role = %d.target, items = d.items.len(), "digest sent");
            self.unconfirmed.extend(d.items);
        }
        for p in parts {
            let state = self.states.get_mut(&p).expect("listed");
            if state.next_deadline().is_none_or(|d| d > now_ms) {
                continue;
            }
            let mut effects = std::mem::take(&mut self.effects);
            state.fire_due(&self.matrix, now_ms, &mut effects);
            self.emit(p, &mut effects, out, true, now_ms);
            self.effects = effects;
        }
    }

    /// Turns effects into outputs (and counts them), then appends the state writes of the
    /// sessions changed; `defer` holds those writes until the effects are delivered.
    fn emit(
        &mut self,
        partition: i32,
        effects: &mut Vec<Effect>,
        out: &mut Vec<Output>,
        defer: bool,
        now_ms: i64,
    ) {
        for e in effects.drain(..) {
            let action_id = match &e {
                Effect::Verdict(v) => v.action_id.as_str(),
                Effect::Escalation(_, x) => x.action_id.as_str(),
                _ => "",
            };
            if let Some(stats) = &self.stats {
                stats.effect(&e, action_id);
                if let Effect::Escalation(role, x) = &e {
                    stats.metrics.escalated(*role, x.tier);
                }
                if let Effect::Verdict(_) = &e {
                    stats.metrics.verdicts.inc();
                }
            }
            match e {
                Effect::Verdict(v) => out.push(Output::new(
                    VERDICTS,
                    Some(v.action_id.as_bytes().to_vec()),
                    self.codec
                        .encode(SchemaKind::Verdict, &*v)
                        .expect("verdicts always encode"),
                )),
                Effect::Escalation(role, x) => out.push(Output::new(
                    FIRST_ROLE + role,
                    Some(x.session_id.as_bytes().to_vec()),
                    self.codec
                        .encode(SchemaKind::Escalation, &*x)
                        .expect("escalations always encode"),
                )),
                _ => {}
            }
        }
        let state = self.states.get_mut(&partition).expect("present");
        for (session, record) in state.take_dirty(now_ms) {
            let payload = record
                .map(|r| {
                    let mut buf = Vec::with_capacity(4096);
                    serde_json::to_writer(&mut buf, r).expect("session records serialize");
                    buf
                })
                .unwrap_or_default();
            let mut o = Output::new(CHANGELOG, Some(session.into_bytes()), payload);
            o.partition = Some(partition);
            o.deferred = defer;
            out.push(o);
        }
    }

    /// The Avro datum of an input record, after the configured framing.
    fn unframe<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], (&'static str, String)> {
        match self.format {
            InputFormat::Avro => Ok(bytes),
            InputFormat::Confluent => crate::event::wire::unframe(&self.schema_ids, bytes)
                .map_err(|e| (e.reason, e.message)),
        }
    }

    /// The matrix deciding.
    pub fn matrix(&self) -> &Matrix {
        &self.matrix
    }

    /// Maps one input record to its outputs. `now_ms` comes from the caller's clock.
    pub fn process(&mut self, input: Input<'_>, now_ms: i64, out: &mut Vec<Output>) -> Outcome {
        let decision = input.topic == self.decisions_topic;
        if is_drill(input.headers) {
            let outcome = self.in_twin(out, |twin, out| {
                if decision {
                    twin.process_decision(input, now_ms, out)
                } else {
                    twin.process_action(input, now_ms, out)
                }
            });
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
        if decision {
            return self.process_decision(input, now_ms, out);
        }
        self.process_action(input, now_ms, out)
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

    /// Decides one agent action record.
    fn process_action(&mut self, input: Input<'_>, now_ms: i64, out: &mut Vec<Output>) -> Outcome {
        let payload = input.payload.unwrap_or(&[]);
        let decoded = if payload.len() > self.max_record_bytes {
            Err((
                "too_large",
                format!(
                    "record of {} bytes is larger than input.max_record_bytes = {}",
                    payload.len(),
                    self.max_record_bytes
                ),
            ))
        } else if input.payload.is_none() {
            Err(("empty", "the record has no value".to_string()))
        } else {
            self.unframe(payload).and_then(|datum| {
                self.codec
                    .decode_action(datum)
                    .map_err(|e| (e.reason(), e.to_string()))
            })
        };
        let event = match decoded {
            Ok(e) => e,
            Err((reason, message)) => {
                out.push(self.dead_letter(input, reason, &message));
                return Outcome::DeadLetter { reason };
            }
        };
        let state = self.states.entry(input.partition).or_default();
        let (before, apply) = state.state_for(&event.session_id, input.offset);
        let decision = self.matrix.evaluate(&event, &before);
        if apply {
            state.apply_streak(&event.session_id, input.offset, before, decision.session);
        }
        let drill = is_drill(input.headers);
        let mut plan = escalation::plan(&self.matrix, &event, &decision, now_ms, drill);
        let mut roles = Vec::with_capacity(plan.escalations.len());
        let mut effects = std::mem::take(&mut self.effects);
        // Trigger names are only needed for hand-overs (most events have none).
        let triggers = if decision.level.needs_human() {
            decision.triggers.names()
        } else {
            Vec::new()
        };
        if decision.level.needs_human() {
            let grouped = state.open(
                &self.matrix,
                &event,
                before,
                decision.level,
                &triggers,
                drill,
                &plan.escalations,
                self.group_within_ms,
                now_ms,
                &mut effects,
            );
            if let Some(g) = grouped {
                // Joined an open escalation: publish it as an update under its id.
                for (role, esc) in plan.escalations.iter_mut() {
                    if let Some((_, id, created, deadline, seq)) =
                        g.escalations.iter().find(|x| x.0 == esc.role)
                    {
                        esc.escalation_id = id.clone();
                        esc.created_at_ms = *created;
                        esc.deadline_ms = deadline.unwrap_or(esc.deadline_ms);
                        esc.sequence = *seq;
                        esc.grouped_action_ids = g.members.clone();
                        if g.new {
                            if let Some(stats) = &self.stats {
                                stats.metrics.grouped(*role);
                            }
                        }
                    }
                }
                plan.verdict.escalation_ids = plan
                    .escalations
                    .iter()
                    .map(|(_, e)| e.escalation_id.clone())
                    .collect();
            }
        } else {
            let review = ReviewRules {
                triggers: self.review_triggers,
                sample_share: self.sample_share,
                digests: &self.digests,
                stats: self.stats.as_deref(),
            };
            review.apply(state, &event, &decision, input.partition, drill, now_ms);
        }
        for (role, esc) in &plan.escalations {
            roles.push((*role, esc.tier));
            let admitted = self
                .digests
                .lock()
                .expect("digests lock")
                .admit(&esc.role, now_ms);
            if admitted {
                let mut o = Output::new(
                    FIRST_ROLE + role,
                    Some(event.session_id.as_bytes().to_vec()),
                    self.codec
                        .encode(SchemaKind::Escalation, esc)
                        .expect("escalations always encode"),
                );
                o.headers.push((KIND_HEADER.into(), b"escalation".to_vec()));
                out.push(o);
            } else {
                let item = DigestItem {
                    reason: DigestReason::RateLimited,
                    escalation_id: Some(esc.escalation_id.clone()),
                    action_id: event.action_id.clone(),
                    session_id: event.session_id.clone(),
                    agent_id: event.agent_id.clone(),
                    action_type: event.action_type.clone(),
                    level: decision.level,
                    tier: Some(esc.tier),
                    headline: esc.context.headline.clone(),
                    triggers: triggers.clone(),
                    created_at_ms: now_ms,
                    deadline_ms: Some(esc.deadline_ms),
                };
                state.queue(&event.session_id, &esc.role, item.clone());
                self.digests.lock().expect("digests lock").fold(
                    &esc.role,
                    Folded {
                        partition: input.partition,
                        item,
                        drill,
                    },
                    now_ms,
                );
                if let Some(stats) = &self.stats {
                    stats.metrics.folded(*role);
                }
            }
        }
        out.push(Output::new(
            VERDICTS,
            Some(event.action_id.as_bytes().to_vec()),
            self.codec
                .encode(SchemaKind::Verdict, &plan.verdict)
                .expect("verdicts always encode"),
        ));
        self.emit(input.partition, &mut effects, out, false, now_ms);
        self.effects = effects;
        Outcome::Decided {
            level: decision.level,
            family: self.matrix.family_index(&event.action_type),
            roles,
            triggers: decision.triggers.iter().collect(),
            event_ms: event.timestamp_ms,
        }
    }
}

/// What sends an event to the review queue.
struct ReviewRules<'a> {
    triggers: crate::matrix::TriggerSet,
    sample_share: f64,
    digests: &'a Mutex<Digests>,
    stats: Option<&'a Stats>,
}

impl ReviewRules<'_> {
    /// Sends a decided event that needs no human to the review queue when a rule defers it or
    /// the sampling of `execute_log` picks it.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        state: &mut PartitionState,
        event: &crate::event::AgentAction,
        decision: &crate::matrix::Decision,
        partition: i32,
        drill: bool,
        now_ms: i64,
    ) {
        let deferred = decision.triggers.iter().any(|t| self.triggers.contains(t));
        let sampled = !deferred
            && decision.level == Level::ExecuteLog
            && crate::fatigue::sampled(&event.action_id, self.sample_share);
        if !deferred && !sampled {
            return;
        }
        let item = DigestItem {
            reason: if deferred {
                DigestReason::Deferred
            } else {
                DigestReason::Sampled
            },
            escalation_id: None,
            action_id: event.action_id.clone(),
            session_id: event.session_id.clone(),
            agent_id: event.agent_id.clone(),
            action_type: event.action_type.clone(),
            level: decision.level,
            tier: None,
            headline: crate::context::headline(event, decision),
            triggers: decision.triggers.names(),
            created_at_ms: now_ms,
            deadline_ms: None,
        };
        state.queue(&event.session_id, REVIEW, item.clone());
        self.digests.lock().expect("digests lock").fold(
            REVIEW,
            Folded {
                partition,
                item,
                drill,
            },
            now_ms,
        );
        if let Some(stats) = self.stats {
            stats.metrics.review(sampled);
        }
    }
}

impl Processor {
    /// Applies one human decision: the final verdict (or the redirect), metrics, and the state
    /// write — held back until the verdict is delivered, so a crash cannot record a decision as
    /// applied whose verdict was lost.
    fn process_decision(
        &mut self,
        input: Input<'_>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Outcome {
        let decoded = match input.payload {
            None => Err(("empty", "the record has no value".to_string())),
            Some(p) if p.len() > self.max_record_bytes => Err((
                "too_large",
                format!(
                    "record of {} bytes is larger than input.max_record_bytes = {}",
                    p.len(),
                    self.max_record_bytes
                ),
            )),
            Some(p) => self
                .codec
                .decode::<crate::event::HumanDecision>(SchemaKind::HumanDecision, p)
                .map_err(|e| (e.reason(), e.to_string())),
        };
        let d = match decoded {
            Ok(d) => d,
            Err((reason, message)) => {
                out.push(self.dead_letter(input, reason, &message));
                return Outcome::DeadLetter { reason };
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
                return Outcome::DeadLetter {
                    reason: "invalid_decision",
                };
            }
            Err(why) => {
                if let Some(stats) = &self.stats {
                    stats.decision_ignored(&why, input.partition, input.offset);
                }
            }
        }
        self.emit(input.partition, &mut effects, out, true, now_ms);
        self.effects = effects;
        Outcome::HumanDecision
    }

    fn dead_letter(&self, input: Input<'_>, reason: &'static str, message: &str) -> Output {
        let mut headers: Vec<(String, Vec<u8>)> = input.headers.to_vec();
        headers.push((dlq_headers::TOPIC.into(), input.topic.as_bytes().to_vec()));
        headers.push((
            dlq_headers::PARTITION.into(),
            input.partition.to_string().into_bytes(),
        ));
        headers.push((
            dlq_headers::OFFSET.into(),
            input.offset.to_string().into_bytes(),
        ));
        headers.push((dlq_headers::CLASS.into(), reason.as_bytes().to_vec()));
        headers.push((dlq_headers::MESSAGE.into(), message.as_bytes().to_vec()));
        headers.push((
            dlq_headers::ERROR_CLASS.into(),
            crate::error::ErrorClass::DeadLetter
                .as_str()
                .as_bytes()
                .to_vec(),
        ));
        let mut o = Output::new(
            DEAD_LETTER,
            input.key.map(<[u8]>::to_vec),
            input.payload.unwrap_or(&[]).to_vec(),
        );
        o.headers = headers;
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::fleet::{Fleet, FleetConfig};

    fn processor(settings: &Settings) -> Processor {
        Processor::new(settings, Arc::new(Matrix::default_matrix().unwrap())).unwrap()
    }

    fn input<'a>(payload: &'a [u8], headers: &'a [(String, Vec<u8>)]) -> Input<'a> {
        Input {
            topic: "agent.actions",
            partition: 2,
            offset: 41,
            key: Some(b"sess"),
            payload: Some(payload),
            headers,
        }
    }

    #[test]
    fn every_valid_event_yields_one_verdict_and_one_escalation_per_role() {
        let settings = Settings::default();
        let mut p = processor(&settings);
        let codec = Codec::new(Default::default()).unwrap();
        let mut fleet = Fleet::new(FleetConfig {
            trigger_boost: 8.0,
            ..Default::default()
        });
        let mut out = Vec::new();
        for _ in 0..500 {
            let e = fleet.next_event();
            let bytes = codec.encode(SchemaKind::AgentAction, &e).unwrap();
            out.clear();
            let outcome = p.process(input(&bytes, &[]), 1, &mut out);
            let Outcome::Decided { roles, .. } = outcome else {
                panic!("valid event dead-lettered")
            };
            assert_eq!(out.iter().filter(|o| o.topic == VERDICTS).count(), 1);
            let changelog = out.iter().filter(|o| o.topic == CHANGELOG).count();
            assert_eq!(out.len(), 1 + roles.len() + changelog);
            assert!(changelog <= 1, "one session, at most one state write");
            if !roles.is_empty() {
                assert_eq!(changelog, 1, "opened escalations are state");
            }
            let verdict = out.iter().find(|o| o.topic == VERDICTS).unwrap();
            let v: crate::event::Verdict =
                codec.decode(SchemaKind::Verdict, &verdict.payload).unwrap();
            assert_eq!(v.action_id, e.action_id);
            assert_eq!(verdict.key.as_deref(), Some(e.action_id.as_bytes()));
            for (o, (role, _)) in out.iter().zip(&roles) {
                assert_eq!(p.topics()[o.topic], p.matrix().roles()[*role].topic);
                assert_eq!(o.key.as_deref(), Some(e.session_id.as_bytes()));
            }
            for o in out.iter().filter(|o| o.topic == CHANGELOG) {
                assert_eq!(o.partition, Some(2), "state stays in the input's partition");
                assert_eq!(o.key.as_deref(), Some(e.session_id.as_bytes()));
            }
        }
    }

    #[test]
    fn bad_records_become_dead_letters_with_their_bytes_and_connect_headers() {
        let settings = Settings::default();
        let mut p = processor(&settings);
        let original = vec![("trace".to_string(), b"abc".to_vec())];
        let mut out = Vec::new();
        let outcome = p.process(input(b"\x02garbage", &original), 1, &mut out);
        assert_eq!(
            outcome,
            Outcome::DeadLetter {
                reason: "avro_decode"
            }
        );
        assert_eq!(out.len(), 1);
        let dl = &out[0];
        assert_eq!(dl.topic, DEAD_LETTER);
        assert_eq!(dl.payload, b"\x02garbage");
        assert_eq!(dl.key.as_deref(), Some(&b"sess"[..]));
        let h = |k: &str| {
            dl.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| String::from_utf8_lossy(v).to_string())
                .unwrap_or_else(|| panic!("missing header {k}"))
        };
        assert_eq!(h("trace"), "abc");
        assert_eq!(h(dlq_headers::TOPIC), "agent.actions");
        assert_eq!(h(dlq_headers::PARTITION), "2");
        assert_eq!(h(dlq_headers::OFFSET), "41");
        assert_eq!(h(dlq_headers::CLASS), "avro_decode");
        assert!(h(dlq_headers::MESSAGE).contains("AgentAction"));
    }

    #[test]
    fn confluent_framing_is_checked() {
        let mut settings = Settings::default();
        settings.input.format = InputFormat::Confluent;
        settings.input.schema_ids = vec![7];
        let mut p = processor(&settings);
        let codec = Codec::new(Default::default()).unwrap();
        let e = Fleet::new(FleetConfig::default()).next_event();
        let datum = codec.encode(SchemaKind::AgentAction, &e).unwrap();
        let framed = |id: u32| {
            let mut b = vec![0u8];
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&datum);
            b
        };
        let mut out = Vec::new();
        assert!(matches!(
            p.process(input(&framed(7), &[]), 1, &mut out),
            Outcome::Decided { .. }
        ));
        out.clear();
        assert_eq!(
            p.process(input(&framed(8), &[]), 1, &mut out),
            Outcome::DeadLetter {
                reason: "unknown_schema"
            }
        );
        out.clear();
        assert_eq!(
            p.process(input(&datum, &[]), 1, &mut out),
            Outcome::DeadLetter {
                reason: "wire_format"
            }
        );
    }

    #[test]
    fn out_of_range_values_and_oversized_records_are_dead_letters() {
        let mut settings = Settings::default();
        settings.input.max_record_bytes = 2048;
        let mut p = processor(&settings);
        let codec = Codec::new(Default::default()).unwrap();
        let mut e = Fleet::new(FleetConfig::default()).next_event();
        e.confidence = 3.0;
        let bytes = codec.encode(SchemaKind::AgentAction, &e).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            p.process(input(&bytes, &[]), 1, &mut out),
            Outcome::DeadLetter {
                reason: "invalid_field"
            }
        );
        let msg = String::from_utf8(
            out[0]
                .headers
                .iter()
                .find(|(k, _)| k == dlq_headers::MESSAGE)
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        assert!(msg.contains("`confidence`") && msg.contains('3'), "{msg}");
        out.clear();
        assert_eq!(
            p.process(input(&vec![0u8; 3000], &[]), 1, &mut out),
            Outcome::DeadLetter {
                reason: "too_large"
            }
        );
    }
}
