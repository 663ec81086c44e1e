//! In-process counters and latency histograms of a running pipeline, read by the demo's live
//! summary and the run's final report.

use crate::event::Level;
use crate::matrix::Trigger;
use crate::metrics::Metrics;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// One worker's counts of decided events between merges ([`Stats::merge_decided`]): each
/// record adds to the worker's own numbers, and the shared counters (touched by every worker)
/// change once per batch.
#[derive(Debug, Default)]
pub struct Decided {
    /// Per family slot: events at each level.
    events: Vec<(usize, [u64; 4])>,
    /// Events in which each trigger fired.
    triggers: [u64; 12],
}

impl Decided {
    /// Counts one decided event: its level, family slot and triggers.
    pub fn record(&mut self, level: Level, family: usize, triggers: &[Trigger]) {
        let i = match self.events.iter().position(|(f, _)| *f == family) {
            Some(i) => i,
            None => {
                self.events.push((family, [0; 4]));
                self.events.len() - 1
            }
        };
        self.events[i].1[level as usize] += 1;
        for &t in triggers {
            self.triggers[t as usize] += 1;
        }
    }
}

/// Counters shared between the processing loop and the delivery callbacks.
#[derive(Debug)]
pub struct Stats {
    /// Input records read.
    pub consumed: AtomicU64,
    /// Events decided, by level.
    pub by_level: [AtomicU64; 4],
    /// Events in which each trigger fired.
    pub by_trigger: [AtomicU64; 12],
    /// Records dead-lettered.
    pub dead_letters: AtomicU64,
    /// Input records whose every output was delivered.
    pub completed: AtomicU64,
    /// Output records sent (verdicts, escalations, dead letters).
    pub produced: AtomicU64,
    /// Bytes of output record values sent.
    pub produced_bytes: AtomicU64,
    /// Event timestamp → all outputs delivered, milliseconds.
    pub end_to_end_ms: Mutex<Histogram<u64>>,
    /// Decode + decide + encode of a decided event (`handoff_processing_seconds`).
    pub processing: super::steps::Timer,
    /// Human answers applied.
    pub answered: AtomicU64,
    /// Deadlines that passed without acknowledgement.
    pub deadline_misses: AtomicU64,
    /// Actions timed out at the end of their chain.
    pub timeouts: AtomicU64,
    /// Decisions that did nothing.
    pub decisions_ignored: AtomicU64,
    /// The same events as Prometheus metrics.
    pub metrics: Metrics,
    /// Where a record's time goes (registered with `metrics`).
    pub steps: super::steps::Steps,
    /// Dead-letter log lines, at most one a second.
    dead_letter_log: crate::logs::LogLimiter,
}

impl Stats {
    /// Zeroed counters for the given roles and action type families; `rule_version` is exported
    /// as an info metric.
    pub fn new(role_names: Vec<String>, families: &[String], rule_version: &str) -> Self {
        let metrics = Metrics::new(&role_names, families, rule_version);
        let processing = super::steps::Timer::new(metrics.processing.clone(), 60_000_000);
        Stats {
            steps: super::steps::Steps::register(metrics.registry()),
            metrics,
            dead_letter_log: crate::logs::LogLimiter::new(1000),
            consumed: AtomicU64::new(0),
            by_level: Default::default(),
            by_trigger: Default::default(),
            dead_letters: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            deadline_misses: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            decisions_ignored: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            produced: AtomicU64::new(0),
            produced_bytes: AtomicU64::new(0),
            end_to_end_ms: Mutex::new(Histogram::new_with_bounds(1, 3_600_000, 2).expect("bounds")),
            processing,
        }
    }

    /// Records an input record read.
    pub fn consumed(&self) {
        self.consumed.fetch_add(1, Relaxed);
        self.metrics.consumed.inc();
    }

    /// Logs and counts a dead letter.
    pub fn dead_letter(&self, reason: &str, partition: i32, offset: i64) {
        self.dead_letters.fetch_add(1, Relaxed);
        self.metrics.dead_letter(reason);
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        if let Some(held_back) = self.dead_letter_log.allow(now) {
            tracing::info!(
                reason,
                partition,
                offset,
                held_back,
                "dead letter (at most one line a second; held_back = dead letters not logged since the last line)"
            );
        }
    }

    /// Adds a worker's counts of decided events (levels, families, triggers) and empties them.
    /// Their verdicts and escalations are counted as they are emitted ([`Stats::effect`]), their
    /// processing times by the worker's local [`Stats::processing`] timer.
    pub fn merge_decided(&self, d: &mut Decided) {
        for (family, levels) in &mut d.events {
            for (level, n) in Level::ALL.iter().zip(levels.iter_mut()) {
                if *n > 0 {
                    self.by_level[*level as usize].fetch_add(*n, Relaxed);
                    self.metrics.events(*level, *family, *n);
                    *n = 0;
                }
            }
        }
        for (t, n) in Trigger::ALL.iter().zip(d.triggers.iter_mut()) {
            if *n > 0 {
                self.by_trigger[*t as usize].fetch_add(*n, Relaxed);
                self.metrics.trigger_events(*t, *n);
                *n = 0;
            }
        }
    }

