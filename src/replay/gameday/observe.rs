//! The [`Observer`]: a drill's figures from the records it wrote, as they were sent — the
//! same on the virtual clock (every output of the processor) and on the wall clock (the drill
//! topics read back).

use super::report::{GamedayReport, RoleFigures, Spread};
use super::scenario::{Measure, Scenario};
use super::GamedayError;
use crate::config::Settings;
use crate::event::{AgentAction, Codec, Digest, Escalation, SchemaKind, Verdict, VerdictOutcome};
use crate::matrix::Matrix;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Builds a report from what a drill produced: records of the drill's verdicts topic and role
/// topics, as they were sent, and the acknowledgements the people gave.
pub struct Observer {
    report: GamedayReport,
    codec: Codec,
    verdicts_topic: String,
    /// Role topic → role name.
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
        let role_topics = matrix
            .roles()
            .iter()
            .map(|r| {
                let topic = settings.topics.role_topic(&r.topic);
                (topic, r.name.clone())
            })
            .collect();
        Ok(Observer {
            report,
            role_topics,
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

    /// The topics the observer reads: the verdicts topic, then the role topics.
    pub fn topics(&self) -> Vec<String> {
        std::iter::once(self.verdicts_topic.clone())
            .chain(self.role_topics.keys().cloned())
            .collect()
    }

    fn minute(&self, ms: i64) -> u64 {
        ((ms - self.start_ms).max(0) / 60_000) as u64
    }

    fn figures(&mut self, role: &str) -> &mut RoleFigures {
        self.report.roles.get_mut(role).expect("every role")
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
            self.verdict(self.codec.decode(SchemaKind::Verdict, payload)?);
            return Ok(None);
        }
        let Some(role) = self.role_topics.get(topic).cloned() else {
            return Ok(None);
        };
        if kind == Some(b"digest") {
            self.digest(
                &role,
                self.codec.decode(SchemaKind::Digest, payload)?,
                now_ms,
            );
            return Ok(None);
        }
        let x: Escalation = self.codec.decode(SchemaKind::Escalation, payload)?;
        Ok(self.escalation(&role, &x, now_ms).then_some((role, x)))
    }

    fn verdict(&mut self, v: Verdict) {
        if v.outcome.is_first() {
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
    }

    /// A digest: each folded escalation not seen before is one the role got.
    fn digest(&mut self, role: &str, d: Digest, now_ms: i64) {
        self.figures(role).digests += 1;
        for item in d.items {
            let Some(id) = item.escalation_id else {
                continue;
            };
            let sent = (role.to_string(), now_ms, item.action_id.clone());
            if self.sent_at.insert(id, sent).is_none() {
                self.received(role, now_ms);
            }
        }
    }

    /// A single escalation; true when it is new (not an update of a grouped one).
    fn escalation(&mut self, role: &str, x: &Escalation, now_ms: i64) -> bool {
        self.figures(role).escalation_messages += 1;
        if self.sent_at.contains_key(&x.escalation_id) {
            return false; // an update of a grouped escalation
        }
        let sent = (role.to_string(), now_ms, x.action_id.clone());
        self.sent_at.insert(x.escalation_id.clone(), sent);
        self.figures(role).escalations += 1;
        let bucket = self.minute(now_ms);
        bump(
            self.report.timeline.entry(role.to_string()).or_default(),
            bucket,
            1,
            0,
        );
        if let Some(prev) = x.history.last() {
            // Moved on from another role: a missed deadline, or a human's redirect.
            if prev.reason.starts_with("redirected") {
                self.figures(role).redirects_in += 1;
            } else {
                self.figures(role).re_escalations += 1;
                let tier = x.tier.as_str().to_string();
                *self.report.re_escalations_by_tier.entry(tier).or_default() += 1;
                if let Some(f) = self.report.roles.get_mut(&prev.role) {
                    f.missed_deadlines += 1;
                    let line = self.report.missed_timeline.entry(prev.role.clone());
                    count(line.or_default(), bucket);
                }
            }
            let moved_on = self.waiting.entry(prev.role.clone()).or_default();
            moved_on.push((now_ms, -1));
        }
        self.waiting
            .entry(role.to_string())
            .or_default()
            .push((now_ms, 1));
        true
    }

    /// An escalation from a digest reached `role` at `now_ms`.
    fn received(&mut self, role: &str, now_ms: i64) {
        self.figures(role).escalations += 1;
        self.waiting
            .entry(role.to_string())
            .or_default()
            .push((now_ms, 1));
        let bucket = self.minute(now_ms);
        bump(
            self.report.timeline.entry(role.to_string()).or_default(),
            bucket,
            1,
            0,
        );
    }

    /// The report, given when each escalation was acknowledged (escalation id → ms).
    pub fn finish(mut self, acks: &BTreeMap<String, i64>, measure: &Measure) -> GamedayReport {
        self.report.measured_roles = measure.roles.clone();
        self.engagement(acks);
        for (role, changes) in std::mem::take(&mut self.waiting) {
            if let Some(f) = self.report.roles.get_mut(&role) {
                f.peak_pending = peak(changes);
            }
        }
        for f in self.report.roles.values_mut() {
            f.overloaded = f.peak_pending >= measure.overload_pending || f.digests > 0;
        }
        self.report.escalation_rate =
            self.report.needs_human as f64 / self.report.events.max(1) as f64;
        self.report.settle();
        self.report
    }

    /// Times to engagement per role, and the acknowledgements (within the drill) on the
    /// timeline and off the waiting counts.
    fn engagement(&mut self, acks: &BTreeMap<String, i64>) {
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
            let f = self.figures(&role);
            f.acknowledged = to_ack.len();
            f.event_to_escalation = Spread::of(to_esc);
            f.escalation_to_ack = Spread::of(to_ack);
            f.event_to_ack = Spread::of(ev_to_ack);
        }
    }
}

/// One more in `minute` of a (minute, count) line kept in minute order.
fn count(line: &mut Vec<(u64, usize)>, minute: u64) {
    match line.iter_mut().find(|(m, _)| *m == minute) {
        Some(x) => x.1 += 1,
        None => {
            line.push((minute, 1));
            line.sort_unstable();
        }
    }
}

/// The highest level reached by a sum of (time, change) steps, taken in time order.
fn peak(mut changes: Vec<(i64, i64)>) -> usize {
    changes.sort_unstable();
    let (mut level, mut peak) = (0i64, 0i64);
    for (_, d) in changes {
        level += d;
        peak = peak.max(level);
    }
    peak.max(0) as usize
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
