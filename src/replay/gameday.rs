//! `handoff gameday SCENARIO`: a crisis drill on a virtual clock. Scripted traffic goes through
//! handoff's own processor (matrix, deadlines, chains, grouping, rate limits), simulated people
//! answer — or do not — after sampled delays, and every output is written to the drill topics.
//! The report measures who got engaged and how fast.
//!
//! Discrete time: the clock moves in steps of `step` (1 s by default); at each step the events
//! and answers due are processed in time order and the deadlines and digests due fire. An hour
//! of drill takes seconds.

use crate::config::Settings;
use crate::event::wire::KIND_HEADER;
use crate::event::{
    ActionStatus, AgentAction, Codec, Customer, CustomerTier, DecisionKind, Digest, Escalation,
    SchemaKind, Verdict, VerdictOutcome,
};
use crate::matrix::Matrix;
use crate::output::Output;
use crate::pipeline::process::{Input, Processor, Stage};
use crate::problems::Problems;
use crate::sim::fleet::{Fleet, FleetConfig};
use crate::sim::people::{parse_mix, Answering, People, Shown, Signature};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
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
    /// Roles in the report's table; all roles that got escalations when empty.
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

/// Why a scenario cannot run.
#[derive(Debug, thiserror::Error)]
pub enum GamedayError {
    /// The file is wrong (every problem listed).
    #[error("scenario {0} has problems:\n{1}")]
    Invalid(String, Problems),
    /// Its matrix is wrong.
    #[error(transparent)]
    Matrix(#[from] crate::matrix::MatrixError),
    /// The schemas.
    #[error(transparent)]
    Codec(#[from] crate::event::CodecError),
    /// Writing to the broker.
    #[error("writing the drill to Kafka: {0}")]
    Kafka(String),
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
        if s.duration.is_zero() {
            problems.push("duration", "0s: give the drill's length, e.g. 30m");
        }
        if s.step.is_zero() {
            problems.push("step", "0s is no step");
        }
        if !(s.background_rate.is_finite() && s.background_rate >= 0.0) {
            problems.push(
                "background_rate",
                format!("{} must be 0 or more", s.background_rate),
            );
        }
        for (i, b) in s.bursts.iter().enumerate() {
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
        for (role, r) in &s.responders {
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
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(GamedayError::Invalid(name, problems))
        }
    }
}

/// p50, p95 and max of a set of durations, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_s: f64,
    /// 95th percentile.
    pub p95_s: f64,
    /// Largest.
    pub max_s: f64,
}

impl Spread {
    fn of(mut ms: Vec<i64>) -> Spread {
        if ms.is_empty() {
            return Spread::default();
        }
        ms.sort_unstable();
        let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
        Spread {
            count: ms.len(),
            p50_s: at(0.5),
            p95_s: at(0.95),
            max_s: *ms.last().expect("non-empty") as f64 / 1000.0,
        }
    }
}

/// One role's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RoleFigures {
    /// Escalation messages to the role (updates of grouped ones included).
    pub escalation_messages: usize,
    /// Distinct escalations the role got (single or in a digest).
    pub escalations: usize,
    /// Digests to the role.
    pub digests: usize,
    /// Re-escalations that reached the role after another role missed its deadline.
    pub re_escalations: usize,
    /// Escalations a human redirected to the role.
    pub redirects_in: usize,
    /// Escalations the role acknowledged.
    pub acknowledged: usize,
    /// Deadlines the role let pass.
    pub missed_deadlines: usize,
    /// Event → escalation sent to this role.
    pub event_to_escalation: Spread,
    /// Escalation → acknowledgement.
    pub escalation_to_ack: Spread,
    /// Event → acknowledgement (time to engagement).
    pub event_to_ack: Spread,
    /// Most escalations waiting at once.
    pub peak_pending: usize,
    /// Peak pending at or above the scenario's overload mark, or digests sent.
    pub overloaded: bool,
}

