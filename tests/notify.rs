//! Notifications end to end: the delivery engine against local HTTP receivers (healthy,
//! failing then recovering, rate-limiting with `Retry-After`, slow, down), a Slack receiver,
//! `notify::run` against the local broker (tansu) across restarts ([`broker`]), and the
//! dashboard panel and alert against a real Prometheus ([`dashboard`]), reminders before the
//! deadline from the inbox's board ([`reminders`]). Each test prints its
//! delivery figures (`cargo test --test notify -- --nocapture`).

#[path = "notify/broker.rs"]
mod broker;
mod common;
#[path = "notify/dashboard.rs"]
mod dashboard;
#[path = "notify/fixtures.rs"]
mod fixtures;
#[path = "notify/receivers.rs"]
mod receivers;
#[path = "notify/reminders.rs"]
mod reminders;

use fixtures::*;
use handoff::config::notify::ReceiverKind;
use handoff::event::Tier;
use handoff::notify::ledger::{LedgerEntry, MemoryLedger, Status};
use handoff::notify::{Engine, IsOpen, Notice, ReceiverSpec};
use receivers::{Mode, Sink};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ESCALATIONS: usize = 8;

/// Four webhook receivers (healthy; 500 three times; 429 with `Retry-After: 1` once, one
/// attempt at a time; slow: the first two answers after 3 s, its timeout 300 ms) and a
/// healthy Slack one, behind one engine with a memory ledger.
struct Fleet {
    healthy: Arc<Sink>,
    failing: Arc<Sink>,
    limited: Arc<Sink>,
    slow: Arc<Sink>,
    slack: Arc<Sink>,
    engine: Engine,
    ledger: Arc<MemoryLedger>,
    registry: ::prometheus::Registry,
}

impl Fleet {
    async fn start() -> Fleet {
        let k = key();
        let slow_first = Mode::SlowFirst(2, Duration::from_secs(3));
        let healthy = Sink::start("healthy", Some(&k), Mode::Healthy).await;
        let failing = Sink::start("failing", Some(&k), Mode::FailFirst(3)).await;
        let limited = Sink::start("limited", Some(&k), Mode::RateLimitFirst(1, 1)).await;
        let slow = Sink::start("slow", Some(&k), slow_first).await;
        let slack = Sink::start("slack", None, Mode::Healthy).await;
        let webhook = |s: &Sink, timeout, in_flight| {
            spec(receiver(
                s.name,
                ReceiverKind::Webhook,
                s.url(),
                timeout,
                in_flight,
            ))
        };
        let specs: Vec<ReceiverSpec> = vec![
            webhook(&healthy, 2000, 4),
            webhook(&failing, 2000, 4),
            // One at a time: its requests show when each attempt started.
            webhook(&limited, 2000, 1),
            webhook(&slow, 300, 4),
            spec(receiver("slack", ReceiverKind::Slack, slack.url(), 2000, 4)),
        ];
        let names: Vec<&str> = specs.iter().map(|s| s.settings.name.as_str()).collect();
        let registry = ::prometheus::Registry::new();
        let metrics = handoff::notify::metrics::register(&registry, &names).unwrap();
        let ledger = Arc::new(MemoryLedger::default());
        let is_open: IsOpen = Arc::new(|_: &str| true);
        let engine = Engine::start(
            config(),
            specs,
            metrics,
            ledger.clone(),
            is_open,
            &Default::default(),
        );
        Fleet {
            healthy,
            failing,
            limited,
            slow,
            slack,
            engine,
            ledger,
            registry,
        }
    }

    fn webhooks(&self) -> [&Arc<Sink>; 4] {
        [&self.healthy, &self.failing, &self.limited, &self.slow]
    }
}

