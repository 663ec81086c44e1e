//! The agents' clients against a live broker, `handoff run` and `handoff gateway`: the Python
//! client's tests and its adapters' (clients/python/tests, pytest; the OpenAI Agents SDK and
//! LangGraph with scripted models, the MCP gate between the MCP SDK's client and a real server) with the gateway's URL, two agents' keys and the broker's
//! address in their environment; a person's answers are written to human.decisions as the
//! inbox writes them; then the TypeScript client's tests (clients/typescript, node:test) against
//! the same gateway.

mod common;

use common::gateway::{gateway_section, receipts_section, spawn_gateway, wait_ready};
use common::kafka::*;
use handoff::sim::broker::free_port;
use std::process::Command;
use std::time::Duration;

#[test]
fn the_python_client_and_its_adapters_decide_wait_and_resume_over_the_gateway_and_over_kafka() {
    let venv = common::python::venv("python-client", "clients/python/requirements-dev.txt");
    let _serial = serial();
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let dir = tmpdir("clients-python");
    let port = free_port();
    let extra =
        matrix_where_no_confidence_passes(&dir) + &gateway_section(port) + &receipts_section();
    let config = config_file(&dir, &bootstrap, "clients", &extra);
    let mut run = spawn(&config, &dir.join("run.log"));
    let mut gateway = spawn_gateway(&config, &dir.join("gateway.log"));
    wait_ready(port, Duration::from_secs(60));
    let client = common::python::root().join("clients/python");
    let out = Command::new(venv.join("bin/python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(&client)
        .env("PYTHONPATH", client.join("src"))
        .env("HANDOFF_GATEWAY_URL", format!("http://127.0.0.1:{port}"))
        .env("HANDOFF_KEY_A", "key-a")
        .env("HANDOFF_KEY_B", "key-b")
        .env("HANDOFF_BOOTSTRAP", &bootstrap)
        .output()
        .expect("pytest runs");
    let said = String::from_utf8_lossy(&out.stdout);
    let typescript = typescript_tests(&venv, port, &bootstrap);
    sigterm(&gateway);
    sigterm(&run);
    let _ = wait_exit(&mut gateway, Duration::from_secs(20));
    let _ = wait_exit(&mut run, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "pytest failed:\n{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = said.lines().last().unwrap_or_default();
    eprintln!("pytest: {summary}");
    let passed: usize = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 35, "every client and adapter test ran: {said}");
    assert!(!said.contains("skipped"), "no test is skipped: {said}");
    let (ok, report) = typescript;
    assert!(ok, "the TypeScript client's tests failed:\n{report}");
    assert!(report.contains("# fail 0"), "{report}");
    assert!(report.contains("# skipped 0"), "{report}");
}

/// The TypeScript client: installed from its lock (`npm ci`, again when the lock changes),
/// compiled with strict tsc, its node:test suite run against the same gateway; a person answers
/// through the Python client's tests' `person.py`. Returns whether it passed, and its report.
fn typescript_tests(venv: &std::path::Path, port: u16, bootstrap: &str) -> (bool, String) {
    let dir = common::python::root().join("clients/typescript");
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if !installed.exists() || modified(&dir.join("package-lock.json")) > modified(&installed) {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm runs (Node 20)")
            .success();
        assert!(ok, "npm ci in clients/typescript (registry reachable?)");
    }
    let tsc = Command::new("node")
        .args(["node_modules/typescript/bin/tsc", "-p", "."])
        .current_dir(&dir)
        .output()
        .expect("tsc runs");
    if !tsc.status.success() {
        return (false, String::from_utf8_lossy(&tsc.stdout).into_owned());
    }
    let mut suites: Vec<String> = std::fs::read_dir(dir.join("dist/test"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".test.js"))
        .map(|n| format!("dist/test/{n}"))
        .collect();
    suites.sort();
    let out = Command::new("node")
        .args(["--test", "--test-reporter=tap"])
        .args(&suites)
        .current_dir(&dir)
        .env(
            "PYTHONPATH",
            common::python::root().join("clients/python/src"),
        )
        .env("HANDOFF_GATEWAY_URL", format!("http://127.0.0.1:{port}"))
        .env("HANDOFF_KEY_A", "key-a")
        .env("HANDOFF_BOOTSTRAP", bootstrap)
        .env("HANDOFF_PYTHON", venv.join("bin/python"))
        .env(
            "HANDOFF_PERSON",
            common::python::root().join("clients/python/tests/person.py"),
        )
        .output()
        .expect("node runs");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let totals: Vec<&str> = report.lines().filter(|l| l.starts_with("# ")).collect();
    eprintln!("node --test: {}", totals.join("; "));
    (out.status.success(), report)
}