/// What a drill measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GamedayReport {
    /// Scenario name.
    pub scenario: String,
    /// Rule version.
    pub rule_version: String,
    /// Virtual length, seconds.
    pub duration_s: u64,
    /// Events decided.
    pub events: usize,
    /// Events needing a human (ask_first or hard_stop).
    pub needs_human: usize,
    /// needs_human / events.
    pub escalation_rate: f64,
    /// Per role.
    pub roles: BTreeMap<String, RoleFigures>,
    /// Re-escalations by tier of the new escalation.
    pub re_escalations_by_tier: BTreeMap<String, usize>,
    /// Final verdicts by outcome.
    pub final_verdicts: BTreeMap<String, usize>,
    /// Actions blocked because nobody answered (fail closed).
    pub fail_closed: usize,
    /// Per minute of the drill and per role: escalations sent and acknowledgements.
    pub timeline: BTreeMap<String, Vec<(u64, usize, usize)>>,
    /// Records written to the drill topics, by topic.
    pub records_by_topic: BTreeMap<String, usize>,
    /// Roles the table shows (all that got escalations when empty).
    pub measured_roles: Vec<String>,
}

/// Every event of a drill, in time order: the background fleet, the bursts and the recorded
/// events (their gaps kept, moved to start with the drill), from `start_ms` on.
pub fn drill_events(
    scenario: &Scenario,
    start_ms: i64,
    recorded: Vec<AgentAction>,
) -> Vec<AgentAction> {
    let end_ms = start_ms + scenario.duration.as_millis() as i64;
    let mut events: Vec<AgentAction> = Vec::new();
    if scenario.background_rate > 0.0 {
        let step_ms = (1000.0 / scenario.background_rate).max(1.0) as i64;
        let mut fleet = Fleet::new(FleetConfig {
            seed: scenario.seed,
            start_ms,
            step_ms,
            trigger_boost: scenario.background_boost,
            ..Default::default()
        });
        loop {
            let e = fleet.next_event();
            if e.timestamp_ms >= end_ms {
                break;
            }
            events.push(e);
        }
    }
    for (bi, b) in scenario.bursts.iter().enumerate() {
        let at = start_ms + b.at.as_millis() as i64;
        let gap = b.over.as_millis() as i64 / b.count.max(1) as i64;
        for i in 0..b.count {
            events.push(burst_event(b, bi, i, at + gap * i as i64));
        }
    }
    if let Some(first) = recorded.iter().map(|e| e.timestamp_ms).min() {
        for mut e in recorded {
            e.timestamp_ms = start_ms + (e.timestamp_ms - first);
            if e.timestamp_ms < end_ms {
                events.push(e);
            }
        }
    }
    events.sort_by_key(|e| e.timestamp_ms);
    events
}

/// Builds a report from what a drill produced: records of the drill's verdicts topic and role
/// topics, as they were sent, and the acknowledgements the people gave.
pub struct Observer {
    report: GamedayReport,
    matrix: Arc<Matrix>,
    codec: Codec,
    verdicts_topic: String,
    role_topics: BTreeMap<String, String>,
    event_ms: BTreeMap<String, i64>,
    start_ms: i64,
    end_ms: i64,
    /// Per escalation id: role, when sent, action.
    sent_at: BTreeMap<String, (String, i64, String)>,
    /// Per role: (time, +1 sent / −1 moved on).
    waiting: BTreeMap<String, Vec<(i64, i64)>>,
}

impl Observer {
    /// An observer for a drill of `scenario` from `start_ms` over `events`.
    pub fn new(
        scenario: &Scenario,
        matrix: Arc<Matrix>,
        settings: &Settings,
        events: &[AgentAction],
        start_ms: i64,
    ) -> Result<Observer, GamedayError> {
        let mut report = GamedayReport {
            scenario: scenario.name.clone(),
            rule_version: matrix.version().to_string(),
            duration_s: scenario.duration.as_secs(),
            ..Default::default()
        };
        for r in matrix.roles() {
            report.roles.insert(r.name.clone(), RoleFigures::default());
        }
        Ok(Observer {
            report,
            role_topics: matrix
                .roles()
                .iter()
                .map(|r| {
                    (
                        format!("{}{}", settings.topics.role_prefix, r.topic),
                        r.name.clone(),
                    )
                })
                .collect(),
            matrix,
            codec: Codec::new(Default::default())?,
            verdicts_topic: settings.topics.verdicts.clone(),
            event_ms: events
                .iter()
                .map(|e| (e.action_id.clone(), e.timestamp_ms))
                .collect(),
            start_ms,
            end_ms: start_ms + scenario.duration.as_millis() as i64,
            sent_at: BTreeMap::new(),
            waiting: BTreeMap::new(),
        })
    }

