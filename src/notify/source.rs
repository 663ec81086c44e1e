//! Where notices come from: a member of the group `<group_id>-inbox` reading the role topics
//! on its own thread. Records are told apart by their `handoff.kind` header (`escalation`,
//! `digest`; anything else is passed over). An offset is committed only once every notice at
//! or before it is settled (delivered or abandoned everywhere, its outcome handed to the
//! ledger): a crash re-reads what was not, and the ledger keeps it from being sent twice.
//!
//! Offsets are stored by this thread and committed by librdkafka (every 5 s, on revocation
//! and on close); the rebalance callbacks only send messages. Above `notify.max_pending`
//! unsettled notices the assignment is paused (reading resumes below half of it).

use super::engine::Engine;
use super::route::Notice;
use super::NotifyError;
use crate::config::Settings;
use crate::event::wire::{split_frame, KIND_HEADER};
use crate::event::{Codec, SchemaKind};
use crate::kafka::record::header;
use crate::kafka::{self, Role};
use crate::logs::LogLimiter;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

/// The suffix of the notifier's consumer group.
pub const GROUP_SUFFIX: &str = "inbox";

/// The headers of a role-topic record that say how to read it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordHeaders<'a> {
    /// `handoff.kind`: `escalation` or `digest`.
    pub kind: Option<&'a [u8]>,
    /// `handoff.schema.version`, absent for version 1.
    pub version: Option<&'a [u8]>,
}

/// The notice a role-topic record holds: `Ok(None)` for a record that is not one (another
/// kind, or none). `framed`: outputs are Confluent-framed (`frame_outputs`); handoff frames
/// them with the id of the shipped schema, so the datum is read with it. Pure.
pub fn decode(
    codec: &Codec,
    framed: bool,
    headers: RecordHeaders<'_>,
    payload: Option<&[u8]>,
) -> Result<Option<Notice>, String> {
    let RecordHeaders { kind, version } = headers;
    let version = crate::event::wire::parse_schema_version(version);
    let schema = match kind {
        Some(b"escalation") => SchemaKind::Escalation,
        Some(b"digest") => SchemaKind::Digest,
        _ => return Ok(None),
    };
    let bytes = payload.ok_or("the record has no value")?;
    let datum = if framed {
        split_frame(bytes).map_err(|e| e.message)?.1
    } else {
        bytes
    };
    let notice = match schema {
        SchemaKind::Digest => Notice::Digest(Box::new(
            codec
                .decode_header_version(schema, version, datum)
                .map_err(|e| e.to_string())?,
        )),
        _ => Notice::Escalation(Box::new(
            codec
                .decode_header_version(schema, version, datum)
                .map_err(|e| e.to_string())?,
        )),
    };
    Ok(Some(notice))
}

/// A partition of a role topic.
type Tp = (String, i32);

/// Which offsets of each assigned partition may be committed. Pure.
#[derive(Debug, Default)]
pub struct Offsets {
    parts: HashMap<Tp, Part>,
    epoch: u64,
    /// Offsets read and not settled, over every partition.
    unsettled: usize,
}

#[derive(Debug, Default)]
struct Part {
    epoch: u64,
    /// Offsets read, oldest first, and whether each is settled.
    queue: VecDeque<(i64, bool)>,
    /// The next offset to read after the settled prefix (what to commit).
    point: Option<i64>,
    /// The point last handed out by [`Offsets::advanced`].
    reported: Option<i64>,
}

/// An offset read, to settle later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    tp: Tp,
    epoch: u64,
    offset: i64,
}

impl Offsets {
    /// `tp` is (newly) assigned: what was read of it before is forgotten.
    pub fn assign(&mut self, tp: Tp) {
        self.revoke(&tp);
        self.epoch += 1;
        self.parts.insert(
            tp,
            Part {
                epoch: self.epoch,
                ..Part::default()
            },
        );
    }

    /// `tp` is no longer assigned.
    pub fn revoke(&mut self, tp: &Tp) {
        if let Some(p) = self.parts.remove(tp) {
            self.unsettled -= p.queue.iter().filter(|(_, s)| !s).count();
        }
    }

