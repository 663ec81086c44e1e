//! The contract between the Kafka edge and what it runs for each record: [`Stage`], with the
//! record as received ([`Input`]) and what became of it ([`Outcome`]).

use crate::event::Level;
use crate::matrix::Trigger;
use crate::output::{Output, Topic};
use crate::pipeline::stats::Stats;
use crate::pipeline::Topics;
use std::sync::Arc;

/// A record that cannot be read or an output that cannot be built for a reason of handoff's
/// own (never bad input, which is a dead letter): a defect, fatal to the pipeline.
#[derive(Debug, thiserror::Error)]
#[error("cannot {doing} {what} {id}: {source}")]
pub struct StageError {
    /// `encode` or `decode`.
    pub doing: &'static str,
    /// What (`verdict`, `escalation`, `digest`, `state record`, `input record`).
    pub what: &'static str,
    /// Its id, or the failure's short reason.
    pub id: String,
    /// Why.
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StageError {
    /// An output `what` (`id`) that cannot be encoded.
    pub fn encode(
        what: &'static str,
        id: &str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> StageError {
        StageError {
            doing: "encode",
            what,
            id: id.to_string(),
            source: Box::new(e),
        }
    }

    /// An input `what` that cannot be decoded for a reason of handoff's own (`reason`).
    pub fn decode(
        what: &'static str,
        reason: &str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> StageError {
        StageError {
            doing: "decode",
            what,
            id: reason.to_string(),
            source: Box::new(e),
        }
    }
}

/// What became of one input, for statistics.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Decided.
    Decided {
        /// Level.
        level: Level,
        /// Action type family: its metrics slot (`Metrics::family`; out of range is "other").
        family: usize,
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
    /// A canary decided (counted only in the canary metrics, by the stage).
    Canary,
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
    /// Where its outputs go, by name ([`Output::topic`] and [`Output::drill`] resolve there).
    fn topics(&self) -> &Topics;
    /// Maps one input record to its outputs (at least one). An error is a defect (an output
    /// that cannot be encoded): the pipeline stops without committing past the record.
    fn process(
        &mut self,
        input: Input<'_>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError>;
    /// Drops whatever state the stage keeps for a revoked partition.
    fn forget_partition(&mut self, partition: i32);
    /// Role names whose metrics are made at start (more are added as rules name them).
    fn role_names(&self) -> Vec<String>;
    /// Action type families whose metrics are made at start (in slot order).
    fn families(&self) -> Vec<String> {
        Vec::new()
    }
    /// A label for logs and the `handoff_rule_info` metric (the rule version for handoff).
    fn label(&self) -> String;
    /// Receives the running pipeline's statistics (for counters the stage keeps itself).
    fn attach(&mut self, _stats: Arc<Stats>) {}
    /// The topic the stage restores its state from, partitioned like the input.
    fn changelog(&self) -> Option<Topic> {
        None
    }
    /// Loads a newly assigned partition's state from its changelog records (key, value; a
    /// `None` value is a tombstone), oldest first.
    fn restore(&mut self, _partition: i32, _records: Vec<(Vec<u8>, Option<Vec<u8>>)>) {}
    /// Acts on whatever is due at `now_ms` (acknowledgement deadlines, digests).
    fn tick(&mut self, _now_ms: i64, _out: &mut Vec<Output>) -> Result<(), StageError> {
        Ok(())
    }
    /// True when the outputs of the last tick must be confirmed delivered ([`Stage::delivered`]).
    fn awaits_delivery(&self) -> bool {
        false
    }
    /// Called once the last tick's outputs are delivered.
    fn delivered(&mut self) {}
}
