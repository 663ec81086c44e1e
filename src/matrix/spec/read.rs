//! Reading the sections that are read piecewise, so that one bad entry does not hide the rest.

use super::{TierSpec, TiersSpec, TriggersSpec};
use crate::matrix::trigger::Trigger;
use crate::problems::{join, Problems};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

fn default_warm_ack() -> Duration {
    Duration::from_secs(3600)
}
fn default_immediate_ack() -> Duration {
    Duration::from_secs(300)
}

pub(super) fn read_map<T: serde::de::DeserializeOwned>(
    value: Option<&Value>,
    path: &str,
    problems: &mut Problems,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    match value {
        None => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if let Some(t) = problems.take(v, &join(path, k)) {
                    out.insert(k.clone(), t);
                }
            }
        }
        Some(other) => problems.push(
            path,
            format!("expected a table, found {}", crate::problems::kind(other)),
        ),
    }
    out
}

/// Reads every trigger; a trigger that fails to deserialize is recorded and replaced by its
/// defaults, so that validation still checks the rest of the file.
pub(super) fn read_triggers(value: Option<&Value>, problems: &mut Problems) -> TriggersSpec {
    let empty = Value::Object(Default::default());
    let mut value = value.unwrap_or(&empty);
    if !value.is_object() {
        problems.push(
            "triggers",
            format!("expected a table, found {}", crate::problems::kind(value)),
        );
        value = &empty;
    }
    let names: Vec<&str> = Trigger::ALL.iter().map(|t| t.as_str()).collect();
    problems.unknown_keys(value, "triggers", &names);
    fn one<T: serde::de::DeserializeOwned>(
        value: &Value,
        name: &str,
        problems: &mut Problems,
    ) -> T {
        let empty = Value::Object(Default::default());
        let v = value.get(name).filter(|v| !v.is_null()).unwrap_or(&empty);
        problems
            .take(v, &format!("triggers.{name}"))
            .unwrap_or_else(|| serde_json::from_value(empty).expect("every field has a default"))
    }
    TriggersSpec {
        low_confidence: one(value, "low_confidence", problems),
        policy_keyword: one(value, "policy_keyword", problems),
        multiple_options: one(value, "multiple_options", problems),
        task_failure: one(value, "task_failure", problems),
        high_value_customer: one(value, "high_value_customer", problems),
        amount_limit: one(value, "amount_limit", problems),
        human_requested: one(value, "human_requested", problems),
        irreversible: one(value, "irreversible", problems),
        affects_others: one(value, "affects_others", problems),
        consecutive_low_confidence: one(value, "consecutive_low_confidence", problems),
        anomaly: one(value, "anomaly", problems),
        unknown_action: one(value, "unknown_action", problems),
    }
}

/// Reads the tiers; a bad one is recorded and replaced by its default.
pub(super) fn read_tiers(value: Option<&Value>, problems: &mut Problems) -> TiersSpec {
    let empty = Value::Object(Default::default());
    let value = value.unwrap_or(&empty);
    problems.unknown_keys(value, "tiers", &["warm", "immediate"]);
    let mut tier = |name: &str, default: Duration| {
        let fallback = TierSpec {
            ack_within: default,
        };
        match value.get(name) {
            None | Some(Value::Null) => fallback,
            Some(v) => problems
                .take::<TierSpec>(v, &format!("tiers.{name}"))
                .unwrap_or(fallback),
        }
    };
    TiersSpec {
        warm: tier("warm", default_warm_ack()),
        immediate: tier("immediate", default_immediate_ack()),
    }
}
