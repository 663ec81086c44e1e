//! The `handoff` binary end to end: eval, check, test-rules, generate, and the shipped sample.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn handoff() -> Command {
    Command::new(env!("CARGO_BIN_EXE_handoff"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Written from a thread: the child's output would otherwise fill its pipe while we are
    // still writing its input.
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_string();
    let writer = std::thread::spawn(move || input.write_all(text.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

fn lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handoff-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const GOOD: &str = r#"{"action_id":"a1","session_id":"s1","agent_id":"g","timestamp_ms":1798761600000,"action_type":"email.send","confidence":0.5,"request":"reply to the customer","summary":"drafted","reversible":true,"affects_others":false}"#;

#[test]
fn eval_keeps_going_past_bad_lines_and_fails_at_the_end() {
    let second = GOOD.replace("a1", "a2");
    let input = format!(
        "{GOOD}\n{{not json\n\n{}\n{second}\n",
        GOOD.replace("0.5", "7.5")
    );
    let out = run_with_stdin(
        {
            let mut c = handoff();
            c.arg("eval");
            c
        },
        &input,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "bad lines make the exit code non-zero"
    );
    let v = lines(&out);
    assert_eq!(v.len(), 4, "one output line per non-blank input line");
    assert_eq!(v[0]["action_id"], "a1");
    assert_eq!(v[0]["level"], "ask_first");
    assert_eq!(v[0]["triggers"], serde_json::json!(["low_confidence"]));
    assert_eq!(v[1]["line"], 2);
    assert!(v[1]["error"].as_str().unwrap().contains("JSON"));
    assert_eq!(v[2]["line"], 4);
    let err = v[2]["error"].as_str().unwrap();
    assert!(err.contains("`confidence`") && err.contains("7.5"), "{err}");
    // Session state carries across lines, skipping the bad ones: a2 is the 2nd low turn of s1.
    assert_eq!(v[3]["action_id"], "a2");
    assert_eq!(
        v[3]["triggers"],
        serde_json::json!(["low_confidence", "consecutive_low_confidence"])
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2:") && stderr.contains("line 4:"),
        "{stderr}"
    );
}

#[test]
fn eval_output_has_the_promised_fields_and_context_packages() {
    let event = GOOD.replace(
        r#""request":"reply to the customer""#,
        r#""request":"refund to jane@example.com, account NL91ABNA0417164300","user_message":"I want to talk to a human","customer":{"id":"c1","tier":"vip","prior_complaints":3}"#,
    );
    let out = run_with_stdin(
        {
            let mut c = handoff();
            c.arg("eval");
            c
        },
        &event,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = &lines(&out)[0];
    for key in [
        "action_id",
        "level",
        "triggers",
        "roles",
        "tier",
        "rule_version",
        "verdict",
        "escalations",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["tier"], "immediate");
    assert!(v["rule_version"].as_str().unwrap().starts_with("rv-"));
    let escs = v["escalations"].as_array().unwrap();
    assert_eq!(escs.len(), v["roles"].as_array().unwrap().len());
    let support = escs.iter().find(|e| e["role"] == "support").unwrap();
    let ctx = &support["context"];
    assert_eq!(ctx["view"], "customer");
    assert!(ctx["retention_risk"].as_bool().unwrap());
    let req = ctx["request"].as_str().unwrap();
    assert!(
        !req.contains("NL91ABNA0417164300"),
        "support must not see the account: {req}"
    );
    assert!(
        req.contains("jane@example.com"),
        "support sees the customer's e-mail: {req}"
    );
    assert!(support["escalation_id"]
        .as_str()
        .unwrap()
        .starts_with("esc-"));
    assert!(support["deadline_ms"].as_i64().unwrap() > support["created_at_ms"].as_i64().unwrap());
    assert_eq!(v["verdict"]["outcome"], "await_human");
    assert_eq!(v["verdict"]["final"], false);
}

#[test]
fn eval_on_the_shipped_sample_covers_every_trigger() {
    let out = handoff()
        .args(["eval", "--events"])
        .arg(root().join("deploy/samples/agent-actions.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = lines(&out);
    assert!(v.len() >= 300, "a few hundred events, got {}", v.len());
    let mut seen = std::collections::BTreeSet::new();
    for l in &v {
        for t in l["triggers"].as_array().unwrap() {
            seen.insert(t.as_str().unwrap().to_string());
        }
    }
    for t in handoff::matrix::Trigger::ALL {
        assert!(seen.contains(t.as_str()), "the sample never fires {t}");
    }
}

#[test]
fn the_sample_is_what_generate_writes() {
    let out = handoff()
        .args([
            "generate",
            "--count",
            "400",
            "--seed",
            "2",
            "--trigger-boost",
            "8",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let shipped = std::fs::read(root().join("deploy/samples/agent-actions.jsonl")).unwrap();
    assert!(
        out.stdout == shipped,
        "deploy/samples/agent-actions.jsonl is stale: regenerate it with \
         `handoff generate --count 400 --seed 2 --trigger-boost 8`"
    );
}

#[test]
fn generate_is_deterministic_and_can_corrupt_records() {
    let run = |seed: &str| {
        handoff()
            .args([
                "generate",
                "--count",
                "300",
                "--seed",
                seed,
                "--malformed",
                "0.2",
            ])
            .output()
            .unwrap()
            .stdout
    };
    let a = run("5");
    assert_eq!(a, run("5"));
    assert_ne!(a, run("6"));
    let input = String::from_utf8(a).unwrap();
    let out = run_with_stdin(
        {
            let mut c = handoff();
            c.arg("eval");
            c
        },
        &input,
    );
    let v = lines(&out);
    let bad = v.iter().filter(|l| l.get("error").is_some()).count();
    assert!(
        (30..=90).contains(&bad),
        "about 20% of 300 corrupted, got {bad}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn check_prints_a_summary_or_every_error() {
    let out = handoff().arg("check").output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "rule version rv-",
        "execute_log",
        "anomaly",
        "roles:",
        "compliance",
    ] {
        assert!(s.contains(needle), "summary lacks {needle}:\n{s}");
    }
    let bad = tmp(
        "bad.toml",
        "[[levels]]\npattern = \"x.*\"\nlevel = \"sometimes\"\n[tiers.warm]\nack_within = \"0s\"\n",
    );
    let out = handoff()
        .args(["check", "--matrix"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("levels[0].level") && e.contains("sometimes"),
        "{e}"
    );
    assert!(e.contains("tiers.warm.ack_within"), "{e}");
}

#[test]
fn test_rules_passes_the_shipped_cases() {
    let out = handoff()
        .arg("test-rules")
        .arg(root().join("tests/rules/default-matrix.yaml"))
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{s}");
    assert!(s.contains("SUCCESS (15 cases)"), "{s}");
}

#[test]
fn test_rules_reports_each_failure_with_a_diff() {
    // The same cases against a matrix with a lower confidence gate: the streak cases break.
    let lax = std::fs::read_to_string(root().join("deploy/matrix.toml"))
        .unwrap()
        .replace("threshold = 0.70", "threshold = 0.40");
    let m = tmp("lax.toml", &lax);
    let out = handoff()
        .arg("test-rules")
        .arg(root().join("tests/rules/default-matrix.yaml"))
        .arg("--matrix")
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("FAILED: 2 of 15 cases"), "{s}");
    assert!(
        s.contains("case \"two unsure turns in a row reach support immediately\" (cases[4])"),
        "{s}"
    );
    assert!(
        s.contains("level: expected ask_first, got execute_log"),
        "{s}"
    );
    assert!(
        s.contains("missing consecutive_low_confidence, low_confidence"),
        "{s}"
    );
}

#[test]
fn test_rules_names_a_bad_event_in_a_case() {
    let f = tmp(
        "cases.yaml",
        "cases:\n  - name: broken\n    events: [{ action_id: x, confidence: 2 }]\n    expect: { level: execute }\n",
    );
    let out = handoff().arg("test-rules").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("events[0]"), "{s}");
    let _ = Path::new(&f);
}

#[test]
fn check_shows_each_roles_escalation_chain() {
    let out = handoff().arg("check").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |role: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{role} ")))
            .unwrap_or_else(|| panic!("no line for {role} in:\n{text}"))
            .to_string()
    };
    assert!(line("support").ends_with("then support_l2"), "{text}");
    assert!(
        line("support_l2").ends_with("then crisis_manager"),
        "{text}"
    );
    assert!(
        line("crisis_manager").ends_with("then - (end of chain)"),
        "{text}"
    );
    assert!(
        text.contains(
            "fatigue: group within 10m; review digest every 1m; sample 0.0% of execute_log; \
             rate limits: none"
        ),
        "{text}"
    );
}

#[test]
fn a_bad_escalation_chain_is_refused_with_the_loop_named() {
    let text = handoff::matrix::DEFAULT_MATRIX_TOML.replace(
        "[roles.crisis_manager]\n",
        "[roles.crisis_manager]\nescalate_to = \"support\"\n",
    );
    let path = tmp("loop.toml", &text);
    let out = handoff()
        .args(["check", "--matrix"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("roles.crisis_manager.escalate_to")
            && err.contains("crisis_manager → support → support_l2 → crisis_manager"),
        "{err}"
    );
}

#[test]
fn respond_refuses_a_bad_mix_naming_it() {
    let out = handoff()
        .args(["respond", "--mix", "approve=3,maybe=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--mix") && err.contains("\"maybe\""), "{err}");
}

/// (level, triggers, roles) per action id, from `handoff eval` with a matrix.
fn eval_decisions(matrix: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    let out = handoff()
        .args(["eval", "--matrix"])
        .arg(matrix)
        .arg("--events")
        .arg(root().join("deploy/samples/agent-actions.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    lines(&out)
        .into_iter()
        .map(|l| {
            (
                l["action_id"].as_str().unwrap().to_string(),
                serde_json::json!([l["level"], l["triggers"], l["roles"]]),
            )
        })
        .collect()
}

/// `handoff diff --old A --new B --events <shipped sample>` with extra arguments.
fn diff(old: &Path, new: &Path, extra: &[&str]) -> Output {
    handoff()
        .arg("diff")
        .args(extra)
        .arg("--old")
        .arg(old)
        .arg("--new")
        .arg(new)
        .arg("--events")
        .arg(root().join("deploy/samples/agent-actions.jsonl"))
        .output()
        .unwrap()
}

#[test]
fn diff_reports_exactly_the_events_whose_decision_changed() {
    let shipped = handoff::matrix::DEFAULT_MATRIX_TOML;
    let old = tmp("diff-old.toml", shipped);
    let changed = shipped.replace("threshold = 0.70\n", "threshold = 0.85\n");
    assert_ne!(changed, shipped);
    let new = tmp("diff-new.toml", &changed);
    // Independently: eval with each matrix, compare line by line.
    let (a, b) = (eval_decisions(&old), eval_decisions(&new));
    let want: BTreeSet<String> = a
        .iter()
        .filter(|(id, d)| b[*id] != **d)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        want.len() >= 5,
        "the threshold change must matter: {want:?}"
    );
    let out = diff(&old, &new, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: BTreeSet<String> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    assert_eq!(report["changed"], want.len());
    assert_eq!(report["events"], a.len());
    // A stricter gate only adds escalations.
    assert!(report["needs_human"]["new"].as_u64() >= report["needs_human"]["old"].as_u64());
    assert!(report["relaxed_hard_stops"].as_array().unwrap().is_empty());
    // The Markdown form says the same.
    let md = diff(&old, &new, &[]);
    let text = String::from_utf8_lossy(&md.stdout);
    assert!(
        text.contains(&format!("**{} decisions change**", want.len())),
        "{text}"
    );
    assert!(text.contains("| low_confidence |"), "{text}");
}

#[test]
fn diff_fails_when_a_hard_stop_would_be_relaxed_unless_allowed() {
    let shipped = handoff::matrix::DEFAULT_MATRIX_TOML;
    let old = tmp("relax-old.toml", shipped);
    let relaxed = shipped.replace(
        "then = { level = \"hard_stop\", roles = [\"compliance\"], tier = \"immediate\" }",
        "then = { level = \"ask_first\", roles = [\"compliance\"], tier = \"immediate\" }",
    );
    assert_ne!(relaxed, shipped);
    let new = tmp("relax-new.toml", &relaxed);
    let run = |allow: bool| diff(&old, &new, if allow { &["--allow-relax"] } else { &[] });
    let refused = run(false);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("hard_stop decision(s) would be relaxed"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&refused.stdout).contains("hard_stop → ask_first"));
    assert!(run(true).status.success());
}

/// A config file for `handoff run` against a broker address where nothing listens, giving up
/// only after a long `connect_timeout`, with `extra` appended (e.g. a `[metrics]` section).
fn unreachable_config(name: &str, extra: &str) -> PathBuf {
    tmp(
        name,
        &format!(
            "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n\
             [pipeline]\nconnect_timeout = \"60s\"\n{extra}"
        ),
    )
}

/// Waits up to `within` for `child` to exit; kills it and panics if it does not.
fn exit_within(mut child: std::process::Child, within: std::time::Duration) -> Output {
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > within {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {within:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `handoff run --config cfg` with its output captured.
fn spawn_run(cfg: &Path) -> std::process::Child {
    handoff()
        .args(["run", "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sigterm_during_start_up_stops_run_cleanly() {
    use std::os::unix::process::ExitStatusExt;
    let cfg = unreachable_config("sigterm.toml", "[metrics]\nenabled = false\n");
    let child = spawn_run(&cfg);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = exit_within(child, std::time::Duration::from_secs(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        None,
        "killed by the signal instead of stopping: {err}"
    );
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("stopped before start-up finished"), "{err}");
}

#[test]
fn run_refuses_to_start_when_the_metrics_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let cfg = unreachable_config(
        "metrics-taken.toml",
        &format!("[metrics]\nbind = \"{addr}\"\n"),
    );
    let child = spawn_run(&cfg);
    let out = exit_within(child, std::time::Duration::from_secs(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&addr), "the address is not named: {err}");
    drop(taken);
}

/// The exit codes as `handoff --help` lists them: (code, meaning), each meaning on one line.
fn exit_codes_in_help() -> Vec<(String, String)> {
    let out = handoff().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let section = help
        .split("Exit codes:")
        .nth(1)
        .unwrap_or_else(|| panic!("no exit codes in --help:\n{help}"));
    let mut codes: Vec<(String, String)> = Vec::new();
    for line in section.lines().filter(|l| !l.trim().is_empty()) {
        let text = line.trim();
        match text.split_once("  ") {
            Some((code, meaning)) if code.parse::<u8>().is_ok() => {
                codes.push((code.to_string(), meaning.trim().to_string()))
            }
            _ => {
                let last = &mut codes.last_mut().expect("a code first").1;
                last.push(' ');
                last.push_str(text);
            }
        }
    }
    codes
}

#[test]
fn the_exit_codes_read_the_same_in_help_readme_and_code() {
    let codes = exit_codes_in_help();
    let numbers: Vec<&str> = codes.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(numbers, ["0", "1", "2", "3"]);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let header: String = std::fs::read_to_string(root().join("src/main.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join(" ");
    let header = header.split_whitespace().collect::<Vec<_>>().join(" ");
    for (code, meaning) in &codes {
        let row = format!("| {code} | {meaning} |");
        assert!(readme.contains(&row), "README lacks the row {row}");
        let line = format!("{code} {meaning}");
        assert!(
            header.contains(&line),
            "src/main.rs's header lacks {line:?}"
        );
    }
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let missing = root().join("no/such/matrix.toml");
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec!["eval".into(), "--matrix".into(), missing.clone().into()],
            "matrix.toml",
        ),
        (
            vec!["check".into(), "--matrix".into(), missing.clone().into()],
            "matrix.toml",
        ),
        (
            vec!["gameday".into(), "no-such-scenario.toml".into()],
            "no-such-scenario.toml",
        ),
        (
            vec!["generate".into(), "--malformed".into(), "2".into()],
            "--malformed",
        ),
        (
            vec!["respond".into(), "--no-show".into(), "1.5".into()],
            "--no-show",
        ),
        (
            vec!["respond".into(), "--mix".into(), "approve=3,maybe=1".into()],
            "--mix",
        ),
        (
            vec!["replay".into(), "--config".into(), missing.clone().into()],
            "matrix.toml",
        ),
        (
            vec!["run".into(), "--bootstrap".into(), "nocolon".into()],
            "nocolon",
        ),
    ];
    for (args, needle) in cases {
        let out = handoff().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_bad_inbox_config_is_refused_at_start_up_with_every_problem_listed() {
    let dir = std::env::temp_dir().join(format!("handoff-inbox-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("inbox.toml");
    std::fs::write(
        &f,
        "[inbox]\nbind = \"nowhere\"\npublic_url = \"ftp://inbox\"\nauth = \"proxy\"\n\
         trusted_proxies = [\"10.0.0.300\"]\ncookie_key = \"env:1BAD\"\n\
         [[inbox.people]]\nname = \"ana\"\nroles = []\ntoken_sha256 = \"abc\"\n\
         [[inbox.people]]\nname = \"ana\"\nroles = [\"support\"]\n",
    )
    .unwrap();
    // The inbox refuses to start (exit 2); what it says.
    let refused = || {
        let out = handoff()
            .args(["inbox", "--config"])
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{err}");
        err
    };
    let err = refused();
    for needle in [
        "inbox.bind",
        "\"nowhere\"",
        "inbox.public_url",
        "inbox.trusted_proxies[0]",
        "inbox.cookie_key",
        "inbox.people[0].roles",
        "inbox.people[0].token_sha256",
        "inbox.people[1].name: \"ana\" is listed twice",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    // Roles are checked against the matrix once the settings are valid.
    std::fs::write(
        &f,
        format!(
            "[inbox]\n[[inbox.people]]\nname = \"ana\"\nroles = [\"support\", \"astrologer\"]\n\
             token_sha256 = \"{}\"\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let err = refused();
    assert!(
        err.contains("inbox.people[0].roles[1]") && err.contains("\"astrologer\" is not a role"),
        "{err}"
    );
}

#[test]
fn token_prints_a_token_and_its_configuration_line() {
    let out = handoff().arg("token").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let token = text.lines().next().unwrap().rsplit(' ').next().unwrap();
    let hash = handoff::inbox::auth::token_sha256(token);
    assert!(
        text.contains(&format!("token_sha256 = \"{hash}\"")),
        "{text}"
    );
    assert_eq!(token.len(), 64);
}

#[test]
fn token_agent_prints_a_gateway_key_and_its_configuration_line() {
    let out = handoff().args(["token", "--agent"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let key = text.lines().next().unwrap().rsplit(' ').next().unwrap();
    let hash = handoff::inbox::auth::token_sha256(key);
    assert!(text.contains(&format!("key_sha256 = \"{hash}\"")), "{text}");
    assert!(text.contains("[[gateway.agents]]"), "{text}");
}

#[test]
fn a_gateway_config_with_problems_is_refused_naming_every_setting() {
    let dir = std::env::temp_dir().join(format!("handoff-cli-gw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "[gateway]\nbind = \"here\"\n[[gateway.agents]]\nname = \"bots\"\nkey_sha256 = \"abc\"\nagent_ids = []\n",
    )
    .unwrap();
    let out = handoff()
        .args(["gateway", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "gateway.bind",
        "gateway.agents[0].key_sha256",
        "gateway.agents[0].agent_ids",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

#[test]
fn keygen_writes_a_private_key_for_its_owner_and_prints_settings_that_load() {
    let dir = std::env::temp_dir().join(format!("handoff-keygen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("inbox.pem");
    let run = |args: &[&str], path: &Path| handoff().args(args).arg(path).output().unwrap();
    let said = |o: &Output| {
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
    };
    let out = run(&["keygen", "--id", "inbox-2026-12", "--out"], &key);
    assert!(out.status.success(), "{}", said(&out));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(
        !printed.contains("PRIVATE KEY"),
        "the private key is never printed"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // What it prints is the configuration of a writer and of a processor trusting it.
    let toml: String = printed.lines().skip(1).collect::<Vec<_>>().join("\n");
    let config = dir.join("handoff.toml");
    std::fs::write(&config, &toml).unwrap();
    let check = run(&["check", "--config"], &config);
    assert!(check.status.success(), "{}", said(&check));
    assert!(said(&check).contains("\"inbox-2026-12\""));
    // An existing key is never replaced; a bad id is named.
    let again = run(&["keygen", "--id", "other", "--out"], &key);
    assert_eq!(again.status.code(), Some(2));
    assert!(said(&again).contains("--out"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);
    let bad = run(
        &["keygen", "--id", "has space", "--out"],
        &dir.join("x.pem"),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(said(&bad).contains("--id \"has space\""));
}

#[test]
fn audit_verify_takes_keys_over_plain_http_only_from_this_machine() {
    let pack = tmp("pack.jsonl", "");
    let out = handoff()
        .args([
            "audit",
            "verify",
            "--jwks",
            "http://example.com/.well-known/jwks.json",
        ])
        .arg(&pack)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use https://"));
}

/// Every subcommand that reads the settings, run with a secret in every secret setting (written,
/// from a file, from the environment) and debug logging, against a broker that is not there:
/// none of the secrets appears in anything it prints, whatever it fails on.
#[test]
fn no_subcommand_ever_prints_a_secret() {
    const CANARIES: [&str; 6] = [
        "canary-kafka-pw-7Hq2",
        "canary-cookie-key-9Wm4-0123456789abcdef",
        "canary-slack-secret-3Rt8",
        "canary-proxy-secret-5Kd1",
        "canary-reload-token-6Ux3",
        "canary-old-cookie-key-2Zp7-0123456789abcd",
    ];
    let dir = std::env::temp_dir().join(format!("handoff-canaries-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{text}\n")).unwrap();
        p.display().to_string()
    };
    let key = dir.join("signing.pem");
    let _ = std::fs::remove_file(&key);
    let made = handoff()
        .args([
            "keygen",
            "--id",
            "canary-key",
            "--out",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let pem = std::fs::read_to_string(&key).unwrap();
    let pem_body: Vec<String> = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect();
    let config = file(
        "handoff.toml",
        &format!(
            r#"[kafka]
bootstrap_servers = "127.0.0.1:1"
[kafka.common]
"security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "handoff"
"sasl.password" = "{kafka}"
[pipeline]
connect_timeout = "1s"
[log]
level = "trace"
[metrics]
bind = "127.0.0.1:0"
enable_reload = true
reload_token = "env:CANARY_RELOAD_TOKEN"
[inbox]
bind = "127.0.0.1:0"
cookie_key = "file:{cookie}"
previous_cookie_keys = ["{old}"]
slack_signing_secret = "{slack}"
slack_team_id = "T0"
[gateway]
bind = "127.0.0.1:0"
[trust]
signing_key = "file:{key}"
signing_key_id = "canary-key"
"#,
            kafka = CANARIES[0],
            cookie = file("cookie", CANARIES[1]),
            slack = CANARIES[2],
            old = CANARIES[5],
            key = key.display(),
        ),
    );
    let matrix = root().join("deploy/matrix.toml");
    let m = matrix.to_str().unwrap();
    let (pack, suggested) = (dir.join("pack"), dir.join("suggest"));
    let (pack, suggested) = (pack.to_str().unwrap(), suggested.to_str().unwrap());
    let runs: &[&[&str]] = &[
        &["check", "--config", &config],
        &["run", "--config", &config],
        &["inbox", "--config", &config],
        &["gateway", "--config", &config],
        &["respond", "--config", &config],
        &[
            "generate",
            "--config",
            &config,
            "--topic",
            "agent.actions",
            "--count",
            "5",
        ],
        &["replay", "--config", &config],
        &["tail", "--config", &config, "agent.verdicts"],
        &["canary", "send", "--config", &config, "--count", "1"],
        &["canary", "report", "--config", &config],
        &["audit", "export", "--config", &config, "--out", pack],
        &["suggest", "--config", &config, "--out", suggested],
        &["diff", "--config", &config, "--old", m, "--new", m],
    ];
    for args in runs {
        let out = Command::new("timeout")
            .args(["-s", "INT", "-k", "5", "20", env!("CARGO_BIN_EXE_handoff")])
            .args(*args)
            .env("CANARY_RELOAD_TOKEN", CANARIES[4])
            .env("HANDOFF_INBOX__PROXY_SECRET", CANARIES[3])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.trim().is_empty(), "{args:?} said nothing");
        // Past the settings (which are all valid): each went on to work, or to the broker.
        assert!(!text.contains("problem(s)"), "{args:?}:\n{text}");
        for secret in CANARIES
            .iter()
            .map(|c| c.to_string())
            .chain(pem_body.clone())
        {
            assert!(
                !text.contains(&secret),
                "{args:?} printed a secret ({secret}):\n{text}"
            );
        }
    }
}
