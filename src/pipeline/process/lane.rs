//! One lane of records — the processor's own, or its drill twin's: each agent action decided
//! (decode → evaluate → plan → state → the one output path), each human decision applied, the
//! partitions' session state kept. Its parts: [`Deciding`] (the rules and what is derived from
//! them), [`Reading`] (input) and [`Writing`] (outputs).

use super::read::{Reading, Refusal, Signed};
use super::stage::{Input, Outcome, StageError};
use super::writing::{Writes, Writing};
use crate::config::Settings;
use crate::escalation;
use crate::event::Codec;
use crate::fatigue::{Digests, Folded};
use crate::matrix::{Matrix, Rules, TriggerSet};
use crate::output::Output;
use crate::pipeline::stats::Stats;
use crate::state::{Effect, HandOver, PartitionState, SessionRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The rules deciding, and what is derived from them (again at each change: `adopt.rs`).
pub(super) struct Deciding {
    /// The matrix deciding.
    pub(super) matrix: Arc<Matrix>,
    /// The rules to follow when they change (none: `matrix` decides for good).
    pub(super) rules: Option<Arc<Rules>>,
    /// The generation of `rules` that `matrix` is.
    pub(super) generation: u64,
    /// A new escalation within this of an open one of the session updates it.
    pub(super) group_within_ms: i64,
    /// Triggers whose outcome sends events to the review queue.
    pub(super) review_triggers: TriggerSet,
    /// Share of `execute_log` actions sampled for the review queue.
    pub(super) sample_share: f64,
    /// Metrics slot of each of the matrix's action type families.
    pub(super) family_slots: Vec<usize>,
}

/// One lane: its parts, and the state of the partitions it holds.
pub(super) struct Lane {
    pub(super) decide: Deciding,
    pub(super) read: Reading,
    pub(super) write: Writing,
    /// Session state per partition held.
    pub(super) states: HashMap<i32, PartitionState>,
    /// Reused buffer of the effects of one record.
    effects: Vec<Effect>,
    /// The running pipeline's counters, once attached.
    pub(super) stats: Option<Arc<Stats>>,
}

impl Lane {
    /// A lane under `settings` (the drill twin's: drill settings, `persist_state` false).
    pub(super) fn new(
        settings: &Settings,
        matrix: Arc<Matrix>,
        codec: Arc<Codec>,
        digests: Arc<Mutex<Digests>>,
        persist_state: bool,
    ) -> Lane {
        let fatigue = &matrix.spec().fatigue;
        Lane {
            decide: Deciding {
                group_within_ms: fatigue.group_within.as_millis() as i64,
                review_triggers: matrix.review_triggers(),
                sample_share: fatigue.sample_execute_log,
                matrix,
                rules: None,
                generation: 0,
                family_slots: Vec::new(),
            },
            read: Reading::new(settings, codec.clone()),
            write: Writing::new(settings, codec, digests, persist_state),
            states: HashMap::new(),
            effects: Vec::new(),
            stats: None,
        }
    }

    pub(super) fn matrix(&self) -> &Arc<Matrix> {
        &self.decide.matrix
    }

    pub(super) fn rules(&self) -> Option<&Arc<Rules>> {
        self.decide.rules.as_ref()
    }

    pub(super) fn codec(&self) -> Arc<Codec> {
        self.read.codec.clone()
    }

    pub(super) fn digests(&self) -> Arc<Mutex<Digests>> {
        self.write.digests.clone()
    }

    pub(super) fn decisions_topic(&self) -> &str {
        &self.read.decisions_topic
    }

    pub(super) fn state(&self, partition: i32) -> Option<&PartitionState> {
        self.states.get(&partition)
    }

    /// Follows `rules` from now on (taken at the next [`Lane::refresh`]).
    pub(super) fn follow(&mut self, rules: Arc<Rules>) {
        self.decide.rules = Some(rules);
        self.decide.generation = u64::MAX;
    }

    /// Receives the running pipeline's counters.
    pub(super) fn attach(&mut self, stats: Arc<Stats>) {
        self.attach_registry(&stats.metrics);
        self.decide.family_slots = family_slots(&stats, &self.decide.matrix);
        self.stats = Some(stats);
    }

    /// Drops a revoked partition's state.
    pub(super) fn forget(&mut self, partition: i32) {
        if let Some(state) = self.states.remove(&partition) {
            self.count_pending(&state, -1);
        }
    }

    /// True when the digests of the last tick must be confirmed delivered.
    pub(super) fn awaits_delivery(&self) -> bool {
        !self.write.unconfirmed.is_empty()
    }

    /// The last tick's digests are delivered: their items leave the queues.
    pub(super) fn delivered(&mut self) {
        let items = std::mem::take(&mut self.write.unconfirmed);
        self.write
            .digests
            .lock()
            .expect("digests lock")
            .confirm(&items);
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
    pub(super) fn restore(&mut self, partition: i32, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
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
            let mut digests = self.write.digests.lock().expect("digests lock");
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

    /// The outcome of a record refused as bad input (its dead letter), or the defect that
    /// stops the pipeline.
    pub(super) fn refuse(
        &self,
        input: Input<'_>,
        refusal: Refusal,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        match refusal {
            Refusal::Fatal(e) => Err(e),
            Refusal::DeadLetter(reason, message) => {
                out.push(self.dead_letter(input, reason, &message));
                Ok(Outcome::DeadLetter { reason })
            }
        }
    }

    /// Decides one agent action record: decode → evaluate → plan → state (the hand-overs as
    /// effects) → the one output path.
    pub(super) fn process_action(
        &mut self,
        input: Input<'_>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        let (event, canary) = match self.read.action(&input) {
            Ok(decoded) => decoded,
            Err(refusal) => return self.refuse(input, refusal, out),
        };
        let matrix = self.decide.matrix.clone();
        let state = self.states.entry(input.partition).or_default();
        let (before, apply) = state.state_for(&event.session_id, input.offset);
        let decision = matrix.evaluate(&event, &before);
        if apply {
            state.apply_streak(&event.session_id, input.offset, before, decision.session);
        }
        let drill = crate::event::wire::is_drill(input.headers);
        let plan = escalation::plan(&matrix, &event, &decision, now_ms, drill);
        // Trigger names are only needed for hand-overs (most events have none).
        let needs_human = decision.level.needs_human();
        let triggers = if needs_human {
            decision.triggers.names()
        } else {
            Vec::new()
        };
        let mut effects = std::mem::take(&mut self.effects);
        if !needs_human
            && self
                .write
                .receipts
                .as_ref()
                .is_some_and(|r| r.for_auto_run())
        {
            // What the receipt of an action the rules let run alone binds.
            effects.push(Effect::Approval(Box::new(crate::state::ApprovalFacts {
                action_id: event.action_id.clone(),
                tool_call: event.tool_call.clone(),
                approvals: Vec::new(),
            })));
        }
        let handed = HandOver {
            triggers: &triggers,
            plan,
            group_within_ms: self.decide.group_within_ms,
            now_ms,
        };
        state.hand_over(&matrix, &event, before, handed, &mut effects);
        if let Some(expect) = canary {
            // Decided like any other; kept from the agents and from the real metrics.
            state.mark_canary(&event.session_id, &event.action_id, expect);
            crate::state::disguise(&mut effects, 0, expect);
        } else if !needs_human {
            if let Some(item) = self.review_item(&event, &decision, now_ms) {
                effects.push(Effect::Review(Box::new(item)));
            }
        }
        let emitted = self.emit(input.partition, &mut effects, out, Writes::AtOnce, now_ms);
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

    /// A decision record, decoded (or why it is refused).
    pub(super) fn read_decision(&self, input: &Input<'_>) -> Result<Signed, Refusal> {
        self.read.decision(input)
    }

    /// Applies one human decision: the final verdict (or the redirect), metrics, and the state
    /// write — held back until the verdict is delivered, so a crash cannot record a decision as
    /// applied whose verdict was lost.
    pub(super) fn apply_decision(
        &mut self,
        input: Input<'_>,
        (d, via): Signed,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        let state = self.states.entry(input.partition).or_default();
        let mut effects = std::mem::take(&mut self.effects);
        let matrix = &self.decide.matrix;
        match state.decide_signed(matrix, &d, via.as_deref(), now_ms, &mut effects) {
            Ok(()) => {}
            Err(crate::state::Ignored::Invalid(message)) => {
                self.effects = effects;
                let refusal = Refusal::DeadLetter("invalid_decision", message);
                return self.refuse(input, refusal, out);
            }
            Err(why @ crate::state::Ignored::RoleMismatch { .. }) => {
                self.effects = effects;
                let refusal = Refusal::DeadLetter("role_mismatch", why.to_string());
                return self.refuse(input, refusal, out);
            }
            Err(why) => {
                if let Some(stats) = &self.stats {
                    stats.decision_ignored(&why, input.partition, input.offset);
                }
            }
        }
        let emitted = self.emit(
            input.partition,
            &mut effects,
            out,
            Writes::AfterEffects,
            now_ms,
        );
        self.effects = effects;
        emitted?;
        Ok(Outcome::HumanDecision)
    }
}

/// The metrics slot of each of the matrix's families, in its order.
pub(super) fn family_slots(stats: &Stats, matrix: &Matrix) -> Vec<usize> {
    matrix
        .families()
        .iter()
        .map(|f| stats.metrics.family(f))
        .collect()
}