    fn minute(&self, ms: i64) -> u64 {
        ((ms - self.start_ms).max(0) / 60_000) as u64
    }

    /// One record sent to `topic` at `now_ms`. Returns the role and the escalation when it is
    /// a new single escalation (for the people to answer).
    pub fn observe(
        &mut self,
        topic: &str,
        kind: Option<&[u8]>,
        payload: &[u8],
        now_ms: i64,
    ) -> Result<Option<(String, Escalation)>, GamedayError> {
        *self
            .report
            .records_by_topic
            .entry(topic.to_string())
            .or_default() += 1;
        if topic == self.verdicts_topic {
            let v: Verdict = self.codec.decode(SchemaKind::Verdict, payload)?;
            if v.outcome.is_initial() {
                self.report.events += 1;
                if v.level.needs_human() {
                    self.report.needs_human += 1;
                }
            } else if v.is_final {
                let name = serde_json::to_value(v.outcome)
                    .ok()
                    .and_then(|x| x.as_str().map(String::from))
                    .unwrap_or_default();
                *self.report.final_verdicts.entry(name).or_default() += 1;
                if v.outcome == VerdictOutcome::TimedOutBlocked {
                    self.report.fail_closed += 1;
                }
            }
            return Ok(None);
        }
        let Some(role) = self.role_topics.get(topic).cloned() else {
            return Ok(None);
        };
        let bucket = self.minute(now_ms);
        if kind == Some(b"digest") {
            let d: Digest = self.codec.decode(SchemaKind::Digest, payload)?;
            self.report
                .roles
                .get_mut(&role)
                .expect("every role")
                .digests += 1;
            for item in d.items {
                if let Some(id) = item.escalation_id {
                    if self
                        .sent_at
                        .insert(id, (role.clone(), now_ms, item.action_id.clone()))
                        .is_none()
                    {
                        self.report
                            .roles
                            .get_mut(&role)
                            .expect("every role")
                            .escalations += 1;
                        self.waiting
                            .entry(role.clone())
                            .or_default()
                            .push((now_ms, 1));
                        bump(
                            self.report.timeline.entry(role.clone()).or_default(),
                            bucket,
                            1,
                            0,
                        );
                    }
                }
            }
            return Ok(None);
        }
        let x: Escalation = self.codec.decode(SchemaKind::Escalation, payload)?;
        self.report
            .roles
            .get_mut(&role)
            .expect("every role")
            .escalation_messages += 1;
        if self.sent_at.contains_key(&x.escalation_id) {
            return Ok(None); // an update of a grouped escalation
        }
        self.sent_at.insert(
            x.escalation_id.clone(),
            (role.clone(), now_ms, x.action_id.clone()),
        );
        self.report
            .roles
            .get_mut(&role)
            .expect("every role")
            .escalations += 1;
        bump(
            self.report.timeline.entry(role.clone()).or_default(),
            bucket,
            1,
            0,
        );
        if let Some(prev) = x.history.last() {
            // Moved on from another role: a missed deadline, or a human's redirect.
            if prev.reason.starts_with("redirected") {
                self.report
                    .roles
                    .get_mut(&role)
                    .expect("every role")
                    .redirects_in += 1;
            } else {
                self.report
                    .roles
                    .get_mut(&role)
                    .expect("every role")
                    .re_escalations += 1;
                *self
                    .report
                    .re_escalations_by_tier
                    .entry(x.tier.as_str().to_string())
                    .or_default() += 1;
                if let Some(f) = self.report.roles.get_mut(&prev.role) {
                    f.missed_deadlines += 1;
                }
            }
            self.waiting
                .entry(prev.role.clone())
                .or_default()
                .push((now_ms, -1));
        }
        self.waiting
            .entry(role.clone())
            .or_default()
            .push((now_ms, 1));
        Ok(Some((role, x)))
    }

