//! The consumer's rebalance handling. The callbacks run on the consumer's own thread (inside
//! its poll), never on the async runtime.
//!
//! - Assignment: each worker is told to restore its new partitions' state before any of their
//!   records (the message is queued ahead of them, from inside the poll that returns them).
//! - Revocation: the workers dispatch what they hold, the producer delivers (both within
//!   `shutdown_deadline`), and the exact commit points of the revoked partitions are **stored
//!   and then committed** — storing first keeps librdkafka from committing an older stored
//!   offset for them afterwards, which would make the next owner redo work. Then the workers
//!   drop the partitions' state.
//! - While closing, the shutdown has already drained and committed: revocation only forgets.

use super::delivery::{OutputProducer, Shared};
use super::tracker::{Slot, Source};
use super::worker::Job;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::Producer;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The consumer's context: rebalances, statistics and commit results.
pub struct GroupContext {
    pub(super) shared: Arc<Shared>,
    pub(super) producer: Arc<OutputProducer>,
    pub(super) drain: Duration,
    pub(super) workers: Mutex<Vec<Sender<Job>>>,
    pub(super) input_topic: String,
    pub(super) decisions_topic: String,
    /// Set once the shutdown has committed: later revocations only forget.
    pub(super) closing: AtomicBool,
    /// Partitions revoked since the consumer thread last looked.
    pub(super) revoked: Mutex<Vec<Slot>>,
}

impl GroupContext {
    /// The slot of partition `partition` of `topic`.
    pub fn slot(&self, topic: &str, partition: i32) -> Slot {
        Slot::of(topic, &self.input_topic, partition)
    }

    /// The topic of a slot.
    pub fn topic(&self, slot: Slot) -> &str {
        match slot.source {
            Source::Actions => &self.input_topic,
            Source::Decisions => &self.decisions_topic,
        }
    }

    fn to_worker(&self, partition: i32, job: Job) {
        let workers = self.workers.lock().expect("workers lock");
        if !workers.is_empty() {
            let _ = workers[super::worker_of(partition, workers.len())].send(job);
        }
    }

    /// Drains and commits the revoked partitions (see the module's description).
    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        if !self.closing.load(Ordering::Acquire) {
            if !self.shared.wait_queued(self.drain) {
                tracing::warn!("revocation: workers did not empty their queues in time");
            }
            if let Err(e) = self.producer.flush(Timeout::After(self.drain)) {
                tracing::warn!(error = %e, "revocation: producer flush did not finish; undelivered work will be re-processed");
            }
            let commit = self.commit_points(tpl);
            if commit.count() > 0 {
                // Stored first: librdkafka would otherwise commit its older stored offsets
                // for these partitions after ours.
                let stored = consumer.store_offsets(&commit);
                let committed = stored.and_then(|()| consumer.commit(&commit, CommitMode::Sync));
                if let Err(e) = committed {
                    tracing::warn!(error = %e, "revocation: commit failed; the next owner re-processes from the last commit");
                }
            }
        }
        let mut tracker = self.shared.tracker.lock().expect("tracker lock");
        let mut revoked = self.revoked.lock().expect("revoked lock");
        for el in tpl.elements() {
            let slot = self.slot(el.topic(), el.partition());
            let left = tracker.forget(slot);
            revoked.push(slot);
            if slot.source != Source::Actions {
                continue;
            }
            let _ = self
                .shared
                .stats
                .metrics
                .consumer_lag
                .remove_label_values(&[&el.partition().to_string()]);
            self.to_worker(el.partition(), Job::Forget(el.partition()));
            tracing::info!(
                partition = el.partition(),
                undelivered = left,
                "partition revoked"
            );
        }
    }

    /// The tracker's commit points of the partitions in `tpl`.
    fn commit_points(&self, tpl: &TopicPartitionList) -> TopicPartitionList {
        let points: Vec<(Slot, i64)> = {
            let tracker = self.shared.tracker.lock().expect("tracker lock");
            tpl.elements()
                .iter()
                .map(|el| self.slot(el.topic(), el.partition()))
                .filter_map(|slot| Some((slot, tracker.commit_point(slot)?)))
                .collect()
        };
        self.offsets(points)
    }

    /// Commit points as offsets for the consumer.
    pub(super) fn offsets(
        &self,
        points: impl IntoIterator<Item = (Slot, i64)>,
    ) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (slot, point) in points {
            let _ =
                tpl.add_partition_offset(self.topic(slot), slot.partition, Offset::Offset(point));
        }
        tpl
    }

    fn assign(&self, tpl: &TopicPartitionList) {
        let of = |topic: &str| -> Vec<i32> {
            tpl.elements()
                .iter()
                .filter(|e| e.topic() == topic)
                .map(|e| e.partition())
                .collect()
        };
        let parts = of(&self.input_topic);
        let decisions = of(&self.decisions_topic);
        {
            // Whatever the tracker still holds of these partitions is from an earlier
            // assignment: their records will be read again from the committed offset.
            let mut tracker = self.shared.tracker.lock().expect("tracker lock");
            for el in tpl.elements() {
                tracker.forget(self.slot(el.topic(), el.partition()));
            }
        }
        if parts != decisions {
            tracing::warn!(input = ?parts, decisions = ?decisions, "input and decision partitions differ: decisions for another member's partitions are ignored there (use the range assignor)");
        }
        tracing::info!(partitions = ?parts, "partitions assigned");
        let n = self.workers.lock().expect("workers lock").len();
        if n == 0 {
            self.shared.health.assigned(0);
            return;
        }
        let mut by_worker: Vec<Vec<i32>> = vec![Vec::new(); n];
        for p in parts {
            by_worker[super::worker_of(p, n)].push(p);
        }
        let jobs: Vec<Vec<i32>> = by_worker.into_iter().filter(|ps| !ps.is_empty()).collect();
        self.shared.health.assigned(jobs.len());
        for ps in jobs {
            self.to_worker(ps[0], Job::Assign(ps));
        }
    }
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(topic) = statistics.topics.get(&self.input_topic) else {
            return;
        };
        let lag = &self.shared.stats.metrics.consumer_lag;
        for (id, p) in &topic.partitions {
            // librdkafka reports -1 for partitions it does not consume (and the internal "UA").
            if *id >= 0 && p.consumer_lag >= 0 {
                lag.with_label_values(&[&id.to_string()])
                    .set(p.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.revoke(consumer, tpl);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.assign(tpl);
        }
    }
}
