use super::*;
use crate::event::Tier;
use crate::notify::ledger::{fold, Known, MemoryLedger};
use crate::notify::route::tests::{digest, escalation};
use std::sync::atomic::AtomicBool;

/// A transport answering from a script (then 200), counting calls per notification id.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<u16, String>>>,
    calls: Mutex<Vec<String>>,
}

impl Transport for Scripted {
    fn post(&self, req: Request<'_>) -> Result<Answer, String> {
        let id = req
            .headers
            .iter()
            .find(|(k, _)| *k == sign::ID_HEADER)
            .map_or_else(
                || String::from_utf8_lossy(req.body).to_string(),
                |(_, v)| v.clone(),
            );
        self.calls.lock().unwrap().push(id);
        let status = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(200))?;
        Ok(Answer {
            status,
            retry_after: (status == 429).then(|| "0".to_string()),
            detail: String::new(),
        })
    }
}

fn receiver(name: &str, tiers: &[Tier]) -> Receiver {
    Receiver {
        name: name.into(),
        kind: ReceiverKind::Webhook,
        url: "http://unused".into(),
        secret: Some("0123456789abcdef".into()),
        roles: vec![],
        tiers: tiers.to_vec(),
        timeout: Duration::from_secs(1),
        max_in_flight: 2,
    }
}

struct Rig {
    engine: Engine,
    transport: Arc<Scripted>,
    ledger: Arc<MemoryLedger>,
    metrics: ReceiverMetrics,
    open: Arc<AtomicBool>,
}

fn rig(answers: Vec<Result<u16, String>>, history: &History) -> Rig {
    let transport = Arc::new(Scripted {
        answers: Mutex::new(answers.into()),
        ..Default::default()
    });
    let ledger = Arc::new(MemoryLedger::default());
    let registry = prometheus::Registry::new();
    let metrics = crate::notify::metrics::register(&registry, &["hook"]).unwrap();
    let open = Arc::new(AtomicBool::new(true));
    let o = open.clone();
    let is_open: IsOpen = Arc::new(move |_: &str| o.load(Ordering::SeqCst));
    let cfg = EngineConfig {
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(40),
        links: Links::new("http://inbox"),
        sweep: Duration::from_millis(10),
    };
    let engine = Engine::start(
        cfg,
        vec![ReceiverSpec {
            settings: receiver("hook", &[]),
            transport: transport.clone(),
        }],
        metrics.clone(),
        ledger.clone(),
        is_open,
        history,
    );
    Rig {
        engine,
        transport,
        ledger,
        metrics: metrics[0].clone(),
        open,
    }
}

fn settled_flag() -> (Arc<AtomicBool>, impl FnOnce() + Send + 'static) {
    let f = Arc::new(AtomicBool::new(false));
    let g = f.clone();
    (f, move || g.store(true, Ordering::SeqCst))
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what} not reached"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn statuses(l: &MemoryLedger) -> Vec<(u32, &'static str)> {
    l.entries()
        .iter()
        .map(|e| (e.attempt, e.status.as_str()))
        .collect()
}

#[tokio::test]
async fn a_notice_is_retried_until_delivered_and_settles_once() {
    let r = rig(
        vec![Ok(500), Err("timeout".into()), Ok(429)],
        &History::new(),
    );
    let (settled, cb) = settled_flag();
    let n = Notice::Escalation(Box::new(escalation("esc-1", "support", Tier::Warm)));
    r.engine.offer(&n, cb);
    until("delivery", || settled.load(Ordering::SeqCst)).await;
    assert_eq!(
        statuses(&r.ledger),
        [
            (1, "failed"),
            (2, "failed"),
            (3, "rate_limited"),
            (4, "delivered")
        ]
    );
    let e = r.ledger.entries();
    assert_eq!(e[0].http_status, Some(500));
    assert_eq!(e[0].error.as_deref(), Some("HTTP 500"));
    assert_eq!(e[1].error.as_deref(), Some("timeout"));
    assert_eq!(e[1].http_status, None);
    assert_eq!(
        (
            r.metrics.failed.get(),
            r.metrics.rate_limited.get(),
            r.metrics.delivered.get()
        ),
        (2, 1, 1)
    );
    assert_eq!(r.metrics.latency.get_sample_count(), 4);
    assert_eq!(r.metrics.pending.get(), 0);
}

