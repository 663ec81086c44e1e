//! Replay and drills against a real broker (tansu): a replayed topic decided by a drill
//! processor gives the same verdicts as the original run, and nothing of a drill reaches a
//! real topic.

mod common;

use common::kafka::*;
use handoff::event::{Codec, SchemaKind, Verdict};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

type Key = (String, Vec<String>, Vec<String>, Vec<String>);

fn keyed(vs: &[Verdict]) -> BTreeMap<String, Key> {
    vs.iter()
        .map(|v| {
            (
                v.action_id.clone(),
                (
                    v.level.as_str().to_string(),
                    v.triggers.clone(),
                    v.roles.clone(),
                    v.escalation_ids.clone(),
                ),
            )
        })
        .collect()
}

fn decode(records: &[Record]) -> Vec<Verdict> {
    let codec = Codec::new(Default::default()).unwrap();
    records
        .iter()
        .map(|r| codec.decode(SchemaKind::Verdict, &r.payload).unwrap())
        .collect()
}

fn handoff(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_replay_at_10x_gives_the_same_verdicts_in_the_drill_namespace_only() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    let dir = tmpdir("drill");
    let cfg = config_file(&dir, &bs, "prod", "[metrics]\nenabled = false\n");
    let log = dir.join("prod.log");
    let mut prod = spawn(&cfg, &log);
    wait_log(&log, "partitions assigned", Duration::from_secs(60));
    // Three bursts a second apart: two seconds of recorded traffic.
    let recs = records(300, 21, 5.0, 0);
    for chunk in recs.chunks(100) {
        produce(&bs, INPUT, chunk);
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut original = Reader::new(&bs, VERDICTS);
    original.wait_for_keys(300, Duration::from_secs(60));
    original.settle(Duration::from_secs(1));
    let before = keyed(&decode(&original.records));
    assert_eq!(before.len(), 300);

    // Copy at 10×, with a checkpoint.
    let checkpoint = dir.join("replay.json");
    let out = handoff(&[
        "replay",
        "--topic",
        INPUT,
        "--speed",
        "10",
        "--bootstrap",
        &bs,
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("300 record(s) copied agent.actions → drill.agent.actions"),
        "{err}"
    );
    eprintln!("{}", err.lines().last().unwrap_or(""));
    // Run again with the same checkpoint: nothing left to copy.
    let again = handoff(&[
        "replay",
        "--topic",
        INPUT,
        "--speed",
        "max",
        "--bootstrap",
        &bs,
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 record(s) copied"));
    let copies = read_all(&bs, "drill.agent.actions");
    assert_eq!(copies.len(), 300);
    assert!(copies
        .iter()
        .all(|r| r.headers.get("handoff.drill").map(String::as_str) == Some("true")));

    // The drill processor decides the copies into drill topics.
    let dlog = dir.join("drill.log");
    let mut drill = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["run", "--drill", "--config"])
        .arg(&cfg)
        .stderr(std::fs::File::create(&dlog).unwrap())
        .spawn()
        .unwrap();
    let mut drilled = Reader::new(&bs, "drill.agent.verdicts");
    drilled.wait_for_keys(300, Duration::from_secs(90));
    drilled.settle(Duration::from_secs(1));
    let drill_verdicts = decode(&drilled.records);
    assert!(drill_verdicts.iter().all(|v| v.drill));
    assert_eq!(
        keyed(&drill_verdicts),
        before,
        "the same decisions, action by action"
    );

    // A drill-marked record that reaches the production input is routed to drill topics too.
    let codec = Codec::new(Default::default()).unwrap();
    let mut stray = recs[0].event.clone().unwrap();
    stray.action_id = "act-stray-drill".into();
    let bytes = codec.encode(SchemaKind::AgentAction, &stray).unwrap();
    produce_with_headers(
        &bs,
        INPUT,
        stray.session_id.as_bytes(),
        &bytes,
        &[("handoff.drill", "true"), ("handoff.schema.version", "2")],
    );
    drilled.wait_until_key("act-stray-drill", Duration::from_secs(60));

    // Nothing of the drill on a real topic: the real verdicts are the original ones, and no
    // real role topic holds a drill escalation.
    std::thread::sleep(Duration::from_secs(2));
    let real = decode(&read_all(&bs, VERDICTS));
    assert!(real
        .iter()
        .all(|v| !v.drill && v.action_id != "act-stray-drill"));
    assert_eq!(keyed(&real), before);
    let m = handoff::matrix::Matrix::default_matrix().unwrap();
    for role in m.roles() {
        for e in escalations(&bs, &role.topic) {
            assert!(!e.drill, "a drill escalation on {}", role.topic);
        }
    }
    sigterm(&prod);
    sigterm(&drill);
    assert!(wait_exit(&mut prod, Duration::from_secs(30)).success());
    assert!(wait_exit(&mut drill, Duration::from_secs(30)).success());
}

#[test]
fn replay_names_a_missing_topic_an_empty_range_and_a_real_target() {
    let _g = serial();
    let b = broker();
    let bs = b.bootstrap();
    create_topics(&bs, &[INPUT]);
    let missing = handoff(&["replay", "--topic", "no.such.topic", "--bootstrap", &bs]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("topic \"no.such.topic\" does not exist")
    );
    produce(&bs, INPUT, &records(5, 3, 1.0, 0));
    // --from and --to are times, as everywhere: RFC 3339 or ms.
    for from in ["4102444800000", "2100-01-01T00:00:00Z"] {
        let empty = handoff(&[
            "replay",
            "--topic",
            INPUT,
            "--from",
            from,
            "--bootstrap",
            &bs,
        ]);
        assert!(!empty.status.success());
        assert!(
            String::from_utf8_lossy(&empty.stderr)
                .contains("has no records from 4102444800000 ms on"),
            "{}",
            String::from_utf8_lossy(&empty.stderr)
        );
    }
    let real = handoff(&[
        "replay",
        "--topic",
        INPUT,
        "--into",
        "agent.verdicts",
        "--bootstrap",
        &bs,
    ]);
    assert!(!real.status.success());
    assert!(String::from_utf8_lossy(&real.stderr).contains("is not a drill topic"));
    // The old spellings still work, each with a note naming the new one.
    let old = handoff(&[
        "replay",
        "--from",
        INPUT,
        "--to",
        "agent.verdicts",
        "--from-ms",
        "0",
        "--bootstrap",
        &bs,
    ]);
    let err = String::from_utf8_lossy(&old.stderr);
    assert!(err.contains("is not a drill topic"), "{err}");
    for note in [
        "`--from agent.actions` names a topic, which is deprecated: use `--topic agent.actions`",
        "`--to agent.verdicts` names a topic, which is deprecated: use `--into agent.verdicts`",
        "--from-ms is deprecated: use --from",
    ] {
        assert!(err.contains(note), "{note}\n{err}");
    }
    let inverted = handoff(&[
        "replay",
        "--from",
        "2000",
        "--to",
        "1000",
        "--bootstrap",
        &bs,
    ]);
    assert_eq!(inverted.status.code(), Some(2));
}
