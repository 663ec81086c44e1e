//! Proof that the dashboard and the rules show real data: a real Prometheus (Debian's package)
//! scrapes a running handoff that processes generated traffic on the local broker while
//! simulated people (`handoff respond`) answer its escalations; then every dashboard expression
//! and every recording rule must return a real number (NaN is no data), and every series an
//! alert rule uses must exist (alert expressions themselves rightly return nothing while all is
//! well).

mod common;

use common::kafka::*;
use common::prometheus::{is_value, Killed, Prometheus};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// True once handoff has applied a human answer.
fn answering(metrics_port: u16) -> bool {
    let (_, body) = common::http_get(metrics_port, "/metrics");
    body.lines()
        .filter(|l| l.starts_with("handoff_human_decisions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
        > 0.0
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_dashboard_and_rule_expression_returns_data_from_a_real_prometheus() {
    common::prometheus::binary();
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    create_topics(&bs, &[INPUT]);
    let dir = tmpdir("prom");
    let metrics_port = handoff::sim::broker::free_port();
    let cfg = config_file(
        &dir,
        &bs,
        "prom",
        &format!(
            "[metrics]\nbind = \"127.0.0.1:{metrics_port}\"\n[kafka.consumer]\n\"statistics.interval.ms\" = 1000\n\
             [canary]\nenabled = true\n[[canary.cases]]\nrole = \"support\"\nexpect = \"reject\"\n\
             event = \"{}\"\n",
            root().join("deploy/canaries/refund-ten-times.json").display()
        ),
    );
    let log = dir.join("handoff.log");
    let mut h = spawn(&cfg, &log);
    wait_log(&log, "handoff is running", Duration::from_secs(30));

    // The inbox, notifying a receiver that answers 200 to everything: the notification series.
    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_port = sink.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in sink.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    let inbox_port = handoff::sim::broker::free_port();
    let inbox_cfg = config_file(
        &dir,
        &bs,
        "prom-inbox",
        &format!(
            "[inbox]\nbind = \"127.0.0.1:{inbox_port}\"\n[[notify.receivers]]\nname = \"proof\"\n\
             kind = \"webhook\"\nurl = \"http://127.0.0.1:{sink_port}/hook\"\n\
             secret = \"0123456789abcdef\"\n"
        ),
    );
    let inbox_log = dir.join("inbox.log");
    let _inbox = Killed(
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(["inbox", "--config"])
            .arg(&inbox_cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&inbox_log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_log(
        &inbox_log,
        "caught up with the changelog",
        Duration::from_secs(30),
    );

    // Live traffic for the whole test: 200 events/s, 2% malformed, rich in triggers.
    let _gen = Killed(
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args([
                "generate",
                "--topic",
                INPUT,
                "--rate",
                "200",
                "--count",
                "20000",
                "--malformed",
                "0.02",
                "--trigger-boost",
                "5",
                "--bootstrap",
                &bs,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Simulated people answering the escalations, so the human-loop series carry real values.
    let _responders = Killed(
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args([
                "respond",
                "--bootstrap",
                &bs,
                "--delay",
                "500ms",
                "--jitter",
                "1s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Prometheus scraping handoff and the inbox every second, the rules evaluated every second.
    let prom = Prometheus::start(
        &dir,
        &[("handoff", metrics_port), ("handoff-inbox", inbox_port)],
    );

    // Canaries among the traffic, answered by the same simulated people: the canary series.
    // Sent once the people answer (they read the role topics from when they joined) and
    // Prometheus has scraped the counters at zero (an increase needs the change in its range).
    let start = Instant::now();
    while !answering(metrics_port) {
        assert!(start.elapsed() < Duration::from_secs(60), "nobody answers");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));
    let sent = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["canary", "send", "--count", "5", "--config"])
        .arg(&cfg)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "handoff canary send: {}",
        sent.status
    );

    // Collect the expressions.
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("grafana/dashboards/handoff.json")).unwrap(),
    )
    .unwrap();
    let mut must_return: Vec<String> = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            must_return.push(
                t["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$instance", ".*")
                    .replace("$role", ".*"),
            );
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            // label_values(metric, label): the metric must have series.
            let metric = q
                .trim_start_matches("label_values(")
                .split(',')
                .next()
                .unwrap();
            must_return.push(metric.to_string());
        }
    }
    let rv =
        handoff::problems::read_file(&root().join("deploy/prometheus/handoff.rules.yml")).unwrap();
    let name_re = regex::Regex::new(r"\b(handoff_[a-z0-9_]+|up)\b").unwrap();
    let mut alert_series = std::collections::BTreeSet::new();
    for g in rv["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            let expr = r["expr"].as_str().unwrap();
            if r.get("record").is_some() {
                must_return.push(expr.to_string());
                must_return.push(r["record"].as_str().unwrap().to_string());
            } else {
                for m in name_re.find_iter(expr) {
                    alert_series.insert(m.as_str().to_string());
                }
            }
        }
    }
    for s in &alert_series {
        must_return.push(if s == "up" {
            "up{job=\"handoff\"}".to_string()
        } else {
            s.clone()
        });
    }

    // Wait until every expression has data (rates need two scrapes; recording rules a cycle).
    let start = Instant::now();
    let mut empty: Vec<String>;
    loop {
        std::thread::sleep(Duration::from_secs(2));
        empty = must_return
            .iter()
            .filter(|q| !prom.query(q).iter().any(is_value))
            .cloned()
            .collect();
        if empty.is_empty() || start.elapsed() > Duration::from_secs(90) {
            break;
        }
    }
    sigterm(&h);
    let _ = wait_exit(&mut h, Duration::from_secs(30));
    assert!(
        empty.is_empty(),
        "{} of {} expressions returned no series or only NaN:\n{}",
        empty.len(),
        must_return.len(),
        empty.join("\n")
    );
    eprintln!(
        "{} expressions returned data after {:?}",
        must_return.len(),
        start.elapsed()
    );
}