    /// The report, given when each escalation was acknowledged (escalation id → ms).
    pub fn finish(mut self, acks: &BTreeMap<String, i64>, measure: &Measure) -> GamedayReport {
        let overload_pending = measure.overload_pending;
        self.report.measured_roles = measure.roles.clone();
        // Per role, in ms: event → escalation, escalation → ack, event → ack.
        type Samples = (Vec<i64>, Vec<i64>, Vec<i64>);
        let mut by_role: BTreeMap<String, Samples> = BTreeMap::new();
        for (id, (role, at, action)) in &self.sent_at {
            let ev = self.event_ms.get(action).copied().unwrap_or(*at);
            let e = by_role.entry(role.clone()).or_default();
            e.0.push(at - ev);
            if let Some(&ack) = acks.get(id).filter(|a| **a <= self.end_ms) {
                e.1.push(ack - at);
                e.2.push(ack - ev);
                self.waiting
                    .entry(role.clone())
                    .or_default()
                    .push((ack, -1));
                let bucket = self.minute(ack);
                bump(
                    self.report.timeline.entry(role.clone()).or_default(),
                    bucket,
                    0,
                    1,
                );
            }
        }
        for (role, (to_esc, to_ack, ev_to_ack)) in by_role {
            let f = self.report.roles.get_mut(&role).expect("every role");
            f.acknowledged = to_ack.len();
            f.event_to_escalation = Spread::of(to_esc);
            f.escalation_to_ack = Spread::of(to_ack);
            f.event_to_ack = Spread::of(ev_to_ack);
        }
        for (role, mut changes) in std::mem::take(&mut self.waiting) {
            changes.sort_unstable();
            let (mut level, mut peak) = (0i64, 0i64);
            for (_, d) in changes {
                level += d;
                peak = peak.max(level);
            }
            if let Some(f) = self.report.roles.get_mut(&role) {
                f.peak_pending = peak.max(0) as usize;
            }
        }
        for f in self.report.roles.values_mut() {
            f.overloaded = f.peak_pending >= overload_pending || f.digests > 0;
        }
        let _ = &self.matrix;
        self.report.escalation_rate =
            self.report.needs_human as f64 / self.report.events.max(1) as f64;
        self.report
    }
}

/// Runs a scenario on a virtual clock starting at `start_ms`, through handoff's processor in
/// this process. `sink` receives every output record (topic name, record) in order: the CLI
/// writes them to the drill topics.
pub fn run(
    scenario: &Scenario,
    matrix: Arc<Matrix>,
    start_ms: i64,
    recorded: Vec<AgentAction>,
    mut sink: impl FnMut(&str, &Output),
) -> Result<GamedayReport, GamedayError> {
    let settings = Settings::default().drill();
    let mut p = Processor::new(&settings, matrix.clone())?;
    let topics = p.topics().to_vec();
    let codec = Codec::new(Default::default())?;
    let end_ms = start_ms + scenario.duration.as_millis() as i64;
    let step = scenario.step.as_millis() as i64;
    let events = drill_events(scenario, start_ms, recorded);
    let mut observer = Observer::new(scenario, matrix.clone(), &settings, &events, start_ms)?;
    let mut people = scenario.people(&matrix);
    let mut offset = 0i64;
    let mut next_event = 0usize;
    let mut out: Vec<Output> = Vec::new();
    let mut acks: BTreeMap<String, i64> = BTreeMap::new();
    let mut now = start_ms;
    while now <= end_ms {
        out.clear();
        while next_event < events.len() && events[next_event].timestamp_ms <= now {
            let e = &events[next_event];
            next_event += 1;
            let bytes = codec.encode(SchemaKind::AgentAction, e)?;
            offset += 1;
            p.process(
                input(
                    &settings.topics.input,
                    e.session_id.as_bytes(),
                    &bytes,
                    offset,
                ),
                now,
                &mut out,
            );
        }
        while let Some(d) = people.due(now) {
            let bytes = codec.encode(SchemaKind::HumanDecision, &d)?;
            offset += 1;
            p.process(
                input(
                    &settings.topics.decisions,
                    d.session_id.as_bytes(),
                    &bytes,
                    offset,
                ),
                now,
                &mut out,
            );
        }
        p.tick(now, &mut out);
        if p.awaits_delivery() {
            p.delivered();
        }
        for o in &out {
            let topic = topics[o.topic].as_str();
            sink(topic, o);
            let kind = o
                .headers
                .iter()
                .find(|(k, _)| k == KIND_HEADER)
                .map(|(_, v)| v.as_slice());
            if let Some((role, x)) = observer.observe(topic, kind, &o.payload, now)? {
                if let Shown::Planned(plan) = people.shown(&role, &x, now) {
                    for (at, k) in plan {
                        if k == DecisionKind::Acknowledge {
                            acks.insert(x.escalation_id.clone(), at);
                        }
                    }
                }
            }
        }
        now += step;
    }
    Ok(observer.finish(&acks, &scenario.measure))
}

