//! Prometheus metrics on an explicit registry, and the `/metrics` endpoint.
//!
//! Labels are bounded sets only — level, role, tier, trigger, dead-letter reason — never an
//! action, session or agent id. Handles for every label value are resolved once, so the hot path
//! only touches atomics.

use crate::event::{DecisionKind, Level, Tier};
use crate::matrix::Trigger;

pub mod canary;
pub mod rules;
mod tables;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
pub use rules::RuleMetrics;

/// Buckets for decision latency (event → outputs delivered), seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets for time-to-human (escalation → first human answer), seconds: from a second to
/// four hours.
const HUMAN_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
];
/// Buckets for processing time of one record, seconds.
const PROCESSING_BUCKETS: &[f64] = &[
    0.000_001, 0.000_002, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.001, 0.01,
];

/// Every metric family handoff exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Per-role and per-family handles, growing as rule changes name new ones.
    tables: tables::Tables,
    triggers: [IntCounter; 12],
    dead_letters: IntCounterVec,
    /// Output records produced, by kind.
    pub verdicts: IntCounter,
    /// Input records read.
    pub consumed: IntCounter,
    /// Event (or record) timestamp → every output delivered.
    pub decision_latency: Histogram,
    /// Decode + decide + encode of one record.
    pub processing: Histogram,
    /// Input records being processed or awaiting delivery.
    pub in_flight: IntGauge,
    /// Records behind the end of each assigned input partition (librdkafka statistics).
    pub consumer_lag: IntGaugeVec,
    /// Fail closed, fail open.
    timeouts: [IntCounter; 2],
    decisions_ignored: IntCounterVec,
    digests: IntCounterVec,
    /// Deferred, sampled.
    reviews: [IntCounter; 2],
    rules: rules::RuleMetrics,
    canaries: canary::CanaryMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Registers a newly built collector and returns it (a handle sharing its values).
/// Registers a process's own metric families into `registry`, with `handoff_build_info` (the
/// dashboard's list of instances comes from it: the inbox and the gateway are instances too).
pub fn register_process(registry: &Registry, families: Vec<Box<dyn prometheus::core::Collector>>) {
    let build = IntGaugeVec::new(
        Opts::new(
            "handoff_build_info",
            "The running handoff build (always 1).",
        ),
        &["version"],
    )
    .expect("valid");
    build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    let _ = registry.register(Box::new(build));
    for family in families {
        let _ = registry.register(family);
    }
}

