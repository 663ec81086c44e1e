//! The dashboard and the rules only use series handoff exports (or the rules record), every
//! panel has a unit and thresholds, and the dashboard has its template variables.

use handoff::event::{Level, Tier};
use handoff::matrix::Trigger;
use handoff::metrics::Metrics;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `handoff_…` or `handoff:…` name in a PromQL expression.
fn names(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"handoff[_:][a-z0-9_:]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

fn exported() -> String {
    let m = Metrics::new(&["owner".into()], &["email".into()], "rv-test");
    m.events(Level::Execute, 0, 1);
    m.trigger_events(Trigger::LowConfidence, 1);
    m.escalated(0, Tier::Warm);
    m.dead_letter("avro_decode");
    m.consumer_lag.with_label_values(&["0"]).set(1);
    // The pipeline registers its step histograms on the same registry (handoff::pipeline::steps).
    let _steps = handoff::pipeline::steps::Steps::register(m.registry());
    // `handoff inbox` exports the notification families (handoff::notify::metrics) and the
    // rubber-stamp signals (handoff::inbox::guard).
    let inbox = prometheus::Registry::new();
    let notify = handoff::notify::metrics::register(&inbox, &["pager"]).unwrap();
    notify[0].latency.observe(0.1);
    let _guard = handoff::inbox::guard::Guard::register(&inbox, Default::default(), &["owner"]);
    let mut text = Vec::new();
    prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &inbox.gather(), &mut text)
        .unwrap();
    m.render() + &String::from_utf8(text).unwrap()
}

fn rules() -> (Vec<String>, BTreeSet<String>) {
    let v =
        handoff::problems::read_file(&root().join("deploy/prometheus/handoff.rules.yml")).unwrap();
    let mut exprs = Vec::new();
    let mut recorded = BTreeSet::new();
    for g in v["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            exprs.push(r["expr"].as_str().unwrap().to_string());
            if let Some(name) = r.get("record").and_then(Value::as_str) {
                recorded.insert(name.to_string());
            }
        }
    }
    (exprs, recorded)
}

fn dashboard() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("grafana/dashboards/handoff.json")).unwrap(),
    )
    .unwrap()
}

fn check_names(exprs: &[String], recorded: &BTreeSet<String>, text: &str, whence: &str) {
    for e in exprs {
        let found = names(e);
        assert!(
            !found.is_empty() || e.contains("up{"),
            "{whence}: {e:?} uses no handoff series"
        );
        for n in found {
            if n.contains(':') {
                assert!(
                    recorded.contains(&n),
                    "{whence}: {n} is not a recording rule"
                );
                continue;
            }
            let family = n
                .trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{whence}: {n} is not exported by handoff (expression {e:?})"
            );
        }
    }
}

#[test]
fn rules_only_use_exported_series() {
    let (exprs, recorded) = rules();
    assert!(recorded.contains("handoff:escalation_rate:ratio_rate5m"));
    check_names(&exprs, &recorded, &exported(), "rules");
}

#[test]
fn dashboard_panels_use_exported_series_with_units_and_thresholds() {
    let d = dashboard();
    let (_, recorded) = rules();
    let text = exported();
    let panels = d["panels"].as_array().unwrap();
    assert!(panels.len() >= 9);
    let mut exprs = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        let defaults = &p["fieldConfig"]["defaults"];
        assert!(
            !defaults["unit"].as_str().unwrap_or("").is_empty(),
            "panel {title:?} has no unit"
        );
        assert!(
            !defaults["thresholds"]["steps"]
                .as_array()
                .unwrap()
                .is_empty(),
            "panel {title:?} has no thresholds"
        );
        for t in p["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    check_names(&exprs, &recorded, &text, "dashboard");
    let band = panels
        .iter()
        .find(|p| p["title"].as_str().unwrap().starts_with("Escalation rate"))
        .unwrap();
    let steps: Vec<f64> = band["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["value"].as_f64())
        .collect();
    assert!(
        steps.contains(&0.05) && steps.contains(&0.2),
        "the target band marks 5% and 20%: {steps:?}"
    );
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for v in ["instance", "role"] {
        assert!(vars.contains(&v), "no ${v} variable");
    }
}
