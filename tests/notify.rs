//! Notifications end to end: the delivery engine against local HTTP receivers (healthy,
//! failing then recovering, rate-limiting with `Retry-After`, slow, down), a Slack receiver,
//! and `notify::run` against the local broker (tansu) across restarts. Each test prints its
//! delivery figures (`cargo test --test notify -- --nocapture`).

mod common;
#[path = "notify/receivers.rs"]
mod receivers;

use handoff::config::notify::{Receiver, ReceiverKind};
use handoff::event::{
    ContextPackage, Digest, DigestItem, DigestReason, Escalation, FlagOut, Level, RequiredAction,
    Tier,
};
use handoff::notify::ledger::{LedgerEntry, MemoryLedger, Status};
use handoff::notify::message::Links;
use handoff::notify::transport::Http;
use handoff::notify::{Engine, EngineConfig, IsOpen, Notice, ReceiverSpec};
use receivers::{Mode, Sink};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn key() -> Vec<u8> {
    handoff::config::notify::signing_key(SECRET).unwrap()
}

fn escalation(i: usize, role: &str, tier: Tier) -> Escalation {
    Escalation {
        escalation_id: format!("esc-{role}-{i:03}"),
        action_id: format!("act-{i}"),
        session_id: format!("sess-{i}"),
        agent_id: "agent-7".into(),
        action_type: "refund.issue".into(),
        role: role.into(),
        tier,
        level: Level::AskFirst,
        required_action: RequiredAction::Approve,
        created_at_ms: 1_798_761_600_000,
        deadline_ms: 1_798_765_200_000,
        rule_version: "rv-test".into(),
        sequence: 0,
        drill: false,
        context: ContextPackage {
            view: role.into(),
            headline: format!("ask_first: refund.issue #{i} <@here> & more"),
            request: None,
            summary: None,
            output: None,
            user_message: None,
            confidence: 0.4,
            flags: vec![FlagOut {
                trigger: "low_confidence".into(),
                detail: "confidence 0.40 < 0.60".into(),
            }],
            options: vec![],
            error: None,
            amount: Some(25.0),
            currency: Some("EUR".into()),
            customer: None,
            retention_risk: false,
            attributes: BTreeMap::new(),
            event_timestamp_ms: 1_798_761_600_000,
        },
        history: vec![],
        grouped_action_ids: vec![],
    }
}

fn digest(id: &str, role: &str, n: usize) -> Digest {
    Digest {
        digest_id: id.into(),
        target: role.into(),
        first_at_ms: 1_798_761_600_000,
        sent_at_ms: 1_798_761_660_000,
        rule_version: "rv-test".into(),
        drill: false,
        items: (0..n)
            .map(|i| DigestItem {
                reason: DigestReason::RateLimited,
                escalation_id: Some(format!("esc-folded-{i:03}")),
                action_id: format!("act-folded-{i}"),
                session_id: format!("sess-folded-{i}"),
                agent_id: "agent-7".into(),
                action_type: "refund.issue".into(),
                level: Level::AskFirst,
                tier: Some(Tier::Warm),
                headline: format!("folded refund #{i}"),
                triggers: vec!["low_confidence".into()],
                created_at_ms: 1_798_761_600_000,
                deadline_ms: Some(1_798_765_200_000),
            })
            .collect(),
    }
}

fn receiver(
    name: &str,
    kind: ReceiverKind,
    url: String,
    timeout_ms: u64,
    in_flight: usize,
) -> Receiver {
    Receiver {
        name: name.into(),
        kind,
        url,
        secret: (kind == ReceiverKind::Webhook).then(|| SECRET.to_string()),
        roles: vec![],
        tiers: vec![],
        timeout: Duration::from_millis(timeout_ms),
        max_in_flight: in_flight,
    }
}

fn spec(r: Receiver) -> ReceiverSpec {
    let transport = Arc::new(Http::new(r.timeout));
    ReceiverSpec {
        settings: r,
        transport,
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        links: Links::new("https://inbox.example"),
        sweep: Duration::from_millis(50),
    }
}

fn render(r: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&r.gather(), &mut buf)
        .unwrap();
    String::from_utf8(buf).unwrap()
}