fn registered<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    built: prometheus::Result<C>,
) -> C {
    let c = built.expect("valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(r, IntCounterVec::new(Opts::new(name, help), labels))
}

impl Metrics {
    /// Registers every family on a new registry. `roles` are the matrix's role names, in order;
    /// `families` its action type families (see `Matrix::families`); `rule_version` is exported
    /// as an info metric.
    pub fn new(roles: &[String], families: &[String], rule_version: &str) -> Metrics {
        let r = Registry::new();
        let events = counter_vec(
            &r,
            "handoff_events_total",
            "Agent action events decided, by execution level and action type family.",
            &["level", "family"],
        );
        let triggers = counter_vec(
            &r,
            "handoff_trigger_events_total",
            "Events in which a trigger fired, by trigger.",
            &["trigger"],
        );
        let escalations = counter_vec(
            &r,
            "handoff_escalations_total",
            "Escalations produced, by role and tier.",
            &["role", "tier"],
        );
        let dead_letters = counter_vec(
            &r,
            "handoff_dead_letters_total",
            "Input records sent to the dead-letter topic, by reason.",
            &["reason"],
        );
        let verdicts = registered(
            &r,
            IntCounter::new("handoff_verdicts_total", "Verdicts produced."),
        );
        let consumed = registered(
            &r,
            IntCounter::new("handoff_consumed_records_total", "Input records read."),
        );
        let decision_latency = registered(&r, Histogram::with_opts(
            HistogramOpts::new(
                "handoff_decision_latency_seconds",
                "From the event's Kafka timestamp (else its own time) to every output delivered.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        ));
        let processing = registered(
            &r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "handoff_processing_seconds",
                    "Decode, decide and encode of one input record.",
                )
                .buckets(PROCESSING_BUCKETS.to_vec()),
            ),
        );
        let in_flight = registered(
            &r,
            IntGauge::new(
                "handoff_in_flight_records",
                "Input records being processed or waiting for their outputs to be delivered.",
            ),
        );
        let consumer_lag = registered(&r, IntGaugeVec::new(
            Opts::new(
                "handoff_consumer_lag_records",
                "Records between the committed position and the end of each assigned input partition.",
            ),
            &["partition"],
        ));
        let build = registered(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "handoff_build_info",
                    "The running handoff build (always 1).",
                ),
                &["version"],
            ),
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let time_to_human = registered(
            &r,
            prometheus::HistogramVec::new(
                HistogramOpts::new(
                    "handoff_time_to_human_seconds",
                    "From an escalation to the first human answer (acknowledgement or decision), \
                     by role answering and tier.",
                )
                .buckets(HUMAN_BUCKETS.to_vec()),
                &["role", "tier"],
            ),
        );
        let human_decisions = counter_vec(
            &r,
            "handoff_human_decisions_total",
            "Human answers applied, by role and decision (approve, reject, revise, redirect, \
             acknowledge).",
            &["role", "decision"],
        );
        let pending = registered(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "handoff_pending_escalations",
                    "Escalations held by this instance that wait for a human, by role and tier.",
                ),
                &["role", "tier"],
            ),
        );
        let deadline_misses = counter_vec(
            &r,
            "handoff_deadline_misses_total",
            "Acknowledgement deadlines that passed without an answer, by role and tier.",
            &["role", "tier"],
        );
        let timeouts = counter_vec(
            &r,
            "handoff_timeouts_total",
            "Actions whose escalation chain was exhausted, by verdict (blocked: fail closed; \
             proceed: fail open).",
            &["outcome"],
        );
        let decisions_ignored = counter_vec(
            &r,
            "handoff_decisions_ignored_total",
            "Human decisions that did nothing, by reason (unknown, closed, duplicate, invalid).",
            &["reason"],
        );
        let grouped = counter_vec(
            &r,
            "handoff_escalations_grouped_total",
            "New escalations that joined an open one of the same session, role and trigger.",
            &["role"],
        );
        let folded = counter_vec(
            &r,
            "handoff_escalations_folded_total",
            "Escalations beyond their role's rate limit, folded into a digest.",
            &["role"],
        );
        let digests = counter_vec(
            &r,
            "handoff_digests_total",
            "Digests sent, by target (a role, or review).",
            &["target"],
        );
        let reviews = counter_vec(
            &r,
            "handoff_reviews_total",
            "Actions sent to the review queue, by reason (deferred, sampled).",
            &["reason"],
        );
        digests.with_label_values(&["review"]);
        for reason in ["unknown", "closed", "duplicate", "invalid"] {
            decisions_ignored.with_label_values(&[reason]);
        }
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = r.register(Box::new(pc));
        }
        let tables = tables::Tables::new(tables::Vecs {
            events,
            escalations,
            time_to_human,
            human_decisions,
            pending,
            deadline_misses,
            grouped,
            folded,
            digests: digests.clone(),
        });
        for role in roles {
            tables.role(role);
        }
        for family in families {
            tables.family(family);
        }
        Metrics {
            tables,
            triggers: Trigger::ALL.map(|t| triggers.with_label_values(&[t.as_str()])),
            timeouts: ["blocked", "proceed"].map(|o| timeouts.with_label_values(&[o])),
            decisions_ignored,
            digests,
            reviews: ["deferred", "sampled"].map(|x| reviews.with_label_values(&[x])),
            dead_letters,
            verdicts,
            consumed,
            decision_latency,
            processing,
            in_flight,
            consumer_lag,
            rules: rules::RuleMetrics::register(&r, rule_version),
            canaries: canary::CanaryMetrics::register(&r, roles),
            registry: r,
        }
    }

    /// The registry every family is registered on.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The slot of role `name` (its handles are made the first time a name is seen).
    pub fn role(&self, name: &str) -> usize {
        self.tables.role(name)
    }

    /// The slot of action type family `name`.
    pub fn family(&self, name: &str) -> usize {
        self.tables.family(name)
    }

    /// Escalations produced so far, per role name.
    pub fn escalations_by_role(&self) -> Vec<(String, u64)> {
        self.tables.escalations_by_role()
    }

    /// The canaries' families.
    pub fn canaries(&self) -> &canary::CanaryMetrics {
        &self.canaries
    }

    /// The rule-version and reload families.
    pub fn rules(&self) -> &rules::RuleMetrics {
        &self.rules
    }

    /// Counts `n` events of family slot `family` (see [`Metrics::family`]; out of range counts
    /// as "other") decided at `level`. Workers count per batch (`pipeline::stats::Decided`).
    pub fn events(&self, level: Level, family: usize, n: u64) {
        self.tables.count_events(family, level, n);
    }

    /// Counts `n` events in which trigger `t` fired.
    pub fn trigger_events(&self, t: Trigger, n: u64) {
        self.triggers[t as usize].inc_by(n);
    }

    /// Counts an escalation produced for role slot `role` at `tier`.
    pub fn escalated(&self, role: usize, tier: Tier) {
        if let Some(r) = self.tables.role_handles(role) {
            r.escalations[tier as usize].inc();
        }
    }

    /// Records a human answer for role slot `role`; `waited_s` is set for the first answer
    /// to an escalation (time-to-human).
    pub fn answered(&self, role: usize, tier: Tier, decision: DecisionKind, waited_s: Option<f64>) {
        let Some(r) = self.tables.role_handles(role) else {
            return;
        };
        r.human_decisions[decision as usize].inc();
        if let Some(w) = waited_s {
            r.time_to_human[tier as usize].observe(w);
        }
    }

    /// Moves the pending escalations of role slot `role` at `tier` by `delta`.
    pub fn pending(&self, role: usize, tier: Tier, delta: i64) {
        if let Some(r) = self.tables.role_handles(role) {
            r.pending[tier as usize].add(delta);
        }
    }

    /// Counts a deadline that passed without acknowledgement.
    pub fn deadline_missed(&self, role: usize, tier: Tier) {
        if let Some(r) = self.tables.role_handles(role) {
            r.deadline_misses[tier as usize].inc();
        }
    }

    /// Counts an exhausted chain.
    pub fn timed_out(&self, fail_open: bool) {
        self.timeouts[usize::from(fail_open)].inc();
    }

    /// Counts an escalation grouped into an open one.
    pub fn grouped(&self, role: usize) {
        if let Some(r) = self.tables.role_handles(role) {
            r.grouped.inc();
        }
    }

    /// Counts an escalation folded into a digest.
    pub fn folded(&self, role: usize) {
        if let Some(r) = self.tables.role_handles(role) {
            r.folded.inc();
        }
    }

    /// Counts a digest sent to `target`.
    pub fn digest(&self, target: &str) {
        self.digests.with_label_values(&[target]).inc();
    }

    /// Counts an action sent to the review queue (`sampled` or deferred).
    pub fn review(&self, sampled: bool) {
        self.reviews[usize::from(sampled)].inc();
    }

    /// Counts a decision that did nothing.
    pub fn decision_ignored(&self, reason: &str) {
        self.decisions_ignored.with_label_values(&[reason]).inc();
    }

    /// Counts a dead letter.
    pub fn dead_letter(&self, reason: &str) {
        self.dead_letters.with_label_values(&[reason]).inc();
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding does not fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_conventions_and_labels_are_bounded() {
        let m = Metrics::new(
            &["owner".into(), "support".into()],
            &["email".into()],
            "rv-abc",
        );
        m.events(Level::AskFirst, 0, 1);
        m.trigger_events(Trigger::LowConfidence, 1);
        m.trigger_events(Trigger::HumanRequested, 1);
        m.events(Level::Execute, 7, 1);
        m.escalated(1, Tier::Immediate);
        m.dead_letter("avro_decode");
        m.verdicts.inc();
        m.decision_latency.observe(0.02);
        let text = m.render();
        for line in [
            "handoff_events_total{family=\"email\",level=\"ask_first\"} 1",
            "handoff_events_total{family=\"other\",level=\"execute\"} 1",
            "handoff_events_total{family=\"email\",level=\"execute\"} 0",
            "handoff_trigger_events_total{trigger=\"human_requested\"} 1",
            "handoff_escalations_total{role=\"support\",tier=\"immediate\"} 1",
            "handoff_escalations_total{role=\"owner\",tier=\"warm\"} 0",
            "handoff_dead_letters_total{reason=\"avro_decode\"} 1",
            "handoff_verdicts_total 1",
            "handoff_rule_info{version=\"rv-abc\"} 1",
            "handoff_decision_latency_seconds_bucket{le=\"0.025\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        for family in m.registry().gather() {
            let name = family.name();
            assert!(
                name.starts_with("handoff_") || name.starts_with("process_"),
                "{name}"
            );
            for metric in family.get_metric() {
                for l in metric.get_label() {
                    assert!(
                        [
                            "level",
                            "family",
                            "trigger",
                            "role",
                            "tier",
                            "reason",
                            "version",
                            "partition",
                            "decision",
                            "outcome",
                            "target",
                            "result"
                        ]
                        .contains(&l.name()),
                        "unexpected label {} on {name}",
                        l.name()
                    );
                }
            }
        }
    }
}