fn bump(line: &mut Vec<(u64, usize, usize)>, minute: u64, esc: usize, acks: usize) {
    match line.iter_mut().find(|(m, _, _)| *m == minute) {
        Some(x) => {
            x.1 += esc;
            x.2 += acks;
        }
        None => {
            line.push((minute, esc, acks));
            line.sort_unstable();
        }
    }
}

fn input<'a>(topic: &'a str, key: &'a [u8], payload: &'a [u8], offset: i64) -> Input<'a> {
    Input {
        topic,
        partition: 0,
        offset,
        key: Some(key),
        payload: Some(payload),
        headers: &[],
    }
}

fn burst_event(b: &Burst, bi: usize, i: usize, at_ms: i64) -> AgentAction {
    let session = i % b.sessions.max(1);
    AgentAction {
        action_id: format!("drill-{bi}-{i}"),
        session_id: format!("drill-{bi}-s{session}"),
        agent_id: format!("drill-agent-{bi}"),
        timestamp_ms: at_ms,
        action_type: b.action_type.clone(),
        confidence: b.confidence,
        request: b.request.clone(),
        summary: format!("{} ({} of {})", b.name, i + 1, b.count),
        output: b.output.clone(),
        template_id: None,
        options: b.options.clone(),
        status: ActionStatus::Proposed,
        error: None,
        amount: b.amount,
        currency: b.amount.map(|_| "EUR".to_string()),
        customer: b.customer_tier.map(|tier| Customer {
            id: format!("cust-{bi}-{session}"),
            tier,
            prior_complaints: 0,
        }),
        reversible: b.reversible,
        affects_others: false,
        user_message: b.user_message.clone(),
        attributes: b.attributes.clone(),
    }
}