/// Eight escalations (warm and immediate) and a digest of 30 items, all for support.
fn notices() -> Vec<Notice> {
    let mut n: Vec<Notice> = (0..ESCALATIONS)
        .map(|i| {
            let tier = [Tier::Warm, Tier::Immediate][i % 2];
            Notice::Escalation(Box::new(escalation(i, "support", tier)))
        })
        .collect();
    n.push(Notice::Digest(Box::new(digest(
        "dig-support-1",
        "support",
        30,
    ))));
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_receiver_gets_every_notice_and_none_holds_up_another() {
    let f = Fleet::start().await;
    let notices = notices();
    let settled = Arc::new(AtomicUsize::new(0));
    let offered = Instant::now();
    for n in &notices {
        let s = settled.clone();
        f.engine.offer(n, move || {
            s.fetch_add(1, Ordering::SeqCst);
        });
    }
    let offer_took = offered.elapsed();
    until(
        "the healthy receiver has everything",
        Duration::from_secs(5),
        || f.healthy.delivered().len() == notices.len(),
    )
    .await;
    let healthy_done = offered.elapsed();
    // A late request still hanging has not been answered yet.
    let slow_hanging = f
        .slow
        .got()
        .iter()
        .filter(|g| g.late && g.answered == g.at)
        .count();
    until(
        "every notice settled everywhere",
        Duration::from_secs(30),
        || settled.load(Ordering::SeqCst) == notices.len(),
    )
    .await;
    let all_done = offered.elapsed();

    // Nobody waited for anybody: offering is instant, the healthy receiver had all nine
    // while the slow one was still hanging on its first requests.
    assert!(
        offer_took < Duration::from_millis(200),
        "offer took {offer_took:?}"
    );
    assert!(
        healthy_done < Duration::from_millis(1500),
        "healthy took {healthy_done:?}"
    );
    assert!(
        slow_hanging > 0,
        "the slow receiver still hangs when the healthy one has everything"
    );
    check_receivers(&f, &notices);
    let waited = check_retry_after(&f.limited);
    check_messages(&f);
    check_ledger_and_metrics(&f, notices.len() as f64);

    eprintln!(
        "notices: {ESCALATIONS} escalations + 1 digest of 30 items; offer() of all took {} µs",
        offer_took.as_micros()
    );
    print_figures(&f, notices.len(), offered);
    eprintln!(
        "limited: 429 with Retry-After: 1 answered, next attempt {} ms later",
        ms(waited)
    );
    eprintln!(
        "healthy had everything after {} ms; everything settled after {} ms",
        ms(healthy_done),
        ms(all_done)
    );
}

/// Every webhook got every notice, signed; the healthy one each exactly once.
fn check_receivers(f: &Fleet, notices: &[Notice]) {
    let mut ids: Vec<String> = notices.iter().map(|n| n.id().to_string()).collect();
    ids.sort();
    for s in f.webhooks() {
        let got = s.got();
        assert!(
            got.iter().all(|g| g.verified),
            "{}: a signature did not verify",
            s.name
        );
        let mut delivered: Vec<String> = s.delivered().into_iter().filter_map(|g| g.id).collect();
        delivered.sort();
        let mut distinct = delivered.clone();
        distinct.dedup();
        assert_eq!(distinct, ids, "{}: every notice delivered", s.name);
        if s.name == "healthy" {
            assert_eq!(delivered, ids, "the healthy receiver got each exactly once");
            assert_eq!(got.len(), ids.len());
        }
    }
    assert_eq!(f.slack.delivered().len(), notices.len());
}

/// The 429: the next attempt came no sooner than its Retry-After (1 s) after the answer.
fn check_retry_after(limited: &Sink) -> Duration {
    let lg = limited.got();
    assert_eq!(lg[0].status, 429);
    let waited = lg[1].at.duration_since(lg[0].answered);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    waited
}

/// The webhook bodies (digest: one message, 20 items listed, 10 counted) and the Slack
/// messages (Block Kit, buttons, escaped text, the digest as one message).
fn check_messages(f: &Fleet) {
    let find = |s: &Sink, id: &str| {
        s.got()
            .into_iter()
            .find(|g| g.id.as_deref() == Some(id))
            .unwrap()
    };
    let d = find(&f.healthy, "dig-support-1");
    assert_eq!(d.body["type"], "digest");
    let items = d.body["items"].as_array().unwrap().len();
    assert_eq!(
        (d.body["count"].as_u64(), items, d.body["more"].as_u64()),
        (Some(30), 20, Some(10))
    );
    assert_eq!(
        d.body["items"][0]["url"],
        "https://inbox.example/e/esc-folded-000"
    );
    let e0 = find(&f.healthy, "esc-support-000");
    assert_eq!(e0.body["url"], "https://inbox.example/e/esc-support-000");
    assert_eq!(e0.body["flags"][0]["trigger"], "low_confidence");

    let slack = f.slack.got();
    let m = slack
        .iter()
        .find(|g| g.body["blocks"].to_string().contains("esc-support-001"))
        .unwrap();
    let text = m.body.to_string();
    assert!(
        text.contains("&lt;@here&gt; &amp; more") && !text.contains("<@here>"),
        "{text}"
    );
    let buttons: Vec<&str> = m.body["blocks"].as_array().unwrap().last().unwrap()["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(buttons, ["approve", "reject", "acknowledge", "open"]);
    let digests = slack
        .iter()
        .filter(|g| g.body.to_string().contains("30 escalation(s) for support"));
    assert_eq!(digests.count(), 1, "the digest is one Slack message");
}

/// The ledger and the metrics say the same as the receivers.
fn check_ledger_and_metrics(f: &Fleet, n: f64) {
    let entries = f.ledger.entries();
    let text = render(&f.registry);
    // receiver, delivered, failed, rate_limited
    let table: [(&str, f64, f64, f64); 5] = [
        ("healthy", n, 0.0, 0.0),
        ("failing", n, 3.0, 0.0),
        ("limited", n, 0.0, 1.0),
        ("slow", n, 2.0, 0.0),
        ("slack", n, 0.0, 0.0),
    ];
    for (r, delivered, failed, limited) in table {
        let e = of(&entries, r);
        let by = |st: Status| e.iter().filter(|(_, s, _)| *s == st).count() as f64;
        let ledger = (
            by(Status::Delivered),
            by(Status::Failed),
            by(Status::RateLimited),
        );
        assert_eq!(ledger, (delivered, failed, limited), "{r}: ledger {e:?}");
        assert_eq!(count(&text, r, "delivered"), delivered, "{r}");
        assert_eq!(count(&text, r, "failed"), failed, "{r}");
        assert_eq!(count(&text, r, "rate_limited"), limited, "{r}");
        assert_eq!(count(&text, r, "abandoned"), 0.0, "{r}");
        let pending = format!("handoff_notifications_pending{{receiver=\"{r}\"}}");
        assert_eq!(sample(&text, &pending), 0.0);
        let attempts = format!("handoff_notification_latency_seconds_count{{receiver=\"{r}\"}}");
        assert_eq!(
            sample(&text, &attempts),
            delivered + failed + limited,
            "{r}: one sample per attempt"
        );
    }
    assert!(of(&entries, "healthy").iter().all(|(a, _, _)| *a == 1));
    assert!(of(&entries, "failing")
        .iter()
        .any(|(_, s, h)| *s == Status::Failed && *h == Some(500)));
    let slow_failures = entries
        .iter()
        .filter(|e| e.receiver == "slow" && e.status == Status::Failed);
    assert!(
        slow_failures.clone().count() == 2
            && slow_failures
                .clone()
                .all(|e| e.error.as_deref() == Some("timeout"))
    );
    assert!(of(&entries, "limited").contains(&(1, Status::RateLimited, Some(429))));
}

fn print_figures(f: &Fleet, notices: usize, offered: Instant) {
    let entries = f.ledger.entries();
    for s in f.webhooks().into_iter().chain([&f.slack]) {
        let e: Vec<&LedgerEntry> = entries.iter().filter(|e| e.receiver == s.name).collect();
        let lat: Vec<u64> = e.iter().filter_map(|e| e.latency_ms).collect();
        let done: Vec<u128> = s
            .delivered()
            .iter()
            .map(|g| ms(g.answered.duration_since(offered)))
            .collect();
        eprintln!(
            "{:8} attempts {:2} (for {notices} notices), first delivery {:4} ms, last delivery {:4} ms after offer; attempt latency p50 {} ms, max {} ms",
            s.name,
            e.len(),
            done.iter().min().unwrap(),
            done.iter().max().unwrap(),
            percentile(lat.clone(), 0.5),
            lat.iter().max().unwrap(),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_closed_while_its_receiver_is_down_is_abandoned_and_never_sent() {
    let k = key();
    let down = Sink::start("down", Some(&k), Mode::Down).await;
    let registry = prometheus::Registry::new();
    let metrics = handoff::notify::metrics::register(&registry, &["down"]).unwrap();
    let ledger = Arc::new(MemoryLedger::default());
    let open = Arc::new(AtomicBool::new(true));
    let o = open.clone();
    let is_open: IsOpen =
        Arc::new(move |id: &str| id != "esc-support-000" || o.load(Ordering::SeqCst));
    let engine = Engine::start(
        config(),
        vec![spec(receiver(
            "down",
            ReceiverKind::Webhook,
            down.url(),
            1000,
            4,
        ))],
        metrics,
        ledger.clone(),
        is_open,
        &Default::default(),
    );
    let settled = Arc::new(AtomicBool::new(false));
    let s = settled.clone();
    engine.offer(
        &Notice::Escalation(Box::new(escalation(0, "support", Tier::Immediate))),
        move || s.store(true, Ordering::SeqCst),
    );
    until("three failed attempts", Duration::from_secs(10), || {
        down.got().len() >= 3
    })
    .await;
    assert!(
        !settled.load(Ordering::SeqCst),
        "a failing notice is not settled"
    );
    let closed_at = Instant::now();
    open.store(false, Ordering::SeqCst);
    until("abandonment", Duration::from_secs(5), || {
        settled.load(Ordering::SeqCst)
    })
    .await;
    let abandoned_after = closed_at.elapsed();
    let attempts = down.got().len();
    down.set(Mode::Healthy);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        down.got().len(),
        attempts,
        "nothing is sent after abandonment"
    );
    assert!(down.delivered().is_empty());

    let e = ledger.entries();
    let last = e.last().unwrap();
    assert_eq!(
        (last.status, last.attempt as usize),
        (Status::Abandoned, attempts)
    );
    assert_eq!(last.escalation_ids, ["esc-support-000"]);
    assert!(e[..e.len() - 1]
        .iter()
        .all(|x| x.status == Status::Failed && x.http_status == Some(500)));
    let text = render(&registry);
    assert_eq!(count(&text, "down", "abandoned"), 1.0);
    assert_eq!(count(&text, "down", "failed"), attempts as f64);
    assert_eq!(count(&text, "down", "delivered"), 0.0);
    assert_eq!(
        sample(&text, "handoff_notifications_pending{receiver=\"down\"}"),
        0.0
    );
    eprintln!(
        "down receiver: {attempts} failed attempts, abandoned {} ms after the escalation closed",
        ms(abandoned_after)
    );
    // The engine is still there: a new notice to the (now healthy) receiver goes through.
    engine.offer(
        &Notice::Escalation(Box::new(escalation(1, "support", Tier::Warm))),
        || {},
    );
    until("a later delivery", Duration::from_secs(5), || {
        down.delivered().len() == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_take_only_their_roles_and_tiers() {
    let k = key();
    let pager = Sink::start("pager", Some(&k), Mode::Healthy).await;
    let warm_support = Sink::start("support-slack", None, Mode::Healthy).await;
    let mut p = receiver("pager", ReceiverKind::Webhook, pager.url(), 1000, 4);
    p.tiers = vec![Tier::Immediate];
    let mut w = receiver(
        "support-slack",
        ReceiverKind::Slack,
        warm_support.url(),
        1000,
        4,
    );
    w.roles = vec!["support".into()];
    w.tiers = vec![Tier::Warm];
    let registry = prometheus::Registry::new();
    let metrics =
        handoff::notify::metrics::register(&registry, &["pager", "support-slack"]).unwrap();
    let ledger = Arc::new(MemoryLedger::default());
    let engine = Engine::start(
        config(),
        vec![spec(p), spec(w)],
        metrics,
        ledger.clone(),
        Arc::new(|_: &str| true),
        &Default::default(),
    );
    let settled = Arc::new(AtomicUsize::new(0));
    let notices = [
        escalation(0, "support", Tier::Warm),
        escalation(1, "support", Tier::Immediate),
        escalation(2, "trader", Tier::Warm),
        escalation(3, "trader", Tier::Immediate),
    ];
    for x in notices {
        let s = settled.clone();
        engine.offer(&Notice::Escalation(Box::new(x)), move || {
            s.fetch_add(1, Ordering::SeqCst);
        });
    }
    until("all settled", Duration::from_secs(5), || {
        settled.load(Ordering::SeqCst) == 4
    })
    .await;
    let mut paged: Vec<String> = pager.delivered().into_iter().filter_map(|g| g.id).collect();
    paged.sort();
    assert_eq!(paged, ["esc-support-001", "esc-trader-003"]);
    let slack = warm_support.delivered();
    assert_eq!(slack.len(), 1);
    assert!(slack[0].body.to_string().contains("esc-support-000"));
    assert_eq!(
        ledger.entries().len(),
        3,
        "trader's warm escalation went nowhere"
    );
}
