//! The demo says how its processor is doing: whether it keeps up with the fleet, and — at once,
//! with the reason and exit 3 — that it stopped. Before, a demo whose processor had stopped went
//! on printing summaries of nothing for minutes.

mod common;

use common::kafka::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Reads a pipe line by line on a thread, sending every line.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn a_demo_whose_processor_stops_says_so_at_once_and_exits_3() {
    let _serial = serial();
    let broker = broker();
    let bs = broker.bootstrap();
    let dir = tmpdir("demo-stops");
    let inbox_port = handoff::sim::broker::free_port();
    // Deliveries fail after 3 s without a broker, instead of librdkafka's 5 minutes.
    let extra = format!(
        "[kafka.producer]\n\"message.timeout.ms\" = \"3000\"\n[inbox]\nbind = \"127.0.0.1:{inbox_port}\"\n"
    );
    let cfg = config_file(&dir, &bs, "demo", &extra);
    let mut demo = Command::new(handoff_bin())
        .args(["demo", "--rate", "3000", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(demo.stdout.take().unwrap());
    let err = lines(demo.stderr.take().unwrap());
    let started = Instant::now();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("keeping up") || l.starts_with("BEHIND"))
    {
        assert!(started.elapsed() < Duration::from_secs(90), "{seen:#?}");
        if let Ok(l) = out.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    // The broker freezes: what the processor sends is never acknowledged, and librdkafka gives
    // up on it after message.timeout.ms — a delivery failure, fatal to the processor.
    signal(broker.pid(), "-STOP");
    let stopped = Instant::now();
    let mut said = Vec::new();
    let mut told = None;
    let status = loop {
        said.extend(err.try_iter());
        if told.is_none()
            && said
                .iter()
                .any(|l| l.starts_with("the processor stopped: "))
        {
            told = Some(stopped.elapsed());
        }
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        if stopped.elapsed() > Duration::from_secs(90) {
            let _ = demo.kill();
            signal(broker.pid(), "-CONT");
            let tail: Vec<&String> = said.iter().rev().take(30).collect();
            panic!("the demo still runs 90 s after its broker stopped: {tail:#?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = stopped.elapsed();
    signal(broker.pid(), "-CONT");
    std::thread::sleep(Duration::from_millis(300));
    said.extend(err.try_iter());
    let said = said.join("\n");
    assert_eq!(status.code(), Some(3), "{said}");
    assert!(said.contains("the processor stopped: "), "{said}");
    assert!(said.contains("delivery failed for good"), "{said}");
    eprintln!(
        "the broker froze; the demo said its processor stopped {told:?} later (librdkafka's \
         message.timeout.ms is 3 s here) and exited after {took:?}"
    );
}