impl GamedayReport {
    /// Roles that got escalations, in chart colour order.
    pub fn charted_roles(&self) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(_, f)| f.escalations > 0)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Writes report.md, report.json and timeline.png into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(self).expect("a report serializes"),
        )?;
        std::fs::write(dir.join("timeline.png"), self.chart_png())
    }

    /// The timeline chart as PNG bytes (see [`super::chart`]).
    pub fn chart_png(&self) -> Vec<u8> {
        super::chart::timeline_png(
            &self.charted_roles(),
            &self.timeline,
            self.duration_s / 60 + 1,
        )
    }

    /// The report as Markdown, with a post-mortem template pre-filled with the figures.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "# Game-day: {}\n", self.scenario);
        let _ = writeln!(
            s,
            "{} virtual minutes, rules {}. {} events, {} needed a human (escalation rate {:.1}%). \
             {} action(s) blocked because nobody answered in time (fail closed).\n",
            self.duration_s / 60,
            self.rule_version,
            self.events,
            self.needs_human,
            100.0 * self.escalation_rate,
            self.fail_closed
        );
        let _ = writeln!(s, "## Time to engagement per role\n");
        let _ = writeln!(
            s,
            "| role | escalations | acknowledged | event → escalation p50/p95/max (s) | escalation → ack p50/p95/max (s) | event → ack p50/p95/max (s) | missed deadlines | re-escalations in | digests | peak waiting | overloaded |\n|---|---:|---:|---|---|---|---:|---:|---:|---:|---|"
        );
        let fmt = |x: &Spread| {
            if x.count == 0 {
                "-".to_string()
            } else {
                format!("{:.0} / {:.0} / {:.0}", x.p50_s, x.p95_s, x.max_s)
            }
        };
        for (role, f) in &self.roles {
            let chosen = self.measured_roles.is_empty() || self.measured_roles.contains(role);
            if !chosen || (f.escalations == 0 && f.missed_deadlines == 0) {
                continue;
            }
            let _ = writeln!(
                s,
                "| {role} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f.escalations,
                f.acknowledged,
                fmt(&f.event_to_escalation),
                fmt(&f.escalation_to_ack),
                fmt(&f.event_to_ack),
                f.missed_deadlines,
                f.re_escalations,
                f.digests,
                f.peak_pending,
                if f.overloaded { "**yes**" } else { "no" }
            );
        }
        let _ = writeln!(
            s,
            "\nRe-escalations by tier: {:?}. Final verdicts: {:?}.\n",
            self.re_escalations_by_tier, self.final_verdicts
        );
        let legend: Vec<String> = self
            .charted_roles()
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{r} {}", super::chart::PALETTE_NAMES[i % 8]))
            .collect();
        let _ = writeln!(
            s,
            "![Escalations and acknowledgements per minute](timeline.png)\n\nPer minute of the drill \
             (x, grid every 5 minutes; y, grid every 10): escalations sent (solid) and \
             acknowledgements (dotted) per role — {}.\n",
            legend.join(", ")
        );
        let overloaded: Vec<&str> = self
            .roles
            .iter()
            .filter(|(_, f)| f.overloaded)
            .map(|(r, _)| r.as_str())
            .collect();
        let _ = writeln!(s, "## Post-mortem\n");
        let _ = writeln!(
            s,
            "- **What happened:** {} events in {} minutes; {} needed a human.",
            self.events,
            self.duration_s / 60,
            self.needs_human
        );
        let _ = writeln!(
            s,
            "- **Who was engaged, how fast:** see the table; slowest p95 time to engagement: {}.",
            self.roles
                .iter()
                .filter(|(_, f)| f.event_to_ack.count > 0)
                .max_by(|a, b| a.1.event_to_ack.p95_s.total_cmp(&b.1.event_to_ack.p95_s))
                .map(|(r, f)| format!("{r}, {:.0} s", f.event_to_ack.p95_s))
                .unwrap_or_else(|| "nobody acknowledged".into())
        );
        let _ = writeln!(
            s,
            "- **Missed deadlines:** {}; **blocked for lack of an answer:** {}.",
            self.roles
                .values()
                .map(|f| f.missed_deadlines)
                .sum::<usize>(),
            self.fail_closed
        );
        let _ = writeln!(
            s,
            "- **Overloaded roles:** {}.",
            if overloaded.is_empty() {
                "none".to_string()
            } else {
                overloaded.join(", ")
            }
        );
        let _ = writeln!(s, "- **Causes:** _…_");
        let _ = writeln!(s, "- **What went well:** _…_");
        let _ = writeln!(
            s,
            "- **Rule changes decided** (try them with `handoff diff` first): _…_"
        );
        let _ = writeln!(s, "- **Owners and dates:** _…_");
        s
    }
}

impl VerdictOutcome {
    /// True for the first verdict of an event (not a human's answer or a timeout).
    pub fn is_initial(self) -> bool {
        matches!(
            self,
            VerdictOutcome::Proceed
                | VerdictOutcome::ProceedAndLog
                | VerdictOutcome::AwaitHuman
                | VerdictOutcome::Stopped
        )
    }
}

