//! The notification metrics, registered once into the caller's registry; each receiver's
//! label handles are resolved at start, so an attempt only touches atomics. The only label is
//! the receiver's name (from the configuration) and the result (a fixed set).

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Buckets of one attempt's latency, seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `result` label values.
pub const RESULTS: [&str; 4] = ["delivered", "failed", "rate_limited", "abandoned"];

/// One receiver's handles.
#[derive(Clone)]
pub struct ReceiverMetrics {
    /// `handoff_notifications_total{result="delivered"}`.
    pub delivered: IntCounter,
    /// `…{result="failed"}`: attempts that failed (retried).
    pub failed: IntCounter,
    /// `…{result="rate_limited"}`: attempts answered 429 (retried).
    pub rate_limited: IntCounter,
    /// `…{result="abandoned"}`: notices given up because what they announce closed.
    pub abandoned: IntCounter,
    /// `handoff_notification_latency_seconds`: one attempt.
    pub latency: Histogram,
    /// `handoff_notifications_pending`: notices waiting to be delivered.
    pub pending: IntGauge,
}

impl ReceiverMetrics {
    /// The counter of an attempt's or a notice's result (one of [`RESULTS`]).
    pub fn result(&self, result: &str) -> &IntCounter {
        match result {
            "delivered" => &self.delivered,
            "rate_limited" => &self.rate_limited,
            "abandoned" => &self.abandoned,
            _ => &self.failed,
        }
    }
}

/// Registers the three families into `registry` and resolves the handles of `receivers`.
/// Fails when they are registered there already.
pub fn register(
    registry: &Registry,
    receivers: &[&str],
) -> prometheus::Result<Vec<ReceiverMetrics>> {
    let total = IntCounterVec::new(
        Opts::new(
            "handoff_notifications_total",
            "Notification attempts by receiver and result (delivered, failed, rate_limited), and \
             notices abandoned because every escalation they announce closed.",
        ),
        &["receiver", "result"],
    )?;
    let latency = HistogramVec::new(
        HistogramOpts::new(
            "handoff_notification_latency_seconds",
            "Duration of one notification attempt (request to answer, or to the timeout).",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["receiver"],
    )?;
    let pending = IntGaugeVec::new(
        Opts::new(
            "handoff_notifications_pending",
            "Notices waiting to be delivered to a receiver (queued, in flight or between retries).",
        ),
        &["receiver"],
    )?;
    registry.register(Box::new(total.clone()))?;
    registry.register(Box::new(latency.clone()))?;
    registry.register(Box::new(pending.clone()))?;
    Ok(receivers
        .iter()
        .map(|r| ReceiverMetrics {
            delivered: total.with_label_values(&[r, "delivered"]),
            failed: total.with_label_values(&[r, "failed"]),
            rate_limited: total.with_label_values(&[r, "rate_limited"]),
            abandoned: total.with_label_values(&[r, "abandoned"]),
            latency: latency.with_label_values(&[r]),
            pending: pending.with_label_values(&[r]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_registered_once_with_every_receiver_and_result_exported() {
        let r = Registry::new();
        let m = register(&r, &["slack", "pager"]).unwrap();
        m[1].result("delivered").inc();
        m[1].result("anything else").inc();
        m[0].latency.observe(0.2);
        let text = {
            use prometheus::Encoder;
            let mut buf = Vec::new();
            prometheus::TextEncoder::new()
                .encode(&r.gather(), &mut buf)
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        for result in RESULTS {
            assert!(
                text.contains(&format!(
                    "handoff_notifications_total{{receiver=\"slack\",result=\"{result}\"}} 0"
                )),
                "{text}"
            );
        }
        assert!(
            text.contains("handoff_notifications_total{receiver=\"pager\",result=\"delivered\"} 1")
        );
        assert!(
            text.contains("handoff_notifications_total{receiver=\"pager\",result=\"failed\"} 1")
        );
        assert!(text.contains("handoff_notification_latency_seconds_count{receiver=\"slack\"} 1"));
        assert!(text.contains("handoff_notifications_pending{receiver=\"pager\"} 0"));
        assert!(register(&r, &["x"]).is_err(), "registered once");
    }
}
