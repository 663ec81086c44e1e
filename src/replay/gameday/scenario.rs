//! The scenario file: what traffic, which people, what to measure. Read with the `config`
//! crate, every problem listed before refusing.

use super::GamedayError;
use crate::event::CustomerTier;
use crate::matrix::Matrix;
use crate::problems::Problems;
use crate::sim::people::{parse_mix, Answering, People, Signature};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A drill, as written in a scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Title of the report.
    pub name: String,
    /// What the drill rehearses.
    #[serde(default)]
    pub description: String,
    /// Virtual length of the drill.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Clock step.
    #[serde(default = "one_second", with = "humantime_serde")]
    pub step: Duration,
    /// Seed of every random choice.
    #[serde(default)]
    pub seed: u64,
    /// Matrix file; the shipped one when absent (relative to the scenario file).
    #[serde(default)]
    pub matrix: Option<String>,
    /// Background traffic from the synthetic fleet, events per virtual second.
    #[serde(default)]
    pub background_rate: f64,
    /// The background mix: multiplies every trigger-inducing situation of the fleet (1 ≈ 5%
    /// of events needing a human).
    #[serde(default = "one_f")]
    pub background_boost: f64,
    /// Scripted bursts.
    #[serde(default)]
    pub bursts: Vec<Burst>,
    /// Recorded traffic: a topic of Avro AgentAction records (read with `--bootstrap`),
    /// replayed onto the drill's clock with its recorded gaps.
    #[serde(default)]
    pub recorded_topic: Option<String>,
    /// Simulated people per role; roles left out never answer.
    #[serde(default)]
    pub responders: BTreeMap<String, Responder>,
    /// What the report measures.
    #[serde(default)]
    pub measure: Measure,
}

/// What the report measures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// A role is overloaded when this many of its escalations wait at once.
    #[serde(default = "default_overload")]
    pub overload_pending: usize,
    /// The roles the drill is about: first in the report's table and chart, in this order.
    /// Every other role escalated to follows them, so the figures add up; a role named here
    /// that nobody escalated to is named under the table.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Default for Measure {
    fn default() -> Self {
        Measure {
            overload_pending: default_overload(),
            roles: Vec::new(),
        }
    }
}

fn one_f() -> f64 {
    1.0
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn default_overload() -> usize {
    20
}

/// Events of one kind, spread evenly over a time window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    /// Label in the report.
    pub name: String,
    /// Start, from the beginning of the drill.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// Window the events are spread over.
    #[serde(with = "humantime_serde")]
    pub over: Duration,
    /// Number of events.
    pub count: usize,
    /// Sessions they are spread over.
    #[serde(default = "one")]
    pub sessions: usize,
    /// Action type.
    pub action_type: String,
    /// Agent confidence.
    #[serde(default = "high")]
    pub confidence: f64,
    /// What was asked.
    pub request: String,
    /// The agent's output.
    #[serde(default)]
    pub output: Option<String>,
    /// What the person said.
    #[serde(default)]
    pub user_message: Option<String>,
    /// Amount.
    #[serde(default)]
    pub amount: Option<f64>,
    /// Customer tier, when a customer is concerned.
    #[serde(default)]
    pub customer_tier: Option<CustomerTier>,
    /// Options the agent considered.
    #[serde(default)]
    pub options: Vec<String>,
    /// Whether the action can be undone.
    #[serde(default = "yes")]
    pub reversible: bool,
    /// Attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn one() -> usize {
    1
}
fn high() -> f64 {
    0.9
}
fn yes() -> bool {
    true
}

/// How the people of one role answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Responder {
    /// Acknowledgement delay, uniform between the two.
    #[serde(with = "humantime_serde")]
    pub ack_min: Duration,
    /// Upper bound of the acknowledgement delay.
    #[serde(with = "humantime_serde")]
    pub ack_max: Duration,
    /// Time from acknowledging to deciding.
    #[serde(default = "one_minute", with = "humantime_serde")]
    pub decide_after: Duration,
    /// Share of escalations nobody answers.
    #[serde(default)]
    pub no_show: f64,
    /// Weights of approve, reject, revise, redirect (`approve=60,reject=30,…`).
    #[serde(default = "default_mix")]
    pub mix: String,
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}
fn default_mix() -> String {
    "approve=70,reject=30".into()
}

impl Responder {
    /// The simulated people's settings: acknowledge `ack_min` to `ack_max` after seeing an
    /// escalation, decide `decide_after` later.
    pub fn answering(&self) -> Answering {
        Answering {
            delay_min: self.ack_min,
            delay_max: self.ack_max,
            decide_after: Some(self.decide_after),
            no_show: self.no_show,
            mix: parse_mix(&self.mix).expect("validated"),
        }
    }
}

impl Scenario {
    /// The scenario's simulated people, seeded with its seed, signing `drill-ROLE`; roles
    /// without responders never answer.
    pub fn people(&self, matrix: &Matrix) -> People {
        let signature = Signature {
            decided_by_prefix: "drill-".into(),
            comment: None,
            drill: true,
        };
        let roles = matrix.roles().iter().map(|r| r.name.clone()).collect();
        self.responders
            .iter()
            .fold(People::new(roles, self.seed, signature), |p, (role, r)| {
                p.role(role, r.answering())
            })
    }

    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, GamedayError> {
        let name = path.display().to_string();
        let value = crate::problems::read_file(path).map_err(|message| {
            let mut p = Problems::default();
            p.push("", message);
            GamedayError::Invalid(name.clone(), p)
        })?;
        let mut problems = Problems::default();
        let s: Option<Scenario> = problems.take(&value, "");
        let Some(s) = s else {
            return Err(GamedayError::Invalid(name, problems));
        };
        s.validate(&mut problems);
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(GamedayError::Invalid(name, problems))
        }
    }

    /// Adds every problem of a parsed scenario to `problems`.
    fn validate(&self, problems: &mut Problems) {
        if self.duration.is_zero() {
            problems.push("duration", "0s: give the drill's length, e.g. 30m");
        }
        if self.step.is_zero() {
            problems.push("step", "0s is no step");
        }
        if !(self.background_rate.is_finite() && self.background_rate >= 0.0) {
            problems.push(
                "background_rate",
                format!("{} must be 0 or more", self.background_rate),
            );
        }
        for (i, b) in self.bursts.iter().enumerate() {
            if b.sessions == 0 {
                problems.push(format!("bursts[{i}].sessions"), "0: at least 1");
            }
            if !(0.0..=1.0).contains(&b.confidence) {
                problems.push(
                    format!("bursts[{i}].confidence"),
                    format!("{} is not between 0 and 1", b.confidence),
                );
            }
        }
        for (role, r) in &self.responders {
            if r.ack_max < r.ack_min {
                problems.push(
                    format!("responders.{role}.ack_max"),
                    "is shorter than ack_min",
                );
            }
            if !(0.0..=1.0).contains(&r.no_show) {
                problems.push(
                    format!("responders.{role}.no_show"),
                    format!("{} is not a share between 0 and 1", r.no_show),
                );
            }
            if let Err(e) = parse_mix(&r.mix) {
                problems.push(format!("responders.{role}.mix"), e);
            }
        }
    }
}