    /// `offset` of `tp` was read; its token settles it.
    pub fn read(&mut self, tp: Tp, offset: i64) -> Token {
        if !self.parts.contains_key(&tp) {
            self.assign(tp.clone());
        }
        let p = self.parts.get_mut(&tp).expect("assigned above");
        p.queue.push_back((offset, false));
        self.unsettled += 1;
        Token {
            epoch: p.epoch,
            tp,
            offset,
        }
    }

    /// The notice of `t` is settled. Tokens of an earlier assignment are ignored.
    pub fn settle(&mut self, t: &Token) {
        let Some(p) = self.parts.get_mut(&t.tp).filter(|p| p.epoch == t.epoch) else {
            return;
        };
        // Offsets are read in order: the queue is sorted.
        if let Ok(i) = p.queue.binary_search_by_key(&t.offset, |(o, _)| *o) {
            if !p.queue[i].1 {
                p.queue[i].1 = true;
                self.unsettled -= 1;
            }
        }
        while let Some(&(o, true)) = p.queue.front() {
            p.queue.pop_front();
            p.point = Some(o + 1);
        }
    }

    /// Notices read and not settled.
    pub fn outstanding(&self) -> usize {
        self.unsettled
    }

    /// Commit points that moved since the last call.
    pub fn advanced(&mut self) -> Vec<(Tp, i64)> {
        let mut out = Vec::new();
        for (tp, p) in &mut self.parts {
            if p.point.is_some() && p.point != p.reported {
                p.reported = p.point;
                out.extend(p.point.map(|o| (tp.clone(), o)));
            }
        }
        out.sort();
        out
    }

    /// Every commit point.
    pub fn points(&self) -> Vec<(Tp, i64)> {
        let mut out: Vec<(Tp, i64)> = self
            .parts
            .iter()
            .filter_map(|(tp, p)| Some((tp.clone(), p.point?)))
            .collect();
        out.sort();
        out
    }
}

/// A change of assignment, sent by the rebalance callbacks.
#[derive(Debug)]
enum Rebalanced {
    Assigned(Vec<Tp>),
    Revoked(Vec<Tp>),
}

/// The consumer's context: rebalances become messages to the consumer thread.
pub struct SourceContext {
    events: Mutex<Sender<Rebalanced>>,
}

fn tps(tpl: &TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl ClientContext for SourceContext {}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            let _ = self
                .events
                .lock()
                .expect("events lock")
                .send(Rebalanced::Revoked(tps(tpl)));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = r {
            let _ = self
                .events
                .lock()
                .expect("events lock")
                .send(Rebalanced::Assigned(tps(tpl)));
        }
    }
}

/// The role topics' consumer and what its thread keeps.
pub struct Source {
    consumer: BaseConsumer<SourceContext>,
    state: State,
}

/// What the consumer thread keeps besides the consumer.
struct State {
    events: Receiver<Rebalanced>,
    codec: Codec,
    framed: bool,
    max_pending: usize,
    offsets: Offsets,
    settled_tx: Sender<Token>,
    settled_rx: Receiver<Token>,
    paused: bool,
    bad: LogLimiter,
}

impl Source {
    /// A member of `<group_id>-inbox` subscribed to `topics`; its offsets are stored once
    /// settled ([`Role::Settling`]).
    pub fn new(settings: &Settings, topics: &[String]) -> Result<Source, NotifyError> {
        let (tx, events) = channel();
        let config = kafka::client_config(&settings.kafka, Role::Settling(GROUP_SUFFIX));
        let consumer: BaseConsumer<SourceContext> = config
            .create_with_context(SourceContext {
                events: Mutex::new(tx),
            })
            .map_err(kafka::Error::client("notification consumer"))?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(kafka::Error::client("notification subscribe"))?;
        let (settled_tx, settled_rx) = channel();
        Ok(Source {
            consumer,
            state: State {
                events,
                codec: Codec::new(Default::default())?,
                framed: settings
                    .input
                    .schema_registry
                    .as_ref()
                    .is_some_and(|r| r.frame_outputs),
                max_pending: settings.notify.max_pending,
                offsets: Offsets::default(),
                settled_tx,
                settled_rx,
                paused: false,
                bad: LogLimiter::new(1000),
            },
        })
    }

