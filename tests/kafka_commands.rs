//! Every command that talks to Kafka meets a wrong broker the same way: an error within
//! `connect_timeout` naming the address, a few lines, exit 3. And `handoff respond` (the
//! simulated people) refuses a decisions topic that does not exist instead of answering into
//! it, counts a decision answered once the broker acknowledged it, and reads the role topics
//! under `topics.role_prefix`.

mod common;

use common::kafka::*;
use common::run::Run;
use handoff::event::{Codec, Escalation, HumanDecision, SchemaKind};
use handoff::matrix::Matrix;
use handoff::pipeline::process::Processor;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Runs `handoff args…` until it exits (at most `limit`): exit code, standard error, time.
fn exits(args: &[&str], limit: Duration) -> (Option<i32>, String, Duration) {
    let (out, took) = run_within(args, limit);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code(), err, took)
}

#[test]
fn a_wrong_broker_is_the_same_error_in_every_command_naming_the_address() {
    let dir = tmpdir("wrong-broker");
    let port = handoff::sim::broker::free_port();
    let bs = format!("127.0.0.1:{port}");
    let cfg = dir.join("wrong.toml");
    std::fs::write(
        &cfg,
        format!("[kafka]\nbootstrap_servers = \"{bs}\"\n[pipeline]\nconnect_timeout = \"3s\"\n"),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "").unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["respond", "--config", c],
        vec!["replay", "--config", c],
        vec![
            "diff",
            "--old",
            "deploy/matrix.toml",
            "--new",
            "deploy/matrix.toml",
            "--topic",
            "agent.actions",
            "--config",
            c,
        ],
        vec!["audit", "export", "--from", "0", "--to", "1", "--config", c],
        vec!["suggest", "--from", "0", "--to", "1", "--config", c],
        vec!["canary", "report", "--config", c],
        vec!["tail", "agent.verdicts", "--config", c],
        vec![
            "generate",
            "--topic",
            "agent.actions",
            "--count",
            "1",
            "--config",
            c,
        ],
    ];
    for args in commands {
        let (code, err, took) = exits(&args, Duration::from_secs(60));
        assert_eq!(code, Some(3), "{args:?}: {err}");
        assert!(
            err.contains(&format!("cannot reach Kafka at {bs}")),
            "{args:?}: {err}"
        );
        assert!(
            err.lines().count() < 40,
            "{args:?}: {} lines",
            err.lines().count()
        );
        eprintln!("{}: gave up after {took:.1?}", args[0]);
    }
}

/// A refund's escalation to support, as the processor makes it.
fn escalation(id: &str) -> Escalation {
    let m = Arc::new(Matrix::default_matrix().unwrap());
    let mut run = Run::new(Processor::new(&Default::default(), m).unwrap());
    let mut e = common::base_event();
    e.action_id = id.into();
    e.session_id = format!("sess-{id}");
    e.action_type = "refund.issue".into();
    e.amount = Some(30.0);
    run.event(&e, handoff::clock::SystemClock::now());
    run.escalations("escalations.support").remove(0)
}

#[test]
fn answers_go_only_to_the_prefixed_role_topics_and_count_when_delivered() {
    let _serial = serial();
    let broker = broker();
    let bs = broker.bootstrap();
    let dir = tmpdir("respond-prefix");
    let extra = "[topics]\nrole_prefix = \"drill.\"\ndecisions = \"drill.human.decisions\"\n";
    let cfg = config_file(&dir, &bs, "respond", extra);
    // No decisions topic yet: refused, not answered into.
    let (code, err, _) = exits(
        &["respond", "--config", cfg.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("topic \"drill.human.decisions\" does not exist"),
        "{err}"
    );
    create_topics(
        &bs,
        &[
            "drill.human.decisions",
            "human.decisions",
            "drill.escalations.support",
            "escalations.support",
        ],
    );
    let codec = Codec::new(Default::default()).unwrap();
    for (topic, id) in [
        ("escalations.support", "act-real"),
        ("drill.escalations.support", "act-drill"),
    ] {
        let x = escalation(id);
        let bytes = codec.encode(SchemaKind::Escalation, &x).unwrap();
        produce_with_headers(
            &bs,
            topic,
            x.session_id.as_bytes(),
            &bytes,
            // As the processor writes them: the kind, and the schema version.
            &[
                ("handoff.kind", "escalation"),
                ("handoff.schema.version", "2"),
            ],
        );
    }
    let mut people = Command::new(handoff_bin())
        .args(["respond", "--config"])
        .arg(&cfg)
        .args(["--delay", "0s", "--jitter", "0s", "--no-show", "0"])
        .args(["--mix", "approve=1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut drill = Reader::new(&bs, "drill.human.decisions");
    drill.wait_for(1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    sigterm(&people);
    let status = wait_exit(&mut people, Duration::from_secs(30));
    let mut err = String::new();
    use std::io::Read;
    people
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    let answered: Vec<HumanDecision> = drill
        .settle(Duration::from_secs(1))
        .iter()
        .map(|r| codec.decode(SchemaKind::HumanDecision, &r.payload).unwrap())
        .collect();
    let ids: Vec<&str> = answered.iter().map(|d| d.action_id.as_str()).collect();
    assert_eq!(ids, ["act-drill"], "only the drill role topic was answered");
    assert!(read_all(&bs, "human.decisions").is_empty());
    assert!(
        err.contains("escalations read 1, answered 1 (delivered), not delivered 0"),
        "{err}"
    );
}