#[tokio::test]
async fn an_id_is_sent_once_and_a_repeat_settles_with_the_attempt_in_flight() {
    let r = rig(vec![], &History::new());
    let n = Notice::Escalation(Box::new(escalation("esc-1", "support", Tier::Warm)));
    let (first, cb1) = settled_flag();
    let (second, cb2) = settled_flag();
    r.engine.offer(&n, cb1);
    // Read again while the first is in flight (after a rebalance): its offset must not be
    // settled before the notice is delivered, or a stop then would lose it.
    r.engine.offer(&n, cb2);
    assert!(
        !second.load(Ordering::SeqCst),
        "a repeat waits for the attempt in flight"
    );
    until("delivery", || {
        first.load(Ordering::SeqCst) && second.load(Ordering::SeqCst)
    })
    .await;
    let (third, cb3) = settled_flag();
    r.engine.offer(&n, cb3);
    assert!(
        third.load(Ordering::SeqCst),
        "a repeat of a delivered one settles at once"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(*r.transport.calls.lock().unwrap(), ["esc-1"]);
}

#[tokio::test]
async fn what_the_ledger_says_is_settled_is_not_sent_and_attempts_continue_their_count() {
    let mut history = History::new();
    history.insert(
        ("esc-done".into(), "hook".into()),
        Known {
            settled: true,
            attempts: 1,
        },
    );
    history.insert(
        ("esc-half".into(), "hook".into()),
        Known {
            settled: false,
            attempts: 3,
        },
    );
    history.insert(
        ("esc-other".into(), "elsewhere".into()),
        Known {
            settled: true,
            attempts: 1,
        },
    );
    let r = rig(vec![], &history);
    for id in ["esc-done", "esc-half", "esc-other"] {
        let (_, cb) = settled_flag();
        r.engine.offer(
            &Notice::Escalation(Box::new(escalation(id, "support", Tier::Warm))),
            cb,
        );
    }
    until("two deliveries", || r.ledger.entries().len() == 2).await;
    let e = r.ledger.entries();
    let mut got: Vec<(String, u32)> = e
        .iter()
        .map(|e| (e.notification_id.clone(), e.attempt))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [("esc-half".to_string(), 4), ("esc-other".to_string(), 1)]
    );
}

#[tokio::test]
async fn a_notice_whose_escalation_closes_while_failing_is_abandoned_and_not_sent_again() {
    let r = rig(vec![Ok(503); 1000], &History::new());
    let (settled, cb) = settled_flag();
    r.engine.offer(
        &Notice::Escalation(Box::new(escalation("esc-1", "support", Tier::Warm))),
        cb,
    );
    until("two failures", || r.metrics.failed.get() >= 2).await;
    r.open.store(false, Ordering::SeqCst);
    until("abandonment", || settled.load(Ordering::SeqCst)).await;
    let calls = r.transport.calls.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        r.transport.calls.lock().unwrap().len(),
        calls,
        "nothing after abandonment"
    );
    let last = r.ledger.entries().last().cloned().unwrap();
    assert_eq!(
        (last.status, last.attempt as usize),
        (Status::Abandoned, calls)
    );
    assert_eq!(r.metrics.abandoned.get(), 1);
    assert_eq!(r.metrics.pending.get(), 0);
}

#[tokio::test]
async fn an_already_closed_escalation_is_abandoned_without_an_attempt() {
    let r = rig(vec![], &History::new());
    r.open.store(false, Ordering::SeqCst);
    let (settled, cb) = settled_flag();
    r.engine.offer(
        &Notice::Escalation(Box::new(escalation("esc-1", "support", Tier::Warm))),
        cb,
    );
    until("abandonment", || settled.load(Ordering::SeqCst)).await;
    assert!(r.transport.calls.lock().unwrap().is_empty());
    assert_eq!(statuses(&r.ledger), [(0, "abandoned")]);
}

#[tokio::test]
async fn a_digest_is_one_attempt_announcing_its_items() {
    let r = rig(vec![], &History::new());
    let d = digest("dig-1", "support", &[Tier::Warm; 30]);
    let (settled, cb) = settled_flag();
    r.engine.offer(&Notice::Digest(Box::new(d)), cb);
    until("delivery", || settled.load(Ordering::SeqCst)).await;
    assert_eq!(*r.transport.calls.lock().unwrap(), ["dig-1"]);
    let e = &r.ledger.entries()[0];
    assert_eq!((e.kind.as_str(), e.escalation_ids.len()), ("digest", 30));
    let h = fold(r.ledger.entries());
    assert!(h[&("dig-1".to_string(), "hook".to_string())].settled);
}

#[test]
fn seen_ids_are_bounded() {
    let mut s = Seen::default();
    for i in 0..SEEN_CAPACITY + 10 {
        assert_eq!(s.admit(&i.to_string()), Admit::New(0));
        s.settle(&i.to_string());
    }
    assert_eq!(s.settled.len(), SEEN_CAPACITY);
    assert_eq!(s.admit("0"), Admit::New(0), "the oldest is forgotten");
    assert_eq!(s.admit("0"), Admit::Pending, "in flight now");
    assert_eq!(s.admit(&(SEEN_CAPACITY + 9).to_string()), Admit::Settled);
}