    /// Reads and offers notices to `engine` until `stop` is set, then commits what is
    /// settled.
    pub fn run(self, engine: &Engine, stop: &AtomicBool) {
        let Source {
            consumer,
            state: mut s,
        } = self;
        while !stop.load(Ordering::Acquire) {
            let polled = consumer.poll(Duration::from_millis(100));
            s.rebalanced();
            match polled {
                Some(Ok(m)) => s.offer(engine, &m),
                Some(Err(e)) => {
                    if let Some(held) = s.bad.allow(crate::clock::SystemClock::now()) {
                        tracing::warn!(error = %e, held_back = held, "notification consumer error");
                    }
                }
                None => {}
            }
            s.store(&consumer);
            s.backpressure(&consumer);
        }
        s.store(&consumer);
        let points = s.offsets.points();
        if !points.is_empty() {
            if let Err(e) = consumer.commit(&tpl(&points), CommitMode::Sync) {
                tracing::warn!(error = %e, "notification offsets not committed at shutdown: unsettled notices are read again");
            }
        }
    }
}

impl State {
    fn rebalanced(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            self.paused = false;
            match ev {
                Rebalanced::Assigned(tps) => {
                    tracing::info!(partitions = ?tps, "notification partitions assigned");
                    for tp in tps {
                        self.offsets.assign(tp);
                    }
                }
                Rebalanced::Revoked(tps) => {
                    for tp in &tps {
                        self.offsets.revoke(tp);
                    }
                }
            }
        }
    }

    fn offer(&mut self, engine: &Engine, m: &BorrowedMessage<'_>) {
        let token = self
            .offsets
            .read((m.topic().to_string(), m.partition()), m.offset());
        let headers = RecordHeaders {
            kind: header(m, KIND_HEADER),
            version: header(m, crate::event::wire::SCHEMA_VERSION_HEADER),
        };
        match decode(&self.codec, self.framed, headers, m.payload()) {
            Ok(Some(notice)) => {
                let tx = self.settled_tx.clone();
                engine.offer(&notice, move || {
                    let _ = tx.send(token);
                });
            }
            Ok(None) => self.offsets.settle(&token),
            Err(why) => {
                if let Some(held) = self.bad.allow(crate::clock::SystemClock::now()) {
                    tracing::warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %why, held_back = held, "role topic record not understood: no notification for it");
                }
                self.offsets.settle(&token);
            }
        }
    }

    /// Settles what the engine settled and stores the commit points that moved.
    fn store(&mut self, consumer: &BaseConsumer<SourceContext>) {
        while let Ok(t) = self.settled_rx.try_recv() {
            self.offsets.settle(&t);
        }
        let moved = self.offsets.advanced();
        if moved.is_empty() {
            return;
        }
        if let Err(e) = consumer.store_offsets(&tpl(&moved)) {
            tracing::debug!(error = %e, "notification offsets not stored (partition revoked?)");
        }
    }

    fn backpressure(&mut self, consumer: &BaseConsumer<SourceContext>) {
        let n = self.offsets.outstanding();
        let (pause, resume) = (
            !self.paused && n >= self.max_pending,
            self.paused && n <= self.max_pending / 2,
        );
        if !(pause || resume) {
            return;
        }
        let Ok(assigned) = consumer.assignment() else {
            return;
        };
        let r = if pause {
            tracing::info!(
                pending = n,
                "notices waiting: reading of role topics paused"
            );
            consumer.pause(&assigned)
        } else {
            tracing::info!(pending = n, "reading of role topics resumed");
            consumer.resume(&assigned)
        };
        match r {
            Ok(()) => self.paused = pause,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pause or resume the notification consumer")
            }
        }
    }
}

fn tpl(points: &[(Tp, i64)]) -> TopicPartitionList {
    let mut t = TopicPartitionList::new();
    for ((topic, partition), offset) in points {
        let _ = t.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    t
}

#[cfg(test)]
mod tests;
