//! Writes the seed corpus of every fuzz target from real records: the shipped sample of agent
//! actions (`deploy/samples`, what `handoff generate` writes), the decisions and changelog
//! records a processor makes of them, the shipped schemas, matrices and settings files, and
//! Slack and gateway bodies as the tests send them. `fuzz/fuzz.sh` runs it first; the corpus
//! is not committed (it is made again from the sources).
//!
//! Usage: seed-corpus <repository root> <corpus dir>

use handoff::config::Settings;
use handoff::event::{AgentAction, Codec, DecisionKind, HumanDecision, SchemaKind};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::output::Topic;
use handoff::pipeline::process::{Input, Processor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [root, out] = &args[..] else {
        eprintln!("usage: seed-corpus <repository root> <corpus dir>");
        std::process::exit(2);
    };
    let codec = Codec::new(Default::default()).unwrap();
    let sample = std::fs::read_to_string(root.join("deploy/samples/agent-actions.jsonl")).unwrap();
    let actions: Vec<AgentAction> = sample
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .take(200)
        .collect();
    let mut seeds = Seeds::new(out);
    for (i, a) in actions.iter().enumerate() {
        let avro = codec.encode(SchemaKind::AgentAction, a).unwrap();
        seeds.add("action_avro", i, &avro);
        seeds.add("processor", i, &[[0u8].as_slice(), &avro].concat());
        let schema = serde_json::json!({"schema": SchemaKind::AgentAction.schema_json()});
        let mut registry = schema.to_string().into_bytes();
        registry.push(0);
        registry.extend_from_slice(&avro);
        seeds.add("registry", i, &registry);
        let json = serde_json::to_vec(a).unwrap();
        seeds.add("gateway_http", i, &json);
    }
    for (i, d) in decisions(&actions).iter().enumerate() {
        let avro = codec.encode(SchemaKind::HumanDecision, d).unwrap();
        seeds.add("decision_avro", i, &avro);
        seeds.add("processor", 1000 + i, &[[3u8].as_slice(), &avro].concat());
    }
    for (i, record) in changelog(&actions).iter().enumerate() {
        seeds.add("changelog", i, record);
    }
    for (i, text) in files(root, &["deploy/matrix.toml", "deploy/kubernetes/matrix.toml"])
        .into_iter()
        .chain([DEFAULT_MATRIX_TOML.to_string()])
        .enumerate()
    {
        seeds.add("matrix_file", i, text.as_bytes());
    }
    let settings = [
        "deploy/handoff.toml",
        "deploy/kubernetes/handoff.toml",
        "deploy/kubernetes/inbox.toml",
        "deploy/kubernetes/gateway.toml",
    ];
    for (i, text) in files(root, &settings).into_iter().enumerate() {
        seeds.add("settings_file", i, text.as_bytes());
    }
    let press = serde_json::json!({
        "type": "block_actions",
        "user": {"id": "U-OLI"},
        "team": {"id": "T0"},
        "actions": [{"action_id": "approve", "value": "esc-1"}],
        "response_url": "https://hooks.slack.com/actions/T0/1/x",
    });
    let form = format!("payload={}", handoff::escape::url_component(&press.to_string()));
    seeds.add("slack_payload", 0, format!("1800000000\nv0=00\n{form}").as_bytes());
    seeds.add("inbox_http", 0, form.as_bytes());
    seeds.add("inbox_http", 1, b"\x02\x01\x01decision=approve&comment=ok");
    seeds.add("inbox_http", 2, b"\x00\x01\x00role=owner&tier=warm&show=all&fragment=1");
    let gateway = std::fs::read(root.join("deploy/samples/gateway-action.json")).unwrap();
    seeds.add("gateway_http", 10_000, &gateway);
    eprintln!("{} seeds in {}", seeds.count, out.display());
}

struct Seeds<'a> {
    out: &'a Path,
    count: usize,
}

impl<'a> Seeds<'a> {
    fn new(out: &'a Path) -> Self {
        Seeds { out, count: 0 }
    }

    fn add(&mut self, target: &str, i: usize, bytes: &[u8]) {
        let dir = self.out.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{i:05}")), bytes).unwrap();
        self.count += 1;
    }
}

fn files(root: &Path, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| std::fs::read_to_string(root.join(n)).ok())
        .collect()
}

/// An answer of each kind to the first actions.
fn decisions(actions: &[AgentAction]) -> Vec<HumanDecision> {
    let kinds = [
        DecisionKind::Approve,
        DecisionKind::Reject,
        DecisionKind::Revise,
        DecisionKind::Acknowledge,
    ];
    actions
        .iter()
        .zip(kinds.iter().cycle())
        .take(20)
        .map(|(a, k)| HumanDecision {
            escalation_id: format!("esc-{}", a.action_id),
            action_id: a.action_id.clone(),
            session_id: a.session_id.clone(),
            role: "support".into(),
            decided_by: "ana".into(),
            decision: *k,
            comment: Some("seen".into()),
            decided_at_ms: a.timestamp_ms + 60_000,
            revised_output: (*k == DecisionKind::Revise).then(|| "revised".into()),
            redirect_role: None,
            drill: false,
            chosen_option: None,
            revised_arguments: None,
        })
        .collect()
}

/// The changelog records a processor writes for `actions`, in both formats.
fn changelog(actions: &[AgentAction]) -> Vec<Vec<u8>> {
    let m = Arc::new(Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap());
    let codec = Codec::new(Default::default()).unwrap();
    let headers = handoff::event::wire::version_headers(SchemaKind::AgentAction);
    let mut records = Vec::new();
    for format in ["binary", "json"] {
        let settings =
            Settings::from_toml_str(&format!("[pipeline]\nchangelog_format = \"{format}\"\n"))
                .unwrap();
        let mut p = Processor::new(&settings, m.clone()).unwrap();
        let mut out = Vec::new();
        for (i, a) in actions.iter().enumerate().take(60) {
            let bytes = codec.encode(SchemaKind::AgentAction, a).unwrap();
            let input = Input {
                topic: "agent.actions",
                partition: 0,
                offset: i as i64 + 1,
                key: Some(a.session_id.as_bytes()),
                payload: Some(&bytes),
                headers: &headers,
            };
            let _ = p.process(input, a.timestamp_ms, &mut out);
        }
        records.extend(
            out.into_iter()
                .filter(|o| o.topic == Topic::Changelog && !o.payload.is_empty())
                .map(|o| o.payload),
        );
    }
    records
}
