//! The delivery engine: each receiver has its own task and queue, so a receiver that is down
//! or slow never holds up another, nor the caller ([`Engine::offer`] never blocks). A notice
//! is tried until it is delivered or every escalation it announces has closed (then it is
//! `abandoned`), with exponential backoff and jitter between attempts and a `429`'s
//! `Retry-After` honoured for the whole receiver. Each (notice, receiver) is sent once per id:
//! ids in flight or settled — here, or in the ledger read at start — are not sent again.
//!
//! Attempts run on blocking threads (`ureq`), at most `max_in_flight` per receiver. Every
//! attempt and abandonment goes to the [`Ledger`]; a notice's `on_settled` runs once every
//! receiver it went to has settled it and the ledger holds the outcome.

use super::ledger::{Durable, History, Ledger, LedgerEntry, Status};
use super::message::{webhook_body, Links};
use super::metrics::ReceiverMetrics;
use super::retry::{classify, next_wait, Outcome};
use super::route::{Notice, Route};
use super::sign;
use super::transport::{Answer, Request, Transport};
use super::IsOpen;
use crate::config::notify::{Receiver, ReceiverKind};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Settled ids remembered per receiver (oldest forgotten first).
const SEEN_CAPACITY: usize = 100_000;
/// An attempt that has not ended this long after its timeout is given up (its thread ends
/// on its own).
const GRACE: Duration = Duration::from_secs(1);

/// How the engine retries and links.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// First wait before a retry.
    pub backoff_initial: Duration,
    /// Longest wait between attempts (a `Retry-After` may ask for more).
    pub backoff_max: Duration,
    /// Links into the inbox.
    pub links: Links,
    /// How often waiting notices are checked for closed escalations.
    pub sweep: Duration,
}

/// A receiver (its secrets resolved) and how to reach it.
pub struct ReceiverSpec {
    /// Its settings.
    pub settings: Receiver,
    /// The HTTP client.
    pub transport: Arc<dyn Transport>,
}

/// Runs a callback once every part of a notice has settled.
struct Settle {
    left: AtomicUsize,
    then: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Settle {
    fn new(then: Box<dyn FnOnce() + Send>) -> Arc<Settle> {
        Arc::new(Settle {
            left: AtomicUsize::new(1),
            then: Mutex::new(Some(then)),
        })
    }

    fn add(&self) {
        self.left.fetch_add(1, Ordering::AcqRel);
    }

    fn done(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(f) = self.then.lock().expect("settle lock").take() {
                f();
            }
        }
    }
}

/// Which ids a receiver has in flight or has settled.
#[derive(Default)]
struct Seen {
    /// In flight, with the notices read again meanwhile (after a rebalance) that wait for it:
    /// their offsets are settled when it is.
    pending: HashMap<String, Vec<Arc<Settle>>>,
    settled: HashMap<String, ()>,
    order: VecDeque<String>,
    /// Attempts made before a restart (from the ledger), by id.
    earlier: HashMap<String, u32>,
}

/// What a receiver makes of an id offered.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    /// New here: the attempts made before a restart.
    New(u32),
    /// In flight already: wait for it.
    Pending,
    /// Delivered or abandoned already.
    Settled,
}

impl Seen {
    fn from_history(receiver: &str, history: &History) -> Seen {
        let mut s = Seen::default();
        for ((id, r), k) in history {
            if r != receiver {
                continue;
            }
            if k.settled {
                s.settle(id);
            } else {
                s.earlier.insert(id.clone(), k.attempts);
            }
        }
        s
    }

    fn admit(&mut self, id: &str) -> Admit {
        if self.settled.contains_key(id) {
            return Admit::Settled;
        }
        if self.pending.contains_key(id) {
            return Admit::Pending;
        }
        self.pending.insert(id.to_string(), Vec::new());
        Admit::New(self.earlier.remove(id).unwrap_or(0))
    }

    /// `s` settles when the attempt in flight for `id` does.
    fn wait(&mut self, id: &str, s: Arc<Settle>) {
        if let Some(w) = self.pending.get_mut(id) {
            w.push(s);
        }
    }

