//! `notify::run` against the local broker (tansu): role-topic records to the receiver, once,
//! across restarts, a stop with unsettled notices, and a new consumer group.

use super::fixtures::*;
use super::receivers::{Mode, Sink};
use handoff::config::notify::ReceiverKind;
use handoff::event::Tier;
use handoff::notify::ledger::{LedgerEntry, Status};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Produces the records, one per batch (see `crate::common::kafka::produce` on tansu's fetches).
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
            // As handoff writes them: the kind, and the schema version when there are several.
            let mut hs = OwnedHeaders::new().insert(Header {
                key: handoff::event::wire::KIND_HEADER,
                value: Some(k),
            });
            let schema = match k {
                "escalation" => Some(handoff::event::SchemaKind::Escalation),
                "digest" => Some(handoff::event::SchemaKind::Digest),
                _ => None,
            };
            if let Some((key, v)) = schema.and_then(handoff::event::wire::version_header) {
                hs = hs.insert(Header {
                    key,
                    value: Some(v),
                });
            }
            rec = rec.headers(hs);
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
        let open: handoff::notify::IsOpen = Arc::new(|_: &str| true);
        let due: handoff::notify::DueReminders = Arc::new(|_, _| Vec::new());
        handoff::notify::run(&s, matrix, (open, due), &r, shutdown).await
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
    let _g = crate::common::kafka::serial();
    let b = crate::common::kafka::broker();
    let bs = b.bootstrap();
    crate::common::kafka::create_topics(&bs, &[ROLE_TOPIC]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sink = rt.block_on(Sink::start("hook", Some(&key()), Mode::Healthy));
    let mut settings = crate::common::kafka::settings(&bs);
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
    let ledger = crate::common::kafka::read_all(&bs, "handoff.notifications");
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
