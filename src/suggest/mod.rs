//! `handoff suggest`: rule changes from the evidence. Recorded verdicts, human decisions and
//! events become cases (one per action); the cases are counted per reason (a trigger, or the
//! action type's own level) × action type; from the counts come proposals, each with its
//! evidence and a Wilson interval, never from fewer than `min_cases`; every proposal is applied
//! to a copy of the matrix, checked, and shadow-diffed on the same events before it is shown.
//! Pure: records in, report out.

pub mod competence;
pub mod edit;
pub mod report;

use crate::audit::{self, Records};
use crate::event::{AgentAction, DecisionKind, Level, VerdictOutcome};
use crate::matrix::{Matrix, MatrixSource, SessionState};
use edit::Change;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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

/// One action, as `suggest` sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    /// The action.
    pub action_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Its type.
    pub action_type: String,
    /// The agent's confidence (0 when the event was not read).
    pub confidence: f64,
    /// Triggers that fired.
    pub triggers: Vec<String>,
    /// The level decided.
    pub level: Level,
    /// When it was decided, ms.
    pub decided_at_ms: i64,
    /// What became of it.
    pub fate: Fate,
    /// From the decision to the human's final answer, ms.
    pub decide_ms: Option<i64>,
}

/// The cases of the actions decided in `[from_ms, to_ms)`.
pub fn cases(r: &Records, from_ms: i64, to_ms: i64) -> Vec<Case> {
    let confidence: HashMap<&str, f64> = r
        .events
        .iter()
        .map(|e| (e.action_id.as_str(), e.confidence))
        .collect();
    audit::join(r, from_ms, to_ms)
        .into_iter()
        // Canaries test the people, not the rules.
        .filter(|e| !e.canary)
        .map(|e| {
            let redirected = e
                .answers
                .iter()
                .any(|a| a.decision == DecisionKind::Redirect);
            // Escalated: its level needed a person (the escalations themselves may not have
            // been read, e.g. from files).
            let alone = !e.level.needs_human() && e.shown.is_empty();
            let fate = match (alone, e.outcome) {
                (true, _) => Fate::Alone,
                (_, VerdictOutcome::Approved) if redirected => Fate::Redirected,
                (_, VerdictOutcome::Approved) => Fate::Unchanged,
                (_, VerdictOutcome::Revised) => Fate::Revised,
                (_, VerdictOutcome::Rejected) => Fate::Rejected,
                (_, VerdictOutcome::Redirected) => Fate::Redirected,
                (_, VerdictOutcome::TimedOutBlocked | VerdictOutcome::TimedOutProceed) => {
                    Fate::TimedOut
                }
                _ => Fate::Open,
            };
            let human = matches!(
                fate,
                Fate::Unchanged | Fate::Revised | Fate::Rejected | Fate::Redirected
            );
            Case {
                confidence: confidence.get(e.action_id.as_str()).copied().unwrap_or(0.0),
                agent_id: e.agent_id,
                action_type: e.action_type,
                triggers: e.triggers.into_iter().map(|t| t.trigger).collect(),
                level: e.level,
                decided_at_ms: e.decided_at_ms,
                fate,
                decide_ms: human.then_some(e.final_at_ms - e.decided_at_ms),
                action_id: e.action_id,
            }
        })
        .collect()
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

/// The reason of an escalation: each trigger, or `level` when only the type's level asked.
pub fn reasons(c: &Case) -> Vec<String> {
    if c.triggers.is_empty() {
        vec!["level".into()]
    } else {
        c.triggers.clone()
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
    /// Share of events needing a person, before and after (on the same events).
    pub escalation_rate: (f64, f64),
    /// Events whose decision changes.
    pub changed_decisions: usize,
    /// `Ok` when the change passed every check; otherwise why it is not proposed.
    pub verified: Result<(), String>,
}

/// The proposals for `cases`, each verified against `events` with the matrix from `text`.
pub fn propose(
    text: &str,
    matrix: &Matrix,
    cases: &[Case],
    events: &[AgentAction],
    t: &Thresholds,
) -> Vec<Proposal> {
    let mut out = Vec::new();
    let by_type = group(cases);
    for (ty, cs) in &by_type {
        let Some(sample) = events.iter().find(|e| &e.action_type == ty) else {
            continue;
        };
        let base = matrix.evaluate(sample, &SessionState::default()).base_level;
        out.extend(graduation(ty, cs, base, t));
        out.extend(gate(ty, cs, matrix.threshold(ty), t));
        out.extend(rising_rejections(ty, cs, base, t));
    }
    out.extend(phrases(matrix, cases, events, t));
    let rejected: HashSet<&str> = cases
        .iter()
        .filter(|c| c.fate == Fate::Rejected)
        .map(|c| c.action_id.as_str())
        .collect();
    out.into_iter()
        .map(|(change, evidence)| verify(text, matrix, change, evidence, events, &rejected))
        .collect()
}

fn group(cases: &[Case]) -> BTreeMap<String, Vec<&Case>> {
    let mut m: BTreeMap<String, Vec<&Case>> = BTreeMap::new();
    for c in cases {
        m.entry(c.action_type.clone()).or_default().push(c);
    }
    m
}

/// Escalated by the type's level alone, approved unchanged nearly always: `execute_log`.
fn graduation(ty: &str, cs: &[&Case], base: Level, t: &Thresholds) -> Option<(Change, Evidence)> {
    if base != Level::AskFirst {
        return None; // never from hard_stop, and nothing to graduate below ask_first
    }
    let by_level: Vec<&&Case> = cs
        .iter()
        .filter(|c| c.triggers.is_empty() && decided(c))
        .collect();
    let n = by_level.len();
    let k = by_level
        .iter()
        .filter(|c| c.fate == Fate::Unchanged)
        .count();
    let interval = wilson(k, n);
    if n < t.min_cases || interval.0 < t.graduate_at {
        return None;
    }
    Some((
        Change::Level {
            action_type: ty.into(),
            from: base,
            to: Level::ExecuteLog,
        },
        evidence(n, k, interval, format!(
            "{k} of {n} escalated by the level alone were approved unchanged (lower bound {:.0}% ≥ {:.0}%)",
            interval.0 * 100.0,
            t.graduate_at * 100.0
        )),
    ))
}

/// What only the confidence gate caught, approved unchanged nearly always: a lower gate, but
/// never below a case a person revised, rejected or redirected.
fn gate(ty: &str, cs: &[&Case], current: f64, t: &Thresholds) -> Option<(Change, Evidence)> {
    let caught: Vec<&&Case> = cs
        .iter()
        .filter(|c| c.triggers == ["low_confidence"] && decided(c))
        .collect();
    let n = caught.len();
    let k = caught.iter().filter(|c| c.fate == Fate::Unchanged).count();
    let interval = wilson(k, n);
    if n < t.min_cases || interval.0 < t.lower_gate_at {
        return None;
    }
    let floor = caught
        .iter()
        .filter(|c| c.fate != Fate::Unchanged)
        .map(|c| c.confidence + 0.01)
        .fold(0.0f64, f64::max);
    let to = ((current - t.gate_step).max(floor) * 100.0).round() / 100.0;
    if to >= current {
        return None;
    }
    Some((
        Change::Gate {
            action_type: ty.into(),
            from: current,
            to,
        },
        evidence(n, k, interval, format!(
            "{k} of {n} caught by the confidence gate alone were approved unchanged (lower bound {:.0}% ≥ {:.0}%)",
            interval.0 * 100.0,
            t.lower_gate_at * 100.0
        )),
    ))
}

/// Rejections rising from the first half of the window to the second: one level stricter.
fn rising_rejections(
    ty: &str,
    cs: &[&Case],
    base: Level,
    t: &Thresholds,
) -> Option<(Change, Evidence)> {
    let mut d: Vec<&&Case> = cs.iter().filter(|c| decided(c)).collect();
    d.sort_by_key(|c| c.decided_at_ms);
    let (first, second) = d.split_at(d.len() / 2);
    let half = t.min_cases / 2;
    if first.len() < half || second.len() < half {
        return None;
    }
    let rej = |h: &[&&Case]| h.iter().filter(|c| c.fate == Fate::Rejected).count();
    let (a, b) = (
        wilson(rej(first), first.len()),
        wilson(rej(second), second.len()),
    );
    if b.0 <= a.1 {
        return None;
    }
    let to = match base {
        Level::Execute | Level::ExecuteLog => Level::AskFirst,
        Level::AskFirst => Level::HardStop,
        Level::HardStop => return None,
    };
    let k = rej(second);
    Some((
        Change::Level {
            action_type: ty.into(),
            from: base,
            to,
        },
        evidence(second.len(), k, b, format!(
            "rejections rose from {} of {} to {k} of {} (intervals {:.0}–{:.0}% and {:.0}–{:.0}% do not overlap)",
            rej(first),
            first.len(),
            second.len(),
            a.0 * 100.0,
            a.1 * 100.0,
            b.0 * 100.0,
            b.1 * 100.0
        )),
    ))
}

/// Phrases that fired only on actions people then approved unchanged: drop them from their
/// trigger (the phrases found again by deciding each event with `matrix`).
fn phrases(
    matrix: &Matrix,
    cases: &[Case],
    events: &[AgentAction],
    t: &Thresholds,
) -> Vec<(Change, Evidence)> {
    let by_id: HashMap<&str, &AgentAction> =
        events.iter().map(|e| (e.action_id.as_str(), e)).collect();
    let mut fired: BTreeMap<(&'static str, String), (usize, usize)> = BTreeMap::new();
    for c in cases.iter().filter(|c| decided(c)) {
        let Some(e) = by_id.get(c.action_id.as_str()) else {
            continue;
        };
        let d = matrix.evaluate(e, &SessionState::default());
        for f in &d.flags {
            let crate::matrix::Detail::Phrases(hits) = &f.detail else {
                continue;
            };
            let found: BTreeSet<&str> = hits
                .iter()
                .map(|h| matrix.phrases().phrase(h.phrase))
                .collect();
            for p in found {
                let (n, k) = fired
                    .entry((f.trigger.as_str(), p.to_string()))
                    .or_default();
                *n += 1;
                *k += usize::from(c.fate == Fate::Unchanged);
            }
        }
    }
    fired
        .into_iter()
        .filter(|(_, (n, k))| *n >= t.min_cases && k == n)
        .map(|((trigger, phrase), (n, k))| {
            let interval = wilson(k, n);
            let why = format!(
                "{phrase:?} fired in {n} decided escalations, every one approved unchanged \
                 (lower bound {:.0}%)",
                interval.0 * 100.0
            );
            let change = Change::Phrase {
                trigger: trigger.into(),
                phrase,
            };
            (change, evidence(n, k, interval, why))
        })
        .collect()
}

fn decided(c: &Case) -> bool {
    matches!(
        c.fate,
        Fate::Unchanged | Fate::Revised | Fate::Rejected | Fate::Redirected
    )
}

fn evidence(n: usize, k: usize, interval: (f64, f64), why: String) -> Evidence {
    Evidence {
        n,
        k,
        share: k as f64 / n.max(1) as f64,
        interval,
        why,
    }
}

/// Applies the change to a copy of the matrix, checks it, and diffs it on the events: refused
/// when the matrix is invalid, when a hard_stop would be relaxed, or when an action a person
/// rejected would run without one.
fn verify(
    text: &str,
    matrix: &Matrix,
    change: Change,
    evidence: Evidence,
    events: &[AgentAction],
    rejected: &HashSet<&str>,
) -> Proposal {
    let mut p = Proposal {
        change,
        evidence,
        escalation_rate: (0.0, 0.0),
        changed_decisions: 0,
        verified: Ok(()),
    };
    let new = match edit::apply(text, &[&p.change])
        .and_then(|t| Matrix::from_toml_str(&t, MatrixSource::Default).map_err(|e| e.to_string()))
    {
        Ok(m) => m,
        Err(e) => {
            p.verified = Err(format!("the changed matrix does not pass `check`: {e}"));
            return p;
        }
    };
    let d = crate::replay::diff::diff(matrix, &new, events);
    p.escalation_rate = d.escalation_rates();
    p.changed_decisions = d.changed;
    if !d.relaxed_hard_stops.is_empty() {
        p.verified = Err(format!(
            "it relaxes {} hard_stop decision(s)",
            d.relaxed_hard_stops.len()
        ));
        return p;
    }
    let let_through: Vec<&str> = d
        .changes
        .iter()
        .filter(|c| !c.new_level.needs_human() && rejected.contains(c.action_id.as_str()))
        .map(|c| c.action_id.as_str())
        .collect();
    if !let_through.is_empty() {
        p.verified = Err(format!(
            "it would let through {} action(s) a person rejected: {}",
            let_through.len(),
            let_through
                .iter()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    p
}