    /// Marks `id` settled; returns the notices that waited for it.
    fn settle(&mut self, id: &str) -> Vec<Arc<Settle>> {
        let waiting = self.pending.remove(id).unwrap_or_default();
        if self.settled.insert(id.to_string(), ()).is_none() {
            self.order.push_back(id.to_string());
        }
        while self.order.len() > SEEN_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.settled.remove(&old);
            }
        }
        waiting
    }
}

/// One notice for one receiver.
struct Job {
    id: String,
    kind: &'static str,
    escalation_ids: Vec<String>,
    /// The part of the notice the receiver takes.
    notice: Arc<Notice>,
    /// Its message, made at the first attempt.
    body: Option<Arc<[u8]>>,
    settle: Arc<Settle>,
    attempts: u32,
    due: Instant,
}

/// What a receiver's task works with.
struct Lane {
    name: String,
    kind: ReceiverKind,
    url: Arc<str>,
    key: Option<Arc<[u8]>>,
    transport: Arc<dyn Transport>,
    timeout: Duration,
    max_in_flight: usize,
    cfg: EngineConfig,
    is_open: IsOpen,
    ledger: Arc<dyn Ledger>,
    metrics: ReceiverMetrics,
    seen: Mutex<Seen>,
}

/// The front of a receiver: routing and its queue.
struct Door {
    route: Route,
    lane: Arc<Lane>,
    tx: mpsc::UnboundedSender<Job>,
}

/// The running engine. Dropping it stops every receiver's task (attempts under way end on
/// their own; what they did is not recorded).
pub struct Engine {
    doors: Vec<Door>,
    /// Escalations announced by this engine (its replica's share of the role topics): the ones
    /// it reminds of.
    announced: Mutex<std::collections::HashSet<String>>,
}

impl Engine {
    /// Starts one task per receiver on the current tokio runtime. `metrics` are the
    /// receivers' handles, in the same order; `history` is what the ledger said at start.
    pub fn start(
        cfg: EngineConfig,
        receivers: Vec<ReceiverSpec>,
        metrics: Vec<ReceiverMetrics>,
        ledger: Arc<dyn Ledger>,
        is_open: IsOpen,
        history: &History,
    ) -> Engine {
        let doors = receivers
            .into_iter()
            .zip(metrics)
            .map(|(spec, metrics)| {
                let r = spec.settings;
                let lane = Arc::new(Lane {
                    seen: Mutex::new(Seen::from_history(&r.name, history)),
                    name: r.name.clone(),
                    kind: r.kind,
                    url: r.url.as_str().into(),
                    key: r.signing_key().map(Into::into),
                    transport: spec.transport,
                    timeout: r.timeout,
                    max_in_flight: r.max_in_flight,
                    cfg: cfg.clone(),
                    is_open: is_open.clone(),
                    ledger: ledger.clone(),
                    metrics,
                });
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run_lane(lane.clone(), rx));
                Door {
                    route: Route::from(&r),
                    lane,
                    tx,
                }
            })
            .collect();
        Engine {
            doors,
            announced: Mutex::default(),
        }
    }

    /// True when this engine was offered the escalation `id` (not in a digest).
    pub fn announced(&self, id: &str) -> bool {
        self.announced.lock().expect("announced lock").contains(id)
    }

    /// Forgets the announced escalations `keep` says no longer matter.
    pub fn prune_announced(&self, keep: impl Fn(&str) -> bool) {
        self.announced
            .lock()
            .expect("announced lock")
            .retain(|id| keep(id));
    }

    /// The receivers' names.
    pub fn receivers(&self) -> Vec<&str> {
        self.doors.iter().map(|d| d.lane.name.as_str()).collect()
    }

    /// Hands `notice` to every receiver whose route takes it and that has not had its id;
    /// `on_settled` runs (on any thread) once each of them has delivered or abandoned it — at
    /// once when none takes it. Never blocks.
    pub fn offer(&self, notice: &Notice, on_settled: impl FnOnce() + Send + 'static) {
        let settle = Settle::new(Box::new(on_settled));
        let shared = Arc::new(notice.clone());
        let id = notice.id();
        if let Notice::Escalation(x) = notice {
            let mut announced = self.announced.lock().expect("announced lock");
            announced.insert(x.escalation_id.clone());
        }
        for door in &self.doors {
            let Some(cut) = door.route.take(&shared) else {
                continue;
            };
            let attempts = {
                let mut seen = door.lane.seen.lock().expect("seen lock");
                match seen.admit(&id) {
                    Admit::Settled => continue,
                    Admit::Pending => {
                        // Read again (a rebalance) while in flight: settled with it.
                        settle.add();
                        seen.wait(&id, settle.clone());
                        continue;
                    }
                    Admit::New(attempts) => attempts,
                }
            };
            settle.add();
            door.lane.metrics.pending.inc();
            let job = Job {
                id: id.clone(),
                kind: notice.kind(),
                escalation_ids: cut.escalation_ids(),
                notice: cut,
                body: None,
                settle: settle.clone(),
                attempts,
                due: Instant::now(),
            };
            if door.tx.send(job).is_err() {
                tracing::warn!(receiver = %door.lane.name, "receiver task has stopped: notice not sent");
            }
        }
        settle.done();
    }
}

