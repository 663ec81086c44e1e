//! A broker that is slow but still acknowledging is not a failed delivery: handoff slows down
//! (its producer queue fills, its workers wait, the consumer stops polling at `max_in_flight`,
//! lag grows) and catches up afterwards — it never stops. Here the broker is frozen and thawed
//! (SIGSTOP 8 s, SIGCONT 2 s) for three minutes under a backlog, live traffic and simulated
//! people answering (their decisions' state writes wait for the verdicts), with a 5 s
//! shutdown deadline (and a 30 s session, so the freezes cost no rebalance): before, any wait
//! for a delivery longer than that deadline was fatal ("effects not delivered within 5s").
//! Nothing may be lost or duplicated.

mod common;

use common::kafka::*;
use common::prometheus::Killed;
use handoff::event::Verdict;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const THROTTLED: Duration = Duration::from_secs(180);

#[test]
fn a_throttled_broker_slows_handoff_down_and_nothing_is_lost_or_duplicated() {
    let _serial = serial();
    let broker = broker();
    let bs = broker.bootstrap();
    let dir = tmpdir("slow-broker");
    create_topics(&bs, &[INPUT]);
    produce(&bs, INPUT, &records(20_000, 31, 2.0, 0));
    let port = handoff::sim::broker::free_port();
    let metrics = format!("[metrics]\nbind = \"127.0.0.1:{port}\"\n");
    let cfg = config_file(&dir, &bs, "slow", &metrics);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("shutdown_deadline = \"20s\"", "shutdown_deadline = \"5s\"")
        .replace(
            "group_id = \"slow\"\n",
            "group_id = \"slow\"\nsession_timeout = \"30s\"\n",
        );
    std::fs::write(&cfg, text).unwrap();
    let log = dir.join("run.log");
    let mut run = Killed(spawn(&cfg, &log));
    wait_log(&log, "handoff is running", Duration::from_secs(60));
    let _people = Killed(
        Command::new(handoff_bin())
            .args([
                "respond",
                "--config",
                cfg.to_str().unwrap(),
                "--delay",
                "0s",
            ])
            .args(["--jitter", "1s", "--no-show", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let traffic = Killed(
        Command::new(handoff_bin())
            .args([
                "generate",
                "--topic",
                INPUT,
                "--bootstrap",
                &bs,
                "--seed",
                "32",
            ])
            .args(["--rate", "400", "--count", "72000", "--trigger-boost", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Freeze and thaw the broker for three minutes.
    let done = Arc::new(AtomicBool::new(false));
    let pid = broker.pid();
    let throttle = {
        let done = done.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let (mut cycles, mut lag) = (0, 0.0f64);
            while started.elapsed() < THROTTLED && !done.load(Ordering::Acquire) && alive(port) {
                signal(pid, "-STOP");
                std::thread::sleep(Duration::from_secs(8));
                signal(pid, "-CONT");
                std::thread::sleep(Duration::from_secs(2));
                cycles += 1;
                lag = lag.max(consumer_lag(port));
            }
            signal(pid, "-CONT");
            (cycles, lag)
        })
    };
    let (cycles, lag) = throttle.join().unwrap();
    done.store(true, Ordering::Release);
    assert!(
        run.0.try_wait().unwrap().is_none(),
        "handoff stopped while the broker was slow:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let behind = verdicts(&bs).len();
    // The traffic ends, handoff catches up.
    drop(traffic);
    std::thread::sleep(Duration::from_secs(1));
    let codec = handoff::event::Codec::new(Default::default()).unwrap();
    let inputs: BTreeSet<String> = read_all(&bs, INPUT)
        .iter()
        .map(|r| codec.decode_action(&r.payload).unwrap().action_id)
        .collect();
    let started = Instant::now();
    let all: Vec<Verdict> = loop {
        let vs = verdicts(&bs);
        let first: BTreeSet<&str> = vs
            .iter()
            .filter(|v| v.outcome.is_first())
            .map(|v| v.action_id.as_str())
            .collect();
        if first.len() >= inputs.len() {
            break vs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{} of {} decided after 5 minutes",
            first.len(),
            inputs.len()
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("fatal"), "{text}");
    assert!(run.0.try_wait().unwrap().is_none(), "still running");
    // Nothing lost: every event has its first verdict. Nothing duplicated: one first verdict
    // and at most one final verdict per action.
    let mut seen: BTreeMap<(&str, bool, bool), usize> = BTreeMap::new();
    for v in &all {
        let first = v.outcome.is_first();
        if first || v.is_final {
            *seen.entry((&v.action_id, first, v.is_final)).or_default() += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "verdicts written twice: {twice:?}");
    let answered = all.iter().filter(|v| v.decided_by.is_some()).count();
    assert!(
        answered > 100,
        "people answered during the freezes: {answered}"
    );
    let first: BTreeSet<String> = all
        .iter()
        .filter(|v| v.outcome.is_first())
        .map(|v| v.action_id.clone())
        .collect();
    assert_eq!(first, inputs, "every event decided once");
    eprintln!(
        "{cycles} freeze/thaw cycles; consumer lag up to {lag} records; {} inputs; {behind} \
         verdicts when the throttling ended, all {} after {:.0?} more",
        inputs.len(),
        all.len(),
        started.elapsed()
    );
    assert!(
        lag > 1000.0,
        "the broker was slow enough for handoff to fall behind: {lag}"
    );
}

/// The consumer lag handoff reports (summed over partitions); 0 when it does not answer.
fn consumer_lag(port: u16) -> f64 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0.0;
    };
    let mut body = String::new();
    let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let _ = s.read_to_string(&mut body);
    body.lines()
        .filter(|l| l.starts_with("handoff_consumer_lag_records{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// True while handoff's metrics server answers (the process runs).
fn alive(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}