    fn role(&self, name: &str) -> usize {
        self.metrics.role(name)
    }

    /// Records what a change of escalation state means for the counters; logs the notable
    /// ones (missed deadlines, timeouts).
    pub fn effect(&self, effect: &crate::state::Effect) {
        use crate::state::Effect;
        let m = &self.metrics;
        match effect {
            Effect::Verdict(_) => m.verdicts.inc(),
            Effect::CanaryEscalation(..) | Effect::Approval(..) => {}
            Effect::CanaryVerdict(v, expect) => {
                if let Some(result) = crate::event::canary::CanaryResult::of(*expect, v.outcome) {
                    // Not handed to anyone: no role.
                    let role = v.roles.first().map_or("none", String::as_str);
                    m.canaries().settled(role, result);
                }
            }
            Effect::CanaryAnswered { role, waited_ms } => {
                m.canaries().answered(role, *waited_ms as f64 / 1000.0)
            }
            Effect::Escalation(_, x) => m.escalated(self.role(&x.role), x.tier),
            Effect::Grouped(role) => m.grouped(self.role(role)),
            Effect::Review(item) => m.review(item.reason == crate::event::DigestReason::Sampled),
            Effect::Opened(role, tier) => m.pending(self.role(role), *tier, 1),
            Effect::Closed(role, tier) => m.pending(self.role(role), *tier, -1),
            Effect::Answered {
                role,
                tier,
                decision,
                waited_ms,
            } => {
                self.answered.fetch_add(1, Relaxed);
                m.answered(
                    self.role(role),
                    *tier,
                    *decision,
                    waited_ms.map(|w| w as f64 / 1000.0),
                );
            }
            Effect::DeadlineMissed {
                role,
                tier,
                action_id,
            } => {
                self.deadline_misses.fetch_add(1, Relaxed);
                m.deadline_missed(self.role(role), *tier);
                tracing::info!(role = %role, tier = tier.as_str(), action_id, "acknowledgement deadline missed");
            }
            Effect::TimedOut {
                fail_open,
                action_id,
            } => {
                self.timeouts.fetch_add(1, Relaxed);
                m.timed_out(*fail_open);
                tracing::warn!(
                    action_id,
                    fail_open,
                    "escalation chain exhausted: action timed out"
                );
            }
        }
    }

    /// Logs and counts a human decision that did nothing.
    pub fn decision_ignored(&self, why: &crate::state::Ignored, partition: i32, offset: i64) {
        self.decisions_ignored.fetch_add(1, Relaxed);
        self.metrics.decision_ignored(why.reason());
        tracing::info!(
            reason = why.reason(),
            partition,
            offset,
            "decision ignored: {why}"
        );
    }

    /// Records an escalation to `role` folded into its next digest by the role's rate limit.
    pub fn folded(&self, role: &str) {
        self.metrics.folded(self.metrics.role(role));
    }

    /// Records a digest sent to `target` (a role, or the review queue).
    pub fn digest_sent(&self, target: &str) {
        self.metrics.digest(target);
    }

    /// Records an input whose outputs are all delivered.
    pub fn completed(&self, event_ms: i64, now_ms: i64) {
        self.completed.fetch_add(1, Relaxed);
        if event_ms > 0 {
            self.metrics
                .decision_latency
                .observe((now_ms - event_ms).max(0) as f64 / 1000.0);
            let _ = self
                .end_to_end_ms
                .lock()
                .expect("stats lock")
                .record((now_ms - event_ms).max(1) as u64);
        }
    }

    /// A snapshot for display.
    pub fn snapshot(&self) -> Snapshot {
        let e2e = self.end_to_end_ms.lock().expect("stats lock");
        Snapshot {
            consumed: self.consumed.load(Relaxed),
            completed: self.completed.load(Relaxed),
            produced: self.produced.load(Relaxed),
            produced_bytes: self.produced_bytes.load(Relaxed),
            by_level: std::array::from_fn(|i| self.by_level[i].load(Relaxed)),
            by_role: self.metrics.escalations_by_role(),
            by_trigger: Trigger::ALL
                .iter()
                .map(|t| (*t, self.by_trigger[*t as usize].load(Relaxed)))
                .collect(),
            dead_letters: self.dead_letters.load(Relaxed),
            e2e_ms: [e2e.value_at_quantile(0.5), e2e.value_at_quantile(0.99)],
            processing_us: self.processing.quantiles(),
            answered: self.answered.load(Relaxed),
            deadline_misses: self.deadline_misses.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            decisions_ignored: self.decisions_ignored.load(Relaxed),
            steps: self.steps.quantiles(),
        }
    }
}

/// Counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Input records read.
    pub consumed: u64,
    /// Inputs fully delivered.
    pub completed: u64,
    /// Output records sent.
    pub produced: u64,
    /// Bytes of output values sent.
    pub produced_bytes: u64,
    /// Events by level.
    pub by_level: [u64; 4],
    /// Escalations by role.
    pub by_role: Vec<(String, u64)>,
    /// Events by trigger.
    pub by_trigger: Vec<(Trigger, u64)>,
    /// Dead letters.
    pub dead_letters: u64,
    /// p50, p99 of event → delivered, ms.
    pub e2e_ms: [u64; 2],
    /// p50, p99 of processing time, µs.
    pub processing_us: [u64; 2],
    /// Human answers applied.
    pub answered: u64,
    /// Deadlines missed.
    pub deadline_misses: u64,
    /// Actions timed out.
    pub timeouts: u64,
    /// Decisions ignored.
    pub decisions_ignored: u64,
    /// p50, p99 per step of a record's way, µs.
    pub steps: Vec<(super::steps::Step, [u64; 2])>,
}

impl Snapshot {
    /// Events decided.
    pub fn decided(&self) -> u64 {
        self.by_level.iter().sum()
    }

    /// A few lines for a terminal; `rate` is events/s since the last snapshot.
    pub fn render(&self, rate: f64) -> String {
        let levels: Vec<String> = Level::ALL
            .iter()
            .zip(self.by_level)
            .map(|(l, c)| format!("{} {c}", l.as_str()))
            .collect();
        let roles: Vec<String> = self
            .by_role
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|(r, c)| format!("{r} {c}"))
            .collect();
        let triggers: Vec<String> = self
            .by_trigger
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|(t, c)| format!("{t} {c}"))
            .collect();
        let human = self.by_level[2] + self.by_level[3];
        let share = if self.decided() > 0 {
            100.0 * human as f64 / self.decided() as f64
        } else {
            0.0
        };
        let steps: Vec<String> = self
            .steps
            .iter()
            .filter(|(_, q)| q[1] > 0)
            .map(|(step, [p50, p99])| {
                format!(
                    "{} {}/{}",
                    step.as_str(),
                    duration_us(*p50),
                    duration_us(*p99)
                )
            })
            .collect();
        let steps = if steps.is_empty() {
            String::new()
        } else {
            format!("\n  steps p50/p99: {}", steps.join(", "))
        };
        format!(
            "records {:>9} ({rate:>8.0}/s)  dead letters {}  escalation rate {share:.1}%\n  \
             verdicts:    {}\n  escalations: {}\n  triggers:    {}\n  humans:      {} answers, {} missed deadlines, {} timed out, {} decisions ignored\n  latency: event→delivered p50 {} ms p99 {} ms; processing p50 {} µs p99 {} µs{steps}",
            self.consumed,
            self.dead_letters,
            levels.join(", "),
            if roles.is_empty() { "-".into() } else { roles.join(", ") },
            if triggers.is_empty() { "-".into() } else { triggers.join(", ") },
            self.answered,
            self.deadline_misses,
            self.timeouts,
            self.decisions_ignored,
            self.e2e_ms[0],
            self.e2e_ms[1],
            self.processing_us[0],
            self.processing_us[1],
        )
    }
}

/// `µs` as a short duration: "850 µs", "12.5 ms", "3.2 s".
fn duration_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.1} s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workers_decided_counts_reach_the_shared_ones_only_when_merged_and_only_once() {
        let stats = Stats::new(vec!["owner".into()], &["email".into()], "v1");
        let email = stats.metrics.family("email");
        let mut d = Decided::default();
        d.record(Level::AskFirst, email, &[Trigger::LowConfidence]);
        d.record(Level::Execute, email, &[]);
        d.record(Level::Execute, usize::MAX, &[Trigger::LowConfidence]);
        assert_eq!(
            stats.snapshot().decided(),
            0,
            "nothing shared before the merge"
        );
        stats.merge_decided(&mut d);
        stats.merge_decided(&mut d);
        let snap = stats.snapshot();
        assert_eq!(snap.decided(), 3);
        assert_eq!(snap.by_level[Level::Execute as usize], 2);
        let low = snap
            .by_trigger
            .iter()
            .find(|(t, _)| *t == Trigger::LowConfidence);
        assert_eq!(low.map(|(_, n)| *n), Some(2));
        let text = stats.metrics.render();
        for line in [
            "handoff_events_total{family=\"email\",level=\"ask_first\"} 1",
            "handoff_events_total{family=\"email\",level=\"execute\"} 1",
            "handoff_events_total{family=\"other\",level=\"execute\"} 1",
            "handoff_trigger_events_total{trigger=\"low_confidence\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn step_durations_read_in_their_unit() {
        for (us, text) in [
            (0, "0 µs"),
            (850, "850 µs"),
            (1_000, "1.0 ms"),
            (12_540, "12.5 ms"),
            (3_210_000, "3.2 s"),
        ] {
            assert_eq!(duration_us(us), text);
        }
    }
}