/// What an attempt came back with.
struct Done {
    job: Job,
    answer: Result<Answer, String>,
    took: Duration,
}

impl Lane {
    fn closed(&self, job: &Job) -> bool {
        !job.escalation_ids.is_empty() && job.escalation_ids.iter().all(|id| !(self.is_open)(id))
    }

    fn entry(&self, job: &Job, status: Status) -> LedgerEntry {
        LedgerEntry {
            notification_id: job.id.clone(),
            kind: job.kind.to_string(),
            escalation_ids: job.escalation_ids.clone(),
            receiver: self.name.clone(),
            attempt: job.attempts,
            status,
            http_status: None,
            latency_ms: None,
            at_ms: crate::clock::SystemClock::now(),
            error: None,
        }
    }

    /// Settles `job` with `entry` (delivered or abandoned).
    fn settle(&self, job: &Job, entry: LedgerEntry) {
        let waiting = self.seen.lock().expect("seen lock").settle(&job.id);
        self.metrics.pending.dec();
        let s = job.settle.clone();
        let durable: Durable = Box::new(move || {
            s.done();
            for w in waiting {
                w.done();
            }
        });
        self.ledger.record(entry, Some(durable));
    }

    fn abandon(&self, job: &Job) {
        self.metrics.abandoned.inc();
        tracing::debug!(receiver = %self.name, notification = %job.id, attempts = job.attempts, "notice abandoned: what it announces has closed");
        self.settle(job, self.entry(job, Status::Abandoned));
    }

    /// The message of `notice` for this receiver.
    fn body(&self, notice: &Notice) -> Arc<[u8]> {
        let links = &self.cfg.links;
        let bytes: Vec<u8> = match self.kind {
            ReceiverKind::Webhook => webhook_body(notice, links),
            ReceiverKind::Slack => super::slack::message(notice, links).to_string().into(),
        };
        bytes.into()
    }