/// Runs a scenario on the wall clock against a live deployment: a `handoff run --drill` on the
/// cluster of `settings` (drill settings) decides the events this produces to the drill input
/// as their times come; the people answer what reaches the drill role topics; the report is
/// built from those topics. `grace` is how long to keep watching after the last event.
pub fn live(
    scenario: &Scenario,
    matrix: Arc<Matrix>,
    settings: &Settings,
    recorded: Vec<AgentAction>,
    grace: Duration,
    mut progress: impl FnMut(usize, usize),
) -> Result<GamedayReport, GamedayError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let kafka = |e: rdkafka::error::KafkaError| GamedayError::Kafka(e.to_string());
    let codec = Codec::new(Default::default())?;
    let clock = crate::clock::SystemClock;
    let start_ms = crate::clock::Clock::now_ms(&clock);
    let events = drill_events(scenario, start_ms, recorded);
    let mut observer = Observer::new(scenario, matrix.clone(), settings, &events, start_ms)?;
    let mut people = scenario.people(&matrix);

    // Watch the verdicts and role topics from their current ends: only this drill's records.
    let consumer: BaseConsumer =
        super::source::reader(settings).map_err(|e| GamedayError::Kafka(e.to_string()))?;
    let mut watched = vec![settings.topics.verdicts.clone()];
    watched.extend(observer.role_topics.keys().cloned());
    let mut tpl = rdkafka::TopicPartitionList::new();
    for t in &watched {
        let md = consumer
            .fetch_metadata(Some(t), settings.pipeline.connect_timeout)
            .map_err(kafka)?;
        for p in md.topics().iter().flat_map(|x| x.partitions()) {
            let (_, high) = consumer
                .fetch_watermarks(t, p.id(), settings.pipeline.connect_timeout)
                .map_err(kafka)?;
            tpl.add_partition_offset(t, p.id(), rdkafka::Offset::Offset(high))
                .map_err(kafka)?;
        }
    }
    consumer.assign(&tpl).map_err(kafka)?;
    let producer: BaseProducer =
        crate::kafka::client_config(&settings.kafka, crate::kafka::Role::Producer)
            .create()
            .map_err(kafka)?;
    let drill = || {
        OwnedHeaders::new().insert(Header {
            key: crate::event::wire::DRILL_HEADER,
            value: Some("true"),
        })
    };
    let end_ms = start_ms + scenario.duration.as_millis() as i64;
    let stop_ms = end_ms + grace.as_millis() as i64;
    let mut acks: BTreeMap<String, i64> = BTreeMap::new();
    let mut next_event = 0usize;
    loop {
        let now = crate::clock::Clock::now_ms(&clock);
        if now >= stop_ms {
            break;
        }
        while next_event < events.len() && events[next_event].timestamp_ms <= now {
            let e = &events[next_event];
            next_event += 1;
            let bytes = codec.encode(SchemaKind::AgentAction, e)?;
            producer
                .send(
                    BaseRecord::to(&settings.topics.input)
                        .key(e.session_id.as_bytes())
                        .payload(&bytes)
                        .headers(drill()),
                )
                .map_err(|(e, _)| kafka(e))?;
            if next_event % 100 == 0 || next_event == events.len() {
                progress(next_event, events.len());
            }
        }
        while let Some(mut d) = people.due(now) {
            d.decided_at_ms = now;
            if d.decision == DecisionKind::Acknowledge {
                acks.insert(d.escalation_id.clone(), now);
            }
            let bytes = codec.encode(SchemaKind::HumanDecision, &d)?;
            producer
                .send(
                    BaseRecord::to(&settings.topics.decisions)
                        .key(d.session_id.as_bytes())
                        .payload(&bytes)
                        .headers(drill()),
                )
                .map_err(|(e, _)| kafka(e))?;
        }
        producer.poll(Duration::ZERO);
        if let Some(m) = consumer.poll(Duration::from_millis(20)) {
            let m = m.map_err(kafka)?;
            let kind = m.headers().and_then(|h| {
                h.iter()
                    .find(|x| x.key == KIND_HEADER)
                    .and_then(|x| x.value.map(<[u8]>::to_vec))
            });
            let at = m.timestamp().to_millis().unwrap_or(now);
            if let Some((role, x)) =
                observer.observe(m.topic(), kind.as_deref(), m.payload().unwrap_or(&[]), at)?
            {
                people.shown(&role, &x, now);
            }
        }
    }
    producer.flush(Duration::from_secs(30)).map_err(kafka)?;
    Ok(observer.finish(&acks, &scenario.measure))
}
