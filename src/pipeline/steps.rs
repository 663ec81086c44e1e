//! Where a record's time goes, step by step: `handoff_step_seconds{step}` and the p50/p99 per
//! step of the run's report and the pipeline benchmark.
//!
//! ```text
//!  produced ─ consumer_wait ─► polled ─ worker_queue ─► taken ─ processing ─► sent
//!     ─ produce_ack ─► every output acknowledged            (deferred_wait: see Step)
//! ```
//!
//! Each thread records into its own [`LocalSteps`] and merges it now and then (the consumer at
//! each offset store, a worker after each batch), so no lock or shared cache line is touched per
//! record; the delivery thread is the only writer of `produce_ack` and records it directly.

use hdrhistogram::Histogram;
use prometheus::local::LocalHistogram;
use prometheus::{Histogram as PromHistogram, HistogramOpts, HistogramVec, Registry};
use std::sync::Mutex;

/// One step of a record's way through the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// From the record's Kafka timestamp to the consumer polling it: the producer's linger, the
    /// broker, the fetch wait, and any backlog in front of it (milliseconds: the timestamp is
    /// wall-clock time).
    ConsumerWait,
    /// From polled to taken by the worker that owns its partition.
    WorkerQueue,
    /// Decode, decide, encode: the stage's `process` for any record (event or decision).
    Processing,
    /// From its outputs handed to the producer to the last of them acknowledged by the broker
    /// (the producer's linger and the produce round trip; for a human decision, its deferred
    /// state write too).
    ProduceAck,
    /// A worker waiting for a decision's or a deadline's effects to be acknowledged before their
    /// state write is sent (the worker's other partitions wait too).
    DeferredWait,
}

impl Step {
    /// Every step, in the order a record meets them.
    pub const ALL: [Step; 5] = [
        Step::ConsumerWait,
        Step::WorkerQueue,
        Step::Processing,
        Step::ProduceAck,
        Step::DeferredWait,
    ];

    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::ConsumerWait => "consumer_wait",
            Step::WorkerQueue => "worker_queue",
            Step::Processing => "processing",
            Step::ProduceAck => "produce_ack",
            Step::DeferredWait => "deferred_wait",
        }
    }
}

/// Buckets for steps, seconds: 10 µs to 10 s.
const STEP_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The longest step the quantiles tell apart (an hour); longer ones count as an hour.
const MAX_US: u64 = 3_600_000_000;

/// One distribution of durations: a Prometheus histogram (seconds) and, for exact quantiles in
/// reports, an hdr histogram (µs, clamped to `1..=max_us`).
#[derive(Debug)]
pub struct Timer {
    seconds: PromHistogram,
    micros: Mutex<Histogram<u64>>,
    max_us: u64,
}

impl Timer {
    /// Durations up to `max_us` told apart, exported to `seconds`.
    pub fn new(seconds: PromHistogram, max_us: u64) -> Timer {
        let micros = Mutex::new(Histogram::new_with_bounds(1, max_us, 2).expect("bounds"));
        Timer {
            seconds,
            micros,
            max_us,
        }
    }

    /// Records one duration (for a thread that is the only writer: others use [`Timer::local`]).
    pub fn record(&self, micros: u64) {
        self.seconds.observe(micros as f64 / 1e6);
        let clamped = micros.clamp(1, self.max_us);
        let _ = self.micros.lock().expect("timer lock").record(clamped);
    }

    /// A thread's own recorder, merged with [`Timer::merge`].
    pub fn local(&self) -> LocalTimer {
        LocalTimer {
            seconds: self.seconds.local(),
            micros: Histogram::new_with_bounds(1, self.max_us, 2).expect("bounds"),
            max_us: self.max_us,
        }
    }

    /// Adds a thread's records and empties them.
    pub fn merge(&self, local: &mut LocalTimer) {
        if local.micros.is_empty() {
            return;
        }
        let _ = self.micros.lock().expect("timer lock").add(&local.micros);
        local.micros.reset();
        local.seconds.flush();
    }

    /// p50 and p99, µs (zeros before any record).
    pub fn quantiles(&self) -> [u64; 2] {
        let h = self.micros.lock().expect("timer lock");
        [h.value_at_quantile(0.5), h.value_at_quantile(0.99)]
    }

    /// How many durations were recorded (and merged).
    pub fn count(&self) -> u64 {
        self.micros.lock().expect("timer lock").len()
    }
}

