//! Prometheus metrics on an explicit registry, and the `/metrics` endpoint.
//!
//! Labels are bounded sets only — level, role, tier, trigger, dead-letter reason — never an
//! action, session or agent id. Handles for every label value are resolved once, so the hot path
//! only touches atomics.

use crate::event::{DecisionKind, Level, Tier};
use crate::matrix::Trigger;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

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
    /// Per family (the last is "other"): one counter per level.
    events: Vec<[IntCounter; 4]>,
    triggers: [IntCounter; 12],
    /// Per role: warm, immediate.
    escalations: Vec<[IntCounter; 2]>,
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
    /// Per role: warm, immediate.
    time_to_human: Vec<[Histogram; 2]>,
    /// Per role: one counter per decision kind.
    human_decisions: Vec<[IntCounter; 5]>,
    /// Per role: warm, immediate.
    pending: Vec<[IntGauge; 2]>,
    /// Per role: warm, immediate.
    deadline_misses: Vec<[IntCounter; 2]>,
    /// Fail closed, fail open.
    timeouts: [IntCounter; 2],
    decisions_ignored: IntCounterVec,
    /// Per role.
    grouped: Vec<IntCounter>,
    /// Per role.
    folded: Vec<IntCounter>,
    digests: IntCounterVec,
    /// Deferred, sampled.
    reviews: [IntCounter; 2],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Registers a newly built collector and returns it (a handle sharing its values).
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
        let info = registered(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "handoff_rule_info",
                    "The rule version of the matrix deciding (always 1).",
                ),
                &["version"],
            ),
        );
        info.with_label_values(&[rule_version]).set(1);
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
        for t in roles.iter().map(String::as_str).chain(["review"]) {
            digests.with_label_values(&[t]);
        }
        for reason in ["unknown", "closed", "duplicate", "invalid"] {
            decisions_ignored.with_label_values(&[reason]);
        }
        let tiers = [Tier::Warm, Tier::Immediate];
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = r.register(Box::new(pc));
        }
        Metrics {
            events: families
                .iter()
                .map(String::as_str)
                .chain(std::iter::once("other"))
                .map(|f| Level::ALL.map(|l| events.with_label_values(&[l.as_str(), f])))
                .collect(),
            triggers: Trigger::ALL.map(|t| triggers.with_label_values(&[t.as_str()])),
            escalations: roles
                .iter()
                .map(|role| {
                    [Tier::Warm, Tier::Immediate]
                        .map(|t| escalations.with_label_values(&[role, t.as_str()]))
                })
                .collect(),
            time_to_human: roles
                .iter()
                .map(|role| tiers.map(|t| time_to_human.with_label_values(&[role, t.as_str()])))
                .collect(),
            human_decisions: roles
                .iter()
                .map(|role| {
                    DecisionKind::ALL
                        .map(|d| human_decisions.with_label_values(&[role, d.as_str()]))
                })
                .collect(),
            pending: roles
                .iter()
                .map(|role| tiers.map(|t| pending.with_label_values(&[role, t.as_str()])))
                .collect(),
            deadline_misses: roles
                .iter()
                .map(|role| tiers.map(|t| deadline_misses.with_label_values(&[role, t.as_str()])))
                .collect(),
            timeouts: ["blocked", "proceed"].map(|o| timeouts.with_label_values(&[o])),
            decisions_ignored,
            grouped: roles
                .iter()
                .map(|role| grouped.with_label_values(&[role]))
                .collect(),
            folded: roles
                .iter()
                .map(|role| folded.with_label_values(&[role]))
                .collect(),
            digests,
            reviews: ["deferred", "sampled"].map(|x| reviews.with_label_values(&[x])),
            dead_letters,
            verdicts,
            consumed,
            decision_latency,
            processing,
            in_flight,
            consumer_lag,
            registry: r,
        }
    }

    /// The registry every family is registered on.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts a decided event of action type family `family` (an index into the families given
    /// to [`Metrics::new`]; out of range counts as "other").
    pub fn decided(&self, level: Level, family: usize, triggers: &[Trigger]) {
        let f = family.min(self.events.len() - 1);
        self.events[f][level as usize].inc();
        for t in triggers {
            self.triggers[*t as usize].inc();
        }
    }

    /// Counts an escalation produced for role index `role` at `tier`.
    pub fn escalated(&self, role: usize, tier: Tier) {
        if let Some(r) = self.escalations.get(role) {
            r[tier as usize].inc();
        }
    }

    /// Records a human answer for role index `role`; `waited_s` is set for the first answer
    /// to an escalation (time-to-human).
    pub fn answered(&self, role: usize, tier: Tier, decision: DecisionKind, waited_s: Option<f64>) {
        if let Some(c) = self.human_decisions.get(role) {
            c[decision as usize].inc();
        }
        if let (Some(h), Some(w)) = (self.time_to_human.get(role), waited_s) {
            h[tier as usize].observe(w);
        }
    }

    /// Moves the pending escalations of role index `role` at `tier` by `delta`.
    pub fn pending(&self, role: usize, tier: Tier, delta: i64) {
        if let Some(g) = self.pending.get(role) {
            g[tier as usize].add(delta);
        }
    }

    /// Counts a deadline that passed without acknowledgement.
    pub fn deadline_missed(&self, role: usize, tier: Tier) {
        if let Some(c) = self.deadline_misses.get(role) {
            c[tier as usize].inc();
        }
    }

    /// Counts an exhausted chain.
    pub fn timed_out(&self, fail_open: bool) {
        self.timeouts[usize::from(fail_open)].inc();
    }

    /// Counts an escalation grouped into an open one.
    pub fn grouped(&self, role: usize) {
        if let Some(c) = self.grouped.get(role) {
            c.inc();
        }
    }

    /// Counts an escalation folded into a digest.
    pub fn folded(&self, role: usize) {
        if let Some(c) = self.folded.get(role) {
            c.inc();
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

/// Serves `GET /metrics` on `bind` until the task is dropped or aborted.
pub async fn serve(bind: std::net::SocketAddr, metrics: Metrics) -> std::io::Result<()> {
    serve_on(tokio::net::TcpListener::bind(bind).await?, metrics).await
}

/// Serves `GET /metrics` on a listener already bound (so that an address in use is found
/// before anything else starts) until the task is dropped or aborted.
pub async fn serve_on(listener: tokio::net::TcpListener, metrics: Metrics) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    m.render(),
                )
            }
        }),
    );
    let bind = listener.local_addr()?;
    tracing::info!(%bind, "metrics at http://{bind}/metrics");
    axum::serve(listener, app).await
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
        m.decided(
            Level::AskFirst,
            0,
            &[Trigger::LowConfidence, Trigger::HumanRequested],
        );
        m.decided(Level::Execute, 7, &[]);
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
                            "target"
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