    /// Starts an attempt of `job`; its result comes back on `done`.
    fn launch(self: &Arc<Self>, mut job: Job, done: &mpsc::UnboundedSender<Done>) {
        job.attempts += 1;
        let body = job
            .body
            .get_or_insert_with(|| self.body(&job.notice))
            .clone();
        let ts = crate::clock::SystemClock::now().div_euclid(1000);
        let headers: Vec<(&'static str, String)> = match &self.key {
            Some(k) => sign::headers(k, &job.id, ts, &body).to_vec(),
            None => Vec::new(),
        };
        let (lane, done) = (self.clone(), done.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let (t, url) = (lane.transport.clone(), lane.url.clone());
            let call = tokio::task::spawn_blocking(move || {
                t.post(Request {
                    url: &url,
                    headers: &headers,
                    body: &body,
                })
            });
            let answer = match tokio::time::timeout(lane.timeout + GRACE, call).await {
                Ok(Ok(a)) => a,
                Ok(Err(_)) => Err("the attempt's thread failed".to_string()),
                Err(_) => Err("timeout".to_string()),
            };
            let _ = done.send(Done {
                job,
                answer,
                took: started.elapsed(),
            });
        });
    }

    /// Records an attempt's result; returns the job when it is to be tried again, with the
    /// time the whole receiver must wait when it asked for one (429).
    fn finish(&self, d: Done) -> Option<(Job, Option<Instant>)> {
        let Done {
            mut job,
            answer,
            took,
        } = d;
        let (outcome, http_status) = match &answer {
            Ok(a) => {
                let mut o = classify(a.status, a.retry_after.as_deref(), SystemTime::now());
                if let Outcome::Failed { error } = &mut o {
                    if !a.detail.is_empty() {
                        error.push_str(": ");
                        error.push_str(&a.detail);
                    }
                }
                (o, Some(a.status))
            }
            Err(e) => (Outcome::Failed { error: e.clone() }, None),
        };
        self.metrics.latency.observe(took.as_secs_f64());
        self.metrics.result(outcome.status()).inc();
        let status = match &outcome {
            Outcome::Delivered => Status::Delivered,
            Outcome::RateLimited { .. } => Status::RateLimited,
            Outcome::Failed { .. } => Status::Failed,
        };
        let mut entry = self.entry(&job, status);
        entry.http_status = http_status;
        entry.latency_ms = Some(took.as_millis() as u64);
        if let Outcome::Failed { error } = &outcome {
            entry.error = Some(error.clone());
        }
        let c = &self.cfg;
        let Some(wait) = next_wait(
            &outcome,
            job.attempts,
            c.backoff_initial,
            c.backoff_max,
            rand::random::<f64>(),
        ) else {
            self.settle(&job, entry);
            return None;
        };
        tracing::debug!(receiver = %self.name, notification = %job.id, attempt = job.attempts, status = status.as_str(), retry_in = ?wait, error = ?entry.error, "notification attempt did not deliver");
        self.ledger.record(entry, None);
        job.due = Instant::now() + wait;
        let pause = matches!(outcome, Outcome::RateLimited { .. }).then_some(job.due);
        Some((job, pause))
    }
}

/// A receiver's task: queue, schedule, attempts. Ends when the engine is dropped.
async fn run_lane(lane: Arc<Lane>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut waiting: Vec<Job> = Vec::new();
    let mut in_flight = 0usize;
    let mut paused_until = Instant::now();
    let mut next_sweep = Instant::now() + lane.cfg.sweep;
    loop {
        let now = Instant::now();
        if now >= next_sweep {
            waiting.retain(|j| {
                let closed = lane.closed(j);
                if closed {
                    lane.abandon(j);
                }
                !closed
            });
            next_sweep = now + lane.cfg.sweep;
        }
        while in_flight < lane.max_in_flight && now >= paused_until {
            let Some(i) = earliest(&waiting).filter(|&i| waiting[i].due <= now) else {
                break;
            };
            let job = waiting.swap_remove(i);
            if lane.closed(&job) {
                lane.abandon(&job);
                continue;
            }
            in_flight += 1;
            lane.launch(job, &done_tx);
        }
        let mut wake = next_sweep;
        if in_flight < lane.max_in_flight {
            if let Some(i) = earliest(&waiting) {
                wake = wake.min(waiting[i].due.max(paused_until));
            }
        }
        tokio::select! {
            job = rx.recv() => match job {
                Some(j) => waiting.push(j),
                None => return,
            },
            Some(d) = done_rx.recv() => {
                in_flight -= 1;
                if let Some((job, pause)) = lane.finish(d) {
                    if let Some(p) = pause {
                        paused_until = paused_until.max(p);
                    }
                    waiting.push(job);
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

fn earliest(jobs: &[Job]) -> Option<usize> {
    (0..jobs.len()).min_by_key(|&i| jobs[i].due)
}

#[cfg(test)]
mod tests;