/// One thread's durations between merges into its [`Timer`].
pub struct LocalTimer {
    seconds: LocalHistogram,
    micros: Histogram<u64>,
    max_us: u64,
}

impl LocalTimer {
    /// Records one duration.
    pub fn record(&mut self, micros: u64) {
        self.seconds.observe(micros as f64 / 1e6);
        let _ = self.micros.record(micros.clamp(1, self.max_us));
    }
}

/// The process-wide step histograms: a [`Timer`] per step.
#[derive(Debug)]
pub struct Steps {
    timers: [Timer; 5],
}

impl Steps {
    /// Registers `handoff_step_seconds{step}`, every step present from the start.
    pub fn register(r: &Registry) -> Steps {
        let family = HistogramVec::new(
            HistogramOpts::new(
                "handoff_step_seconds",
                "Time an input record spends in each step: consumer_wait, worker_queue, \
                 processing, produce_ack, deferred_wait.",
            )
            .buckets(STEP_BUCKETS.to_vec()),
            &["step"],
        )
        .expect("valid metric");
        r.register(Box::new(family.clone()))
            .expect("registered once");
        Steps {
            timers: Step::ALL.map(|s| Timer::new(family.with_label_values(&[s.as_str()]), MAX_US)),
        }
    }

    /// Records one step of one record (for a thread that is the step's only writer).
    pub fn record(&self, step: Step, micros: u64) {
        self.timers[step as usize].record(micros);
    }

    /// A thread's own recorder, merged with [`Steps::merge`].
    pub fn local(&self) -> LocalSteps {
        LocalSteps {
            timers: self.timers.each_ref().map(Timer::local),
        }
    }

    /// Adds a thread's records and empties them.
    pub fn merge(&self, local: &mut LocalSteps) {
        for (timer, l) in self.timers.iter().zip(&mut local.timers) {
            timer.merge(l);
        }
    }

    /// p50 and p99 per step, µs (zeros for a step with no records).
    pub fn quantiles(&self) -> Vec<(Step, [u64; 2])> {
        Step::ALL
            .iter()
            .map(|s| (*s, self.timers[*s as usize].quantiles()))
            .collect()
    }

    /// How many records each step saw.
    pub fn counts(&self) -> [u64; 5] {
        Step::ALL.map(|s| self.timers[s as usize].count())
    }
}

/// One thread's step records between merges.
pub struct LocalSteps {
    timers: [LocalTimer; 5],
}

impl LocalSteps {
    /// Records one step of one record.
    pub fn record(&mut self, step: Step, micros: u64) {
        self.timers[step as usize].record(micros);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_records_reach_the_metric_and_the_quantiles_only_when_merged() {
        let r = Registry::new();
        let steps = Steps::register(&r);
        let mut local = steps.local();
        for us in [100, 200, 300, 400] {
            local.record(Step::WorkerQueue, us);
        }
        steps.record(Step::ProduceAck, 5_000);
        assert_eq!(steps.counts(), [0, 0, 0, 1, 0]);
        steps.merge(&mut local);
        assert_eq!(steps.counts(), [0, 4, 0, 1, 0]);
        // Merging again adds nothing: the local records were emptied.
        steps.merge(&mut local);
        assert_eq!(steps.counts(), [0, 4, 0, 1, 0]);
        let q = steps.quantiles();
        assert_eq!(q[1].0, Step::WorkerQueue);
        assert!((195..=205).contains(&q[1].1[0]), "p50 {:?}", q[1].1);
        assert!((395..=405).contains(&q[1].1[1]), "p99 {:?}", q[1].1);
        let text = {
            let mut buf = Vec::new();
            prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &r.gather(), &mut buf)
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        for (step, count) in [
            ("consumer_wait", 0),
            ("worker_queue", 4),
            ("produce_ack", 1),
            ("deferred_wait", 0),
        ] {
            let line = format!("handoff_step_seconds_count{{step=\"{step}\"}} {count}");
            assert!(text.contains(&line), "{line} missing in\n{text}");
        }
        assert!(text.contains("handoff_step_seconds_sum{step=\"worker_queue\"} 0.001\n"));
        // A step longer than the quantiles tell apart still counts (as an hour).
        steps.record(Step::ConsumerWait, 5 * MAX_US);
        assert_eq!(steps.counts()[0], 1);
        assert!(steps.quantiles()[0].1[1] >= MAX_US * 99 / 100);
    }
}
