//! The dashboard's Notifications panel and the HandoffNotificationsFailing alert, as shipped,
//! against a real Prometheus scraping a running engine: every expression returns data, and the
//! alert holds the failing receivers pending (and only them).

use super::fixtures::*;
use super::receivers::{Mode, Sink};
use handoff::config::notify::ReceiverKind;
use handoff::event::Tier;
use handoff::notify::ledger::MemoryLedger;
use handoff::notify::{Engine, Notice, ReceiverSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let (status, body) = crate::common::http_get(port, &format!("/api/v1/query?query={enc}"));
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
    let _g = crate::common::kafka::serial();
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

    let dir = crate::common::kafka::tmpdir("notify-prom");
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