/// The value of one sample in the exposition text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn count(text: &str, receiver: &str, result: &str) -> f64 {
    sample(
        text,
        &format!("handoff_notifications_total{{receiver=\"{receiver}\",result=\"{result}\"}}"),
    )
}

async fn until(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < within,
            "{what} not reached within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn of(entries: &[LedgerEntry], receiver: &str) -> Vec<(u32, Status, Option<u16>)> {
    entries
        .iter()
        .filter(|e| e.receiver == receiver)
        .map(|e| (e.attempt, e.status, e.http_status))
        .collect()
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn percentile(mut v: Vec<u64>, p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

const ESCALATIONS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_receiver_gets_every_notice_and_none_holds_up_another() {
    let k = key();
    let healthy = Sink::start("healthy", Some(&k), Mode::Healthy).await;
    let failing = Sink::start("failing", Some(&k), Mode::FailFirst(3)).await;
    let limited = Sink::start("limited", Some(&k), Mode::RateLimitFirst(1, 1)).await;
    let slow = Sink::start(
        "slow",
        Some(&k),
        Mode::SlowFirst(2, Duration::from_millis(1500)),
    )
    .await;
    let slack = Sink::start("slack", None, Mode::Healthy).await;
    let sinks = [&healthy, &failing, &limited, &slow];
    let mut specs: Vec<ReceiverSpec> = sinks
        .iter()
        .map(|s| {
            let (timeout, in_flight) = match s.name {
                "slow" => (300, 4),
                // One at a time: its requests show when each attempt started.
                "limited" => (2000, 1),
                _ => (2000, 4),
            };
            spec(receiver(
                s.name,
                ReceiverKind::Webhook,
                s.url(),
                timeout,
                in_flight,
            ))
        })
        .collect();
    specs.push(spec(receiver(
        "slack",
        ReceiverKind::Slack,
        slack.url(),
        2000,
        4,
    )));
    let names: Vec<&str> = specs.iter().map(|s| s.settings.name.as_str()).collect();
    let registry = prometheus::Registry::new();
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

    let settled = Arc::new(AtomicUsize::new(0));
    let mut notices: Vec<Notice> = (0..ESCALATIONS)
        .map(|i| {
            let tier = if i % 2 == 0 {
                Tier::Warm
            } else {
                Tier::Immediate
            };
            Notice::Escalation(Box::new(escalation(i, "support", tier)))
        })
        .collect();
    notices.push(Notice::Digest(Box::new(digest(
        "dig-support-1",
        "support",
        30,
    ))));
    let offered = Instant::now();
    for n in &notices {
        let s = settled.clone();
        engine.offer(n, move || {
            s.fetch_add(1, Ordering::SeqCst);
        });
    }
    let offer_took = offered.elapsed();
    until(
        "the healthy receiver has everything",
        Duration::from_secs(5),
        || healthy.delivered().len() == notices.len(),
    )
    .await;
    let healthy_done = offered.elapsed();
    // A late request still hanging has not been answered yet.
    let slow_hanging = slow
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
    // while the slow one was still holding its first requests.
    assert!(
        offer_took < Duration::from_millis(50),
        "offer took {offer_took:?}"
    );
    assert!(
        healthy_done < Duration::from_millis(1000),
        "healthy took {healthy_done:?}"
    );
    assert!(
        slow_hanging > 0,
        "the slow receiver still hangs on its first requests when the healthy one has everything"
    );

    let mut ids: Vec<String> = notices.iter().map(|n| n.id().to_string()).collect();
    ids.sort();
    for s in sinks {
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
    assert_eq!(slack.delivered().len(), notices.len());

    // The 429: the next attempt came no sooner than its Retry-After (1 s) after the answer.
    let lg = limited.got();
    assert_eq!(lg[0].status, 429);
    let waited = lg[1].at.duration_since(lg[0].answered);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");

    // The digest is one message per receiver: 20 items listed, 10 counted.
    let d = healthy
        .got()
        .into_iter()
        .find(|g| g.id.as_deref() == Some("dig-support-1"))
        .unwrap();
    assert_eq!(d.body["type"], "digest");
    assert_eq!(
        (
            d.body["count"].as_u64(),
            d.body["items"].as_array().unwrap().len(),
            d.body["more"].as_u64()
        ),
        (Some(30), 20, Some(10))
    );
    assert_eq!(
        d.body["items"][0]["url"],
        "https://inbox.example/e/esc-folded-000"
    );
    let e0 = healthy
        .got()
        .into_iter()
        .find(|g| g.id.as_deref() == Some("esc-support-000"))
        .unwrap();
    assert_eq!(e0.body["url"], "https://inbox.example/e/esc-support-000");
    assert_eq!(e0.body["flags"][0]["trigger"], "low_confidence");

    // Slack: Block Kit, buttons, escaped text; no signature headers needed.
    let m = slack
        .got()
        .into_iter()
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
    let sd = slack
        .got()
        .into_iter()
        .filter(|g| g.body.to_string().contains("30 escalation(s) for support"))
        .count();
    assert_eq!(sd, 1, "the digest is one Slack message");

    // The ledger and the metrics say the same as the receivers.
    let entries = ledger.entries();
    let text = render(&registry);
    let n = notices.len() as f64;
    let table: [(&str, f64, f64, f64); 5] = [
        // receiver, delivered, failed, rate_limited
        ("healthy", n, 0.0, 0.0),
        ("failing", n, 3.0, 0.0),
        ("limited", n, 0.0, 1.0),
        ("slow", n, 2.0, 0.0),
        ("slack", n, 0.0, 0.0),
    ];
    for (r, delivered, failed, limited_n) in table {
        let e = of(&entries, r);
        let by = |st: Status| e.iter().filter(|(_, s, _)| *s == st).count() as f64;
        assert_eq!(
            (
                by(Status::Delivered),
                by(Status::Failed),
                by(Status::RateLimited)
            ),
            (delivered, failed, limited_n),
            "{r}: ledger {e:?}"
        );
        assert_eq!(count(&text, r, "delivered"), delivered, "{r}");
        assert_eq!(count(&text, r, "failed"), failed, "{r}");
        assert_eq!(count(&text, r, "rate_limited"), limited_n, "{r}");
        assert_eq!(count(&text, r, "abandoned"), 0.0, "{r}");
        assert_eq!(
            sample(
                &text,
                &format!("handoff_notifications_pending{{receiver=\"{r}\"}}")
            ),
            0.0
        );
        assert_eq!(
            sample(
                &text,
                &format!("handoff_notification_latency_seconds_count{{receiver=\"{r}\"}}")
            ),
            delivered + failed + limited_n,
            "{r}: one latency sample per attempt"
        );
    }
    assert!(of(&entries, "healthy").iter().all(|(a, _, _)| *a == 1));
    assert!(of(&entries, "failing")
        .iter()
        .any(|(_, s, h)| *s == Status::Failed && *h == Some(500)));
    assert!(entries
        .iter()
        .filter(|e| e.receiver == "slow" && e.status == Status::Failed)
        .all(|e| e.error.as_deref() == Some("timeout")));
    assert!(of(&entries, "limited").contains(&(1, Status::RateLimited, Some(429))));

    // Figures.
    eprintln!(
        "notices: {} escalations + 1 digest of 30 items; offer() of all took {} µs",
        ESCALATIONS,
        offer_took.as_micros()
    );
    for s in sinks.iter().chain([&slack].iter()) {
        let e: Vec<&LedgerEntry> = entries.iter().filter(|e| e.receiver == s.name).collect();
        let lat: Vec<u64> = e.iter().filter_map(|e| e.latency_ms).collect();
        let done: Vec<u128> = s
            .delivered()
            .iter()
            .map(|g| ms(g.answered.duration_since(offered)))
            .collect();
        eprintln!(
            "{:8} attempts {:2} (for {} notices), first delivery {:4} ms, last delivery {:4} ms after offer; attempt latency p50 {} ms, max {} ms",
            s.name,
            e.iter().filter(|e| e.status != Status::Abandoned).count(),
            notices.len(),
            done.iter().min().unwrap(),
            done.iter().max().unwrap(),
            percentile(lat.clone(), 0.5),
            lat.iter().max().unwrap(),
        );
    }
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

// ---- against the local broker ---------------------------------------------------------------

const ROLE_TOPIC: &str = "escalations.support";

/// One role-topic record: key, value, `handoff.kind`, partition.
struct Rec {
    key: String,
    value: Vec<u8>,
    kind: Option<&'static str>,
    partition: Option<i32>,
}

fn encoded_escalation(i: usize, partition: Option<i32>) -> Rec {
    let codec = handoff::event::Codec::new(Default::default()).unwrap();
    let x = escalation(i, "support", Tier::Warm);
    Rec {
        key: x.session_id.clone(),
        value: codec
            .encode(handoff::event::SchemaKind::Escalation, &x)
            .unwrap(),
        kind: Some("escalation"),
        partition,
    }
}

/// Produces the records, one per batch (see `common::kafka::produce` on tansu's fetches).
fn produce(bootstrap: &str, recs: &[Rec]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    for r in recs {
        let mut rec = BaseRecord::to(ROLE_TOPIC).key(&r.key).payload(&r.value);
        if let Some(k) = r.kind {
            rec = rec.headers(OwnedHeaders::new().insert(Header {
                key: handoff::event::wire::KIND_HEADER,
                value: Some(k),
            }));
        }
        if let Some(part) = r.partition {
            rec = rec.partition(part);
        }
        p.send(rec).map_err(|(e, _)| e).unwrap();
        p.flush(Duration::from_secs(10)).unwrap();
    }
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<Result<(), handoff::notify::NotifyError>>,
    registry: prometheus::Registry,
}

fn start(rt: &tokio::runtime::Runtime, settings: &handoff::config::Settings) -> Running {
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let registry = prometheus::Registry::new();
    let (s, r) = (settings.clone(), registry.clone());
    let matrix = Arc::new(handoff::matrix::Matrix::default_matrix().unwrap());
    let done = rt.spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        handoff::notify::run(&s, matrix, Arc::new(|_: &str| true), &r, shutdown).await
    });
    Running {
        stop,
        done,
        registry,
    }
}

fn stop(rt: &tokio::runtime::Runtime, r: Running) -> prometheus::Registry {
    let _ = r.stop.send(());
    rt.block_on(r.done).unwrap().unwrap();
    r.registry
}

/// Ids delivered to `sink`, with how many times each.
fn delivered(sink: &Sink) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for g in sink.delivered() {
        *m.entry(g.id.unwrap()).or_insert(0) += 1;
    }
    m
}

fn wait_delivered(sink: &Sink, n: usize, within: Duration) -> Duration {
    let start = Instant::now();
    while delivered(sink).len() < n {
        assert!(
            start.elapsed() < within,
            "{} of {n} delivered after {within:?}",
            delivered(sink).len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[test]
fn role_topic_records_are_delivered_once_across_restarts_and_lost_commits() {
    let _g = common::kafka::serial();
    let b = common::kafka::broker();
    let bs = b.bootstrap();
    common::kafka::create_topics(&bs, &[ROLE_TOPIC]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sink = rt.block_on(Sink::start("hook", Some(&key()), Mode::Healthy));
    let mut settings = common::kafka::settings(&bs);
    settings.kafka.group_id = "notify-it".into();
    settings.inbox.public_url = Some("https://inbox.example".into());
    settings.notify.backoff_initial = Duration::from_millis(100);
    settings.notify.receivers = vec![receiver("hook", ReceiverKind::Webhook, sink.url(), 2000, 4)];
    let codec = handoff::event::Codec::new(Default::default()).unwrap();
    let mut first: Vec<Rec> = (0..6).map(|i| encoded_escalation(i, None)).collect();
    first.push(Rec {
        key: "support".into(),
        value: codec
            .encode(
                handoff::event::SchemaKind::Digest,
                &digest("dig-support-k", "support", 25),
            )
            .unwrap(),
        kind: Some("digest"),
        partition: None,
    });
    first.push(Rec {
        kind: None,
        ..encoded_escalation(99, None)
    });
    produce(&bs, &first);

    // First run: everything on the topic, except the record without a kind.
    let run = start(&rt, &settings);
    let took = wait_delivered(&sink, 7, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let reg1 = stop(&rt, run);
    assert_eq!(delivered(&sink).len(), 7);
    assert!(!delivered(&sink).contains_key("esc-support-099"));
    let d = sink
        .got()
        .into_iter()
        .find(|g| g.id.as_deref() == Some("dig-support-k"))
        .unwrap();
    assert_eq!(d.body["count"], 25);
    assert_eq!(count(&render(&reg1), "hook", "delivered"), 7.0);

    // Second run, same group: only what came since.
    produce(
        &bs,
        &(6..9)
            .map(|i| encoded_escalation(i, None))
            .collect::<Vec<_>>(),
    );
    let run = start(&rt, &settings);
    let took2 = wait_delivered(&sink, 10, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let reg2 = stop(&rt, run);
    assert_eq!(count(&render(&reg2), "hook", "delivered"), 3.0);

    // The receiver is down; the process stops before anything is delivered: nothing is
    // committed past those records, so the next run sends them.
    sink.set(Mode::Down);
    produce(
        &bs,
        &(9..11)
            .map(|i| encoded_escalation(i, None))
            .collect::<Vec<_>>(),
    );
    let run = start(&rt, &settings);
    let t = Instant::now();
    while sink.got().iter().filter(|g| g.status == 500).count() < 4 {
        assert!(t.elapsed() < Duration::from_secs(60), "no failed attempts");
        std::thread::sleep(Duration::from_millis(20));
    }
    let reg = stop(&rt, run);
    assert_eq!(count(&render(&reg), "hook", "delivered"), 0.0);
    assert!(count(&render(&reg), "hook", "failed") >= 4.0);
    sink.set(Mode::Healthy);
    let run = start(&rt, &settings);
    let took3 = wait_delivered(&sink, 12, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let reg = stop(&rt, run);
    assert_eq!(count(&render(&reg), "hook", "delivered"), 2.0);

    // Third run, a new group (its commits lost): it reads the topic from the start, and the
    // ledger keeps it from sending anything again. A fresh record on each partition shows
    // when every partition has been read past the old ones.
    let mut fresh = settings.clone();
    fresh.kafka.group_id = "notify-it-fresh".into();
    let run = start(&rt, &fresh);
    produce(
        &bs,
        &(0..4)
            .map(|p| encoded_escalation(100 + p as usize, Some(p)))
            .collect::<Vec<_>>(),
    );
    wait_delivered(&sink, 16, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let reg3 = stop(&rt, run);
    let text = render(&reg3);
    assert_eq!(
        count(&text, "hook", "delivered"),
        4.0,
        "only the fresh ones"
    );
    let twice: Vec<_> = delivered(&sink)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(
        sink.got().iter().filter(|g| g.status == 200).count(),
        16,
        "no other delivery reached the receiver"
    );

    // The ledger: one delivered entry per notice, keyed by its id.
    let ledger = common::kafka::read_all(&bs, "handoff.notifications");
    let entries: Vec<LedgerEntry> = ledger
        .iter()
        .map(|r| serde_json::from_slice(&r.payload).unwrap())
        .collect();
    assert!(ledger
        .iter()
        .zip(&entries)
        .all(|(r, e)| r.key.as_deref() == Some(e.notification_id.as_bytes())));
    let delivered_entries: Vec<&LedgerEntry> = entries
        .iter()
        .filter(|e| e.status == Status::Delivered)
        .collect();
    assert_eq!(delivered_entries.len(), 16);
    let mut ids: Vec<&str> = delivered_entries
        .iter()
        .map(|e| e.notification_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 16, "one delivered entry per notice");
    // The two sent after the restart carry on counting their attempts.
    for e in delivered_entries.iter().filter(|e| {
        e.notification_id == "esc-support-009" || e.notification_id == "esc-support-010"
    }) {
        assert!(e.attempt > 1, "{e:?}");
    }
    assert!(entries
        .iter()
        .all(|e| e.receiver == "hook" && matches!(e.status, Status::Delivered | Status::Failed)));
    eprintln!(
        "broker: first run delivered 7 notices {} ms after start (group join included); \
         after a restart 3 new ones in {} ms; 2 left unsettled by a stop were sent {} ms after \
         the next start; a new group re-read 13 old records and sent none again",
        ms(took),
        ms(took2),
        ms(took3)
    );
}

// ---- the dashboard panel and the alert against a real Prometheus -----------------------------

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shipped "Notifications" panel's expressions and the shipped alert's expression.
fn shipped_expressions() -> (Vec<String>, String) {
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("grafana/dashboards/handoff.json")).unwrap(),
    )
    .unwrap();
    let panel = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Notifications")
        .expect("a Notifications panel");
    let exprs = panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["expr"].as_str().unwrap().replace("$instance", ".*"))
        .collect();
    let rules =
        handoff::problems::read_file(&root().join("deploy/prometheus/handoff.rules.yml")).unwrap();
    let alert = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .find(|r| r["alert"] == "HandoffNotificationsFailing")
        .expect("the alert");
    (exprs, alert["expr"].as_str().unwrap().to_string())
}

fn prom_query(port: u16, q: &str) -> Vec<serde_json::Value> {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = common::http_get(port, &format!("/api/v1/query?query={enc}"));
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{q}: {e}: {status} {body}"));
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Receivers (by label) with a real number in a query's result.
fn receivers_with_values(result: &[serde_json::Value]) -> Vec<String> {
    let mut r: Vec<String> = result
        .iter()
        .filter(|x| x["value"][1].as_str().is_some_and(|v| v != "NaN"))
        .map(|x| x["metric"]["receiver"].as_str().unwrap_or("").to_string())
        .collect();
    r.sort();
    r.dedup();
    r
}

#[test]
fn the_notifications_panel_and_alert_work_on_a_real_prometheus() {
    if std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("prometheus is not installed (apt-get install prometheus; CI installs it)");
    }
    let _g = common::kafka::serial();
    let (panel, alert) = shipped_expressions();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let registry = prometheus::Registry::new();
    let (metrics_port, _engine, _sinks) = rt.block_on(async {
        let k = key();
        let ok = Sink::start("ok", Some(&k), Mode::Healthy).await;
        let down = Sink::start("down", Some(&k), Mode::Down).await;
        let limited = Sink::start("limited", Some(&k), Mode::RateLimitFirst(usize::MAX, 0)).await;
        let specs: Vec<ReceiverSpec> = [&ok, &down, &limited]
            .iter()
            .map(|s| spec(receiver(s.name, ReceiverKind::Webhook, s.url(), 1000, 2)))
            .collect();
        let metrics =
            handoff::notify::metrics::register(&registry, &["ok", "down", "limited"]).unwrap();
        let engine = Arc::new(Engine::start(
            config(),
            specs,
            metrics,
            Arc::new(MemoryLedger::default()),
            Arc::new(|_: &str| true),
            &Default::default(),
        ));
        // A notice every 200 ms, so deliveries keep coming.
        let e = engine.clone();
        tokio::spawn(async move {
            for i in 0.. {
                e.offer(
                    &Notice::Escalation(Box::new(escalation(i, "support", Tier::Warm))),
                    || {},
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let r = registry.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let r = r.clone();
                async move { render(&r) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (port, engine, [ok, down, limited])
    });

    let dir = common::kafka::tmpdir("notify-prom");
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/handoff.rules.yml"))
        .unwrap()
        .replace("interval: 30s", "interval: 1s");
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    let prom_port = handoff::sim::broker::free_port();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: handoff\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n",
            dir.join("rules.yml").display()
        ),
    )
    .unwrap();
    let _prom = Killed(
        std::process::Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );

    // (query, receivers that must have a value)
    let all = ["down", "limited", "ok"];
    let mut checks: Vec<(String, Vec<&str>)> =
        panel.iter().map(|q| (q.clone(), all.to_vec())).collect();
    // The alert's expression (its `for` aside) picks the receivers that fail and deliver
    // nothing, and the rule holds them pending.
    checks.push((alert.clone(), vec!["down", "limited"]));
    checks.push((
        "ALERTS{alertname=\"HandoffNotificationsFailing\",alertstate=\"pending\"}".into(),
        vec!["down", "limited"],
    ));
    let start = Instant::now();
    let missing = loop {
        std::thread::sleep(Duration::from_secs(2));
        let missing: Vec<String> = checks
            .iter()
            .filter_map(|(q, want)| {
                let got = receivers_with_values(&prom_query(prom_port, q));
                (got != *want).then(|| format!("{q}: {got:?}, wanted {want:?}"))
            })
            .collect();
        if missing.is_empty() || start.elapsed() > Duration::from_secs(60) {
            break missing;
        }
    };
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    eprintln!(
        "{} panel and alert expressions returned data after {:?}",
        checks.len(),
        start.elapsed()
    );
}
