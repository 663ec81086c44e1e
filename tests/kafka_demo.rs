//! The demo says how its processor is doing: whether it keeps up with the fleet, and — at once,
//! with the reason and exit 3 — that it stopped, or that its broker does not answer. Before, a
//! demo whose processor had stopped went on printing summaries of nothing for minutes.

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

/// What a demo whose broker froze did: its exit status, everything it said on stderr, when it
/// said its first reason and when it exited (both from the freeze).
struct Frozen {
    status: std::process::ExitStatus,
    said: String,
    told: Option<Duration>,
    took: Duration,
}

/// Runs the demo at `rate` until `ready` holds of the summaries printed so far, then freezes
/// its broker (SIGSTOP: nothing it was sent is ever answered) until the demo exits. Deliveries
/// fail after 3 s without a broker here, instead of librdkafka's 5 minutes.
fn freeze_a_demo(
    name: &str,
    rate: &str,
    producer: &str,
    ready: impl Fn(&[String]) -> bool,
) -> Frozen {
    let broker = broker();
    let bs = broker.bootstrap();
    let dir = tmpdir(name);
    let inbox_port = handoff::sim::broker::free_port();
    let extra = format!(
        "[kafka.producer]\n\"message.timeout.ms\" = \"3000\"\n{producer}[inbox]\nbind = \"127.0.0.1:{inbox_port}\"\n"
    );
    let cfg = config_file(&dir, &bs, "demo", &extra);
    let mut demo = Command::new(handoff_bin())
        .args(["demo", "--rate", rate, "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(demo.stdout.take().unwrap());
    let err = lines(demo.stderr.take().unwrap());
    let started = Instant::now();
    let mut seen = Vec::new();
    while !ready(&seen) {
        assert!(started.elapsed() < Duration::from_secs(120), "{seen:#?}");
        if let Ok(l) = out.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    signal(broker.pid(), "-STOP");
    let stopped = Instant::now();
    let mut said = Vec::new();
    let mut told = None;
    let status = loop {
        said.extend(err.try_iter());
        if told.is_none() && said.iter().any(|l| l == "stopping the demo") {
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
    Frozen {
        status,
        said: said.join("\n"),
        told,
        took,
    }
}

/// The records the processor had consumed by the last summary printed.
fn consumed(summaries: &[String]) -> u64 {
    summaries
        .iter()
        .rev()
        .find_map(|l| {
            l.strip_prefix("records ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn a_demo_whose_processor_stops_says_so_at_once_and_exits_3() {
    let _serial = serial();
    // Frozen while the processor is deciding, with its outputs held 2 s before they are sent
    // (linger.ms): what it decided in the last 2 s is certainly still waiting, never sent —
    // librdkafka gives up on it after message.timeout.ms, a delivery failure, fatal to the
    // processor. (Without the linger, a processor between two fetches has nothing in flight,
    // found in about one freeze of three: it waits, as for a slow broker — the next test.)
    let linger = "\"linger.ms\" = \"2000\"\n";
    let f = freeze_a_demo("demo-stops", "3000", linger, |seen| consumed(seen) > 0);
    let said = &f.said;
    assert_eq!(f.status.code(), Some(3), "{said}");
    assert!(said.contains("the processor stopped: "), "{said}");
    assert!(said.contains("delivery failed for good"), "{said}");
    eprintln!(
        "the broker froze; the demo said its processor stopped {:?} later (librdkafka's \
         message.timeout.ms is 3 s here) and exited after {:?}",
        f.told, f.took
    );
}

/// A processor with nothing in flight when its broker freezes has nothing to fail: it waits, as
/// it does for a slow broker. The demo still learns within seconds, from its own fleet's records
/// going undelivered, and says which of the two it was.
#[test]
fn a_demo_whose_broker_stops_says_so_within_seconds_even_when_its_processor_waits() {
    let _serial = serial();
    // Two events a second: the processor has long caught up and is mostly idle at the freeze.
    let f = freeze_a_demo("demo-broker-stops", "2", "", |seen| consumed(seen) > 10);
    let said = &f.said;
    assert_eq!(f.status.code(), Some(3), "{said}");
    let broker = said.contains("the broker does not answer: ");
    let processor = said.contains("the processor stopped: ");
    assert!(broker || processor, "{said}");
    let told = f.told.expect("the demo said why");
    // 3 s for librdkafka to give up on the fleet's records, 5 s for the processor to say it
    // first, and the demo's quarter-second tick; 30 s leaves room for a loaded machine.
    assert!(
        told < Duration::from_secs(30),
        "said after {told:?}: {said}"
    );
    eprintln!(
        "the broker froze; the demo said {} {told:?} later and exited after {:?}",
        if broker {
            "the broker does not answer"
        } else {
            "its processor stopped"
        },
        f.took
    );
}

/// The sum of a metric family's samples in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The demo serves its processor's /metrics, /healthz and /readyz as `run` does, and says
/// where: Prometheus and the dashboard can be pointed at a demo.
#[test]
fn the_demo_serves_its_processors_metrics_and_says_where() {
    let _serial = serial();
    let broker = broker();
    let dir = tmpdir("demo-metrics");
    let (inbox_port, metrics_port, gateway_port) = (
        handoff::sim::broker::free_port(),
        handoff::sim::broker::free_port(),
        handoff::sim::broker::free_port(),
    );
    let extra = format!(
        "[inbox]\nbind = \"127.0.0.1:{inbox_port}\"\n[metrics]\nbind = \"127.0.0.1:{metrics_port}\"\n\
         [gateway]\nbind = \"127.0.0.1:{gateway_port}\"\n"
    );
    let cfg = config_file(&dir, &broker.bootstrap(), "demo", &extra);
    let mut demo = common::prometheus::Killed(
        Command::new(handoff_bin())
            .args(["demo", "--rate", "200", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let err = lines(demo.0.stderr.take().unwrap());
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let started = Instant::now();
    let (mut said_metrics, mut key) = (false, None);
    while !said_metrics || key.is_none() {
        let l = err
            .recv_timeout(Duration::from_secs(90))
            .expect("the demo's start lines");
        if l.starts_with("metrics: ") {
            assert!(l.contains(&url), "{l}");
            said_metrics = true;
        }
        if let Some(rest) = l.strip_prefix("gateway: ") {
            assert!(
                rest.starts_with(&format!("http://127.0.0.1:{gateway_port}/v1/")),
                "{l}"
            );
            key = Some(rest.rsplit(' ').next().unwrap().to_string());
        }
        assert!(started.elapsed() < Duration::from_secs(90));
    }
    // The demo's agent key submits the sample action while the fleet's traffic flows.
    let key = key.unwrap();
    let sample = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/samples/gateway-action.json"),
    )
    .unwrap();
    let accepted = common::gateway::submit(gateway_port, &key, &sample);
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let state = common::gateway::get(
        gateway_port,
        "/v1/actions/act-demo-1/verdict?wait=30s&until=any",
        &key,
    )
    .json();
    assert_eq!(state["first"]["level"], "ask_first", "{state}");
    let roles = state["first"]["roles"].as_array().unwrap();
    assert!(roles.iter().any(|r| r == "support"), "{state}");
    // Scraped while the demo runs: its processor's counters move.
    let mut decided = 0.0;
    while decided < 500.0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{decided} events"
        );
        std::thread::sleep(Duration::from_secs(1));
        let (status, body) = common::http_get(metrics_port, "/metrics");
        assert!(status.contains("200"), "{status}");
        decided = metric(&body, "handoff_events_total");
    }
    let (_, ready) = common::http_get(metrics_port, "/readyz");
    assert!(ready.contains("ready"), "{ready}");
    let (_, live) = common::http_get(metrics_port, "/healthz");
    assert!(live.contains("live"), "{live}");
    signal(demo.0.id(), "-TERM");
    assert!(wait_exit(&mut demo.0, Duration::from_secs(60)).success());
}
