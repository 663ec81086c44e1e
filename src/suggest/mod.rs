//! `handoff suggest`: rule changes from the evidence. Recorded verdicts, human decisions and
//! events become cases (one per action); the cases are counted per reason (a trigger, or the
//! action type's own level) × action type; from the counts come proposals, each with its
//! evidence and a Wilson interval, never from fewer than `min_cases`; every proposal is applied
//! to a copy of the matrix, checked, and shadow-diffed on the same events before it is shown.
//! Pure: records in, report out.

pub mod cases;
pub mod competence;
pub mod edit;
pub mod report;
pub mod rules;
pub mod verify;

pub use cases::{cases, Skipped};

use crate::event::{AgentAction, Level};
use crate::matrix::Matrix;
use edit::Change;
use serde::Serialize;
use std::collections::BTreeMap;

/// What became of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Ran without a person.
    Alone,
    /// A person approved it as proposed.
    Unchanged,
    /// A person revised it.
    Revised,
    /// A person rejected it.
    Rejected,
    /// A person handed it to another role.
    Redirected,
    /// Nobody answered in time.
    TimedOut,
    /// Still waiting.
    Open,
}

impl Fate {
    /// A person answered it (approved, revised, rejected or redirected).
    pub fn by_person(self) -> bool {
        matches!(
            self,
            Fate::Unchanged | Fate::Revised | Fate::Rejected | Fate::Redirected
        )
    }

    /// It is over and counts in a share: a person's answer, or a timeout (nobody approved it).
    pub fn settled(self) -> bool {
        self.by_person() || self == Fate::TimedOut
    }
}

/// One action, as `suggest` sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    /// The action.
    pub action_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Its type.
    pub action_type: String,
    /// The agent's confidence; `None` when the event was not read.
    pub confidence: Option<f64>,
    /// The event carried a template id; `None` when the event was not read.
    pub templated: Option<bool>,
    /// Triggers that fired.
    pub triggers: Vec<String>,
    /// The triggers that fired whose level needs a person: what escalated it besides the
    /// type's own level (a flag such as `irreversible` only asks for `execute_log`).
    pub escalating: Vec<String>,
    /// The level decided.
    pub level: Level,
    /// When it was decided, ms.
    pub decided_at_ms: i64,
    /// What became of it.
    pub fate: Fate,
    /// From the decision to the human's final answer, ms.
    pub decide_ms: Option<i64>,
}

/// Counts for one reason × action type.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    /// Escalated cases.
    pub escalations: usize,
    /// By fate.
    pub unchanged: usize,
    /// Revised.
    pub revised: usize,
    /// Rejected.
    pub rejected: usize,
    /// Redirected.
    pub redirected: usize,
    /// Timed out.
    pub timed_out: usize,
    /// Still open.
    pub open: usize,
    /// Median time to decide, ms.
    pub decide_p50_ms: Option<i64>,
    /// 90th percentile, ms.
    pub decide_p90_ms: Option<i64>,
}

/// The reasons of an escalation: each trigger that needs a person, or `level` when only the
/// type's own level asked.
pub fn reasons(c: &Case) -> Vec<String> {
    if c.escalating.is_empty() {
        vec!["level".into()]
    } else {
        c.escalating.clone()
    }
}

/// Counts per (reason, action type) of the escalated cases.
pub fn table(cases: &[Case]) -> BTreeMap<(String, String), Row> {
    count(cases, |c, r| (r.to_string(), c.action_type.clone()))
}

/// Counts per (reason, action type, agent), kept where an agent has at least `min_cases`.
pub fn table_by_agent(cases: &[Case], min_cases: usize) -> BTreeMap<(String, String, String), Row> {
    let mut t = count(cases, |c, r| {
        (r.to_string(), c.action_type.clone(), c.agent_id.clone())
    });
    t.retain(|_, row| row.escalations >= min_cases);
    t
}

fn count<K: Ord>(cases: &[Case], key: impl Fn(&Case, &str) -> K) -> BTreeMap<K, Row> {
    let mut rows: BTreeMap<K, (Row, Vec<i64>)> = BTreeMap::new();
    for c in cases.iter().filter(|c| c.fate != Fate::Alone) {
        for r in reasons(c) {
            let (row, times) = rows.entry(key(c, &r)).or_default();
            row.escalations += 1;
            match c.fate {
                Fate::Unchanged => row.unchanged += 1,
                Fate::Revised => row.revised += 1,
                Fate::Rejected => row.rejected += 1,
                Fate::Redirected => row.redirected += 1,
                Fate::TimedOut => row.timed_out += 1,
                Fate::Open | Fate::Alone => row.open += 1,
            }
            times.extend(c.decide_ms);
        }
    }
    rows.into_iter()
        .map(|(k, (mut row, mut t))| {
            t.sort_unstable();
            let q =
                |p: f64| (!t.is_empty()).then(|| t[((t.len() - 1) as f64 * p).round() as usize]);
            row.decide_p50_ms = q(0.5);
            row.decide_p90_ms = q(0.9);
            (k, row)
        })
        .collect()
}

/// The Wilson score interval (95%) of `k` successes in `n`.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (z, n, p) = (1.96f64, n as f64, k as f64 / n as f64);
    let d = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / d;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// What the proposals need.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// No proposal from fewer cases.
    pub min_cases: usize,
    /// Graduate an action type (`ask_first` → `execute_log`) when the lower bound of its
    /// approved-unchanged share is at least this.
    pub graduate_at: f64,
    /// Lower a confidence gate when the lower bound of the approved-unchanged share of what it
    /// alone catches is at least this.
    pub lower_gate_at: f64,
    /// How far a gate moves in one proposal.
    pub gate_step: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_cases: 30,
            graduate_at: 0.90,
            lower_gate_at: 0.95,
            gate_step: 0.10,
        }
    }
}

/// The evidence behind a proposal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Cases counted.
    pub n: usize,
    /// Cases that speak for the change.
    pub k: usize,
    /// k / n.
    pub share: f64,
    /// Wilson 95% interval of the share.
    pub interval: (f64, f64),
    /// In words.
    pub why: String,
}

/// A change, its evidence, and what the shadow diff says it would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    /// The change.
    pub change: Change,
    /// Why.
    pub evidence: Evidence,
    /// What the change alone does to the recorded events.
    pub shadow: verify::Shadow,
    /// `Ok` when the change passed every check, alone and combined with the proposals accepted
    /// before it; otherwise why it is not proposed.
    pub verified: Result<(), String>,
}

/// The proposals, and what every accepted one applied together does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposals {
    /// Every proposal, accepted or refused, in the order they were combined.
    pub list: Vec<Proposal>,
    /// The accepted changes applied together (`matrix.proposed.toml`), shadow-diffed.
    pub combined: verify::Shadow,
}

/// The proposals for `cases`, each verified against `events` with the matrix from `text`,
/// alone and then combined in order: a change that is safe alone but not together with the ones
/// accepted before it is refused, saying so.
pub fn propose(
    text: &str,
    matrix: &Matrix,
    cases: &[Case],
    events: &[AgentAction],
    t: &Thresholds,
) -> Proposals {
    let found = rules::candidates(matrix, cases, events, t);
    verify::all(text, matrix, found, cases, events)
}

pub(crate) fn evidence(n: usize, k: usize, interval: (f64, f64), why: String) -> Evidence {
    Evidence {
        n,
        k,
        share: k as f64 / n.max(1) as f64,
        interval,
        why,
    }
}
