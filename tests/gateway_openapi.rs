//! The gateway against the OpenAPI document it serves, by schemathesis (PyPI): generated and
//! mutated requests to every operation, with an agent's key; every answer must match the
//! document (status codes, content types, bodies) and the key must be enforced. The one rule
//! JSON Schema cannot state (tool arguments are JSON as text) is in tests/schemathesis_hooks.py.

mod common;

use common::gateway::Gate;
use handoff::config::GatewaySettings;
use std::process::Command;
use std::time::Duration;

#[test]
fn every_answer_of_the_gateway_matches_its_openapi_document() {
    let venv = common::python::venv("schemathesis", "tests/requirements-schemathesis.txt");
    // Long polls shortened: generated waits would otherwise hold each request a minute.
    // The document's example is the demo's sample action, by `demo-agent`: key-a may act as it.
    let mut agents = common::gateway::agents();
    agents[0].agent_ids.push("demo-agent".into());
    let g = Gate::new(GatewaySettings {
        max_wait: Duration::from_millis(200),
        agents,
        ..GatewaySettings::default()
    });
    let base = format!("http://127.0.0.1:{}", g.port);
    let out = Command::new(venv.join("bin/st"))
        .args(["run", &format!("{base}/v1/openapi.json"), "--url", &base])
        .args(["--header", "Authorization: Bearer key-a"])
        // The event stream never ends by itself: tests/gateway.rs covers it.
        .args(["--exclude-operation-id", "followSession"])
        .args(["--checks", "all", "--max-examples", "40", "--workers", "2"])
        .args(["--request-timeout", "10", "--generation-deterministic"])
        .env(
            "SCHEMATHESIS_HOOKS",
            common::python::root().join("tests/schemathesis_hooks.py"),
        )
        .output()
        .expect("schemathesis runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accepted = g.submitted.actions.lock().unwrap().len();
    assert!(accepted > 0, "the document's example was accepted: {said}");
}
