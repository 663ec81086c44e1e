//! The dashboard's Notifications panel and the HandoffNotificationsFailing alert, as shipped,
//! against a real Prometheus scraping a running engine: every expression returns data, and the
//! alert holds the failing receivers pending (and only them).

use super::fixtures::*;
use super::receivers::{Mode, Sink};
use crate::common::prometheus::{is_value, Prometheus};
use handoff::config::notify::ReceiverKind;
use handoff::event::Tier;
use handoff::notify::ledger::MemoryLedger;
use handoff::notify::{Engine, Notice, ReceiverSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
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

/// Receivers (by label) with a real number in a query's result.
fn receivers_with_values(result: &[serde_json::Value]) -> Vec<String> {
    let mut r: Vec<String> = result
        .iter()
        .filter(|x| is_value(x))
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
    let prom = Prometheus::start(&dir, &[("handoff", metrics_port)]);

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
                let got = receivers_with_values(&prom.query(q));
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
