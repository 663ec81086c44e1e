//! The fixed set of triggers. Their names appear in outputs and metric labels, so they never
//! change.

use serde::{Deserialize, Serialize};

/// A reason to involve a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Confidence below the gate for the action type.
    LowConfidence,
    /// A policy keyword or phrase in the request, output or user message.
    PolicyKeyword,
    /// Several valid options: a human chooses.
    MultipleOptions,
    /// The agent's task failed.
    TaskFailure,
    /// A premium or VIP customer on a customer-facing action.
    HighValueCustomer,
    /// Money above the limit for the action type.
    AmountLimit,
    /// The user asked for a person.
    HumanRequested,
    /// The action cannot be undone.
    Irreversible,
    /// The action affects other people.
    AffectsOthers,
    /// Confidence below the gate several turns in a row in one session.
    ConsecutiveLowConfidence,
    /// An anomaly marker on the event (e.g. a flash crash).
    Anomaly,
    /// No level is configured for the action type (fail closed).
    UnknownAction,
}

impl Trigger {
    /// Every trigger, in the canonical order used for flags and outputs.
    pub const ALL: [Trigger; 12] = [
        Trigger::LowConfidence,
        Trigger::PolicyKeyword,
        Trigger::MultipleOptions,
        Trigger::TaskFailure,
        Trigger::HighValueCustomer,
        Trigger::AmountLimit,
        Trigger::HumanRequested,
        Trigger::Irreversible,
        Trigger::AffectsOthers,
        Trigger::ConsecutiveLowConfidence,
        Trigger::Anomaly,
        Trigger::UnknownAction,
    ];

    /// The fixed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::LowConfidence => "low_confidence",
            Trigger::PolicyKeyword => "policy_keyword",
            Trigger::MultipleOptions => "multiple_options",
            Trigger::TaskFailure => "task_failure",
            Trigger::HighValueCustomer => "high_value_customer",
            Trigger::AmountLimit => "amount_limit",
            Trigger::HumanRequested => "human_requested",
            Trigger::Irreversible => "irreversible",
            Trigger::AffectsOthers => "affects_others",
            Trigger::ConsecutiveLowConfidence => "consecutive_low_confidence",
            Trigger::Anomaly => "anomaly",
            Trigger::UnknownAction => "unknown_action",
        }
    }

    /// Looks a trigger up by its fixed name.
    pub fn from_name(name: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.as_str() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of triggers, iterated in canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TriggerSet(u16);

impl TriggerSet {
    /// The empty set.
    pub const EMPTY: TriggerSet = TriggerSet(0);

    /// Adds a trigger.
    pub fn insert(&mut self, t: Trigger) {
        self.0 |= t.bit();
    }

    /// True when `t` is in the set.
    pub fn contains(self, t: Trigger) -> bool {
        self.0 & t.bit() != 0
    }

    /// True when no trigger fired.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of triggers.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The triggers, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Trigger> {
        Trigger::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    /// The names, in canonical order.
    pub fn names(self) -> Vec<String> {
        self.iter().map(|t| t.as_str().to_string()).collect()
    }
}
