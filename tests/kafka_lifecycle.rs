//! Group membership and stopping against a real broker: clean rebalances redo no work, a stop
//! is bounded by `shutdown_deadline` whether the broker is paused or gone, and one record too
//! large to copy does not stop the stream.

mod common;

use common::kafka::*;
use common::outputs::*;
use std::time::{Duration, Instant};

#[test]
fn members_joining_and_leaving_cleanly_process_every_event_once() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    create_topics(&bs, &[INPUT]);
    let dir = tmpdir("churn");
    let cfg = config_file(&dir, &bs, "churn", "");
    let (la, lb) = (dir.join("a.log"), dir.join("b.log"));
    let mut a = spawn(&cfg, &la);
    wait_log(&la, "partitions assigned", Duration::from_secs(30));
    // Events flow the whole time, about 1,500 a second: a revocation always finds work
    // decided and delivered but not yet stored for commit.
    let recs = records(12_000, 21, 2.0, 0);
    let feeder = {
        let bs = bs.clone();
        std::thread::spawn(move || {
            let feeder = Feeder::new(&bs);
            for batch in records(12_000, 21, 2.0, 0).chunks(30) {
                feeder.send(INPUT, batch);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // B joins while events flow: A's partitions are revoked cleanly, some move to B.
    std::thread::sleep(Duration::from_millis(1500));
    let mut bp = spawn(&cfg, &lb);
    wait_log(&lb, "partitions assigned", Duration::from_secs(40));
    wait_log(&la, "partition revoked", Duration::from_secs(40));
    std::thread::sleep(Duration::from_secs(2));
    // A leaves cleanly while events still flow: B takes everything.
    sigterm(&a);
    assert!(wait_exit(&mut a, Duration::from_secs(40)).success());
    feeder.join().unwrap();
    Reader::new(&bs, VERDICTS).wait_for_keys(12_000, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(1));
    sigterm(&bp);
    assert!(wait_exit(&mut bp, Duration::from_secs(40)).success());
    let (vd, ed) = check_outputs(&bs, &expected(&recs));
    assert_eq!(
        (vd, ed),
        (0, 0),
        "a clean rebalance hands partitions over exactly after the last delivered record"
    );
}

/// Starts handoff with a short shutdown deadline and a backlog in flight.
fn running_with_backlog(name: &str, bs: &str) -> (std::process::Child, std::path::PathBuf) {
    create_topics(bs, &[INPUT]);
    produce(bs, INPUT, &records(20_000, 22, 1.0, 0));
    let dir = tmpdir(name);
    let cfg = config_file(&dir, bs, name, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("shutdown_deadline = \"20s\"", "shutdown_deadline = \"3s\"");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.join("run.log");
    let h = spawn(&cfg, &log);
    wait_log(&log, "handoff is running", Duration::from_secs(30));
    Reader::new(bs, VERDICTS).wait_for(1_000, Duration::from_secs(60));
    (h, log)
}

/// SIGTERM, then the exit: it must come within the deadline (3 s) plus start-up slack.
fn stop_within_deadline(h: &mut std::process::Child, log: &std::path::Path) -> String {
    let started = Instant::now();
    sigterm(h);
    let status = wait_exit(h, Duration::from_secs(12));
    let took = started.elapsed();
    let text = std::fs::read_to_string(log).unwrap();
    assert!(took < Duration::from_secs(8), "took {took:?}:\n{text}");
    assert_eq!(
        status.code(),
        Some(3),
        "a stop that could not commit everything is a runtime failure:\n{text}"
    );
    assert!(
        !text.contains("drained and committed"),
        "it must not claim what it did not do:\n{text}"
    );
    text
}

#[test]
fn sigterm_with_the_broker_paused_is_bounded_and_says_what_was_not_committed() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let (mut h, log) = running_with_backlog("paused", &bs);
    signal(b.pid(), "-STOP");
    std::thread::sleep(Duration::from_millis(300));
    let text = stop_within_deadline(&mut h, &log);
    signal(b.pid(), "-CONT");
    assert!(text.contains("not committed"), "{text}");
}

#[test]
fn sigterm_with_the_broker_gone_is_bounded() {
    let _g = serial();
    let mut b = broker();
    let bs = b.bootstrap();
    let (mut h, log) = running_with_backlog("gone", &bs);
    b.stop();
    std::thread::sleep(Duration::from_millis(300));
    stop_within_deadline(&mut h, &log);
}

#[test]
fn a_record_too_large_to_copy_is_dead_lettered_without_its_value_and_the_stream_goes_on() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    create_topics(&bs, &[INPUT, DLQ]);
    let big = vec![b'x'; 2_000_000];
    {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let p: BaseProducer = rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .set("message.max.bytes", "3000000")
            .create()
            .unwrap();
        p.send(BaseRecord::to(INPUT).key("s-big").payload(&big[..]))
            .map_err(|(e, _)| e)
            .unwrap();
        p.flush(Duration::from_secs(30)).unwrap();
    }
    let recs = records(200, 23, 1.0, 0);
    produce(&bs, INPUT, &recs);
    let dir = tmpdir("poison");
    let cfg = config_file(&dir, &bs, "poison", "");
    let log = dir.join("run.log");
    let mut h = spawn(&cfg, &log);
    Reader::new(&bs, VERDICTS).wait_for_keys(200, Duration::from_secs(60));
    let mut dlq = Reader::new(&bs, DLQ);
    dlq.wait_for(1, Duration::from_secs(30));
    let d = &dlq.records[0];
    assert!(d.payload.is_empty(), "the value is left out");
    assert_eq!(
        d.headers.get("handoff.value").map(String::as_str),
        Some("omitted")
    );
    assert_eq!(
        d.headers.get("handoff.original.bytes").map(String::as_str),
        Some("2000000")
    );
    assert_eq!(
        d.headers
            .get("__connect.errors.exception.class.name")
            .map(String::as_str),
        Some("too_large")
    );
    assert!(h.try_wait().unwrap().is_none(), "handoff is still running");
    sigterm(&h);
    assert!(wait_exit(&mut h, Duration::from_secs(30)).success());
}

#[test]
fn a_broker_that_starts_late_is_waited_for_until_connect_timeout() {
    let _g = serial();
    let port = handoff::sim::broker::free_port();
    let bs = format!("127.0.0.1:{port}");
    let dir = tmpdir("late");
    let cfg = config_file(&dir, &bs, "late", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[pipeline]\n", "[pipeline]\nconnect_timeout = \"60s\"\n");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.join("run.log");
    let mut h = spawn(&cfg, &log);
    std::thread::sleep(Duration::from_secs(3));
    assert!(h.try_wait().unwrap().is_none(), "still waiting for Kafka");
    let _b = handoff::sim::broker::LocalBroker::start(port, handoff::sim::broker::Storage::Memory)
        .unwrap();
    wait_log(&log, "handoff is running", Duration::from_secs(40));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Kafka does not answer yet"), "{text}");
    sigterm(&h);
    assert!(wait_exit(&mut h, Duration::from_secs(30)).success());
}
