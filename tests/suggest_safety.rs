//! `handoff suggest` held to what its docs promise, one defect at a time: changes safe alone but
//! not together, drills counted as real, a gate lowered for a hard stop, approvers changed by a
//! stricter level, a gate floor lost with a missing event, a result that depends on the order
//! of the events, timeouts left out, flags that cannot escalate hiding a type's evidence, the
//! per-agent table, inputs that do not add up, and a matrix that is not TOML.

mod common;

use common::month::{
    self, all_but, approve, events, group, history, history_with, matrix_text, suggest_files,
    tagged, T0,
};
use handoff::audit::Records;
use handoff::event::{AgentAction, DecisionKind, Level};
use handoff::matrix::{Matrix, MatrixSource};
use handoff::replay::diff::diff;
use handoff::suggest::{self, edit::Change, rules::Candidate, Fate, Thresholds};

fn matrix(text: &str) -> Matrix {
    Matrix::from_toml_str(text, MatrixSource::Default).unwrap()
}

fn propose(text: &str, r: &Records) -> suggest::Proposals {
    let m = matrix(text);
    let (cases, _) = suggest::cases(r, &m, i64::MIN, i64::MAX);
    suggest::propose(text, &m, &cases, &r.events, &Thresholds::default())
}

fn accepted(ps: &suggest::Proposals) -> Vec<&Change> {
    ps.list
        .iter()
        .filter(|p| p.verified.is_ok())
        .map(|p| &p.change)
        .collect()
}

fn out_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("handoff-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The case: email.send approved by its level alone nearly always (graduation), its gate
/// catches approved nearly always (a lower gate), and one action with `[low_confidence,
/// consecutive_low_confidence]` rejected. Before, the gate's floor ignored that action (two
/// triggers) and the proposed matrix, with both changes, let it run.
#[test]
fn the_proposed_matrix_never_lets_through_an_action_a_person_rejected() {
    let mut rejected = events("email.send", 2, T0, |i| [0.72, 0.75][i]);
    for e in &mut rejected {
        e.session_id = "s-streak".into();
        e.action_id = format!("{}-streak", e.action_id);
    }
    let (text, r) = history(vec![
        group(events("email.send", 60, T0, |_| 0.95), approve),
        group(
            tagged(
                events("email.send", 100, T0 + 100 * month::HOUR, |i| {
                    0.70 + (i % 10) as f64 * 0.01
                }),
                "low",
            ),
            approve,
        ),
        group(rejected, all_but(1, DecisionKind::Reject)),
    ]);
    let ps = propose(&text, &r);
    let changes: Vec<Change> = accepted(&ps).into_iter().cloned().collect();
    assert!(!changes.is_empty(), "{:#?}", ps.list);
    let refs: Vec<&Change> = changes.iter().collect();
    let proposed = matrix(&suggest::edit::apply(&text, &refs).unwrap());
    let d = diff(&matrix(&text), &proposed, &r.events);
    let through: Vec<&str> = d
        .changes
        .iter()
        .filter(|c| !c.new_level.needs_human())
        .map(|c| c.action_id.as_str())
        .collect();
    assert!(
        !through.contains(&"email.send-1-streak"),
        "{changes:?} let the rejected action through"
    );
    // The gate comes down, but not below the rejected action's confidence.
    let gate = changes.iter().find_map(|c| match c {
        Change::Gate { to, .. } => Some(*to),
        _ => None,
    });
    assert_eq!(gate, Some(0.76), "{changes:?}");
}

/// Two changes, each safe alone, that together let a rejected action run: the second is refused,
/// saying it is the combination.
#[test]
fn a_change_safe_alone_but_not_with_the_ones_before_it_is_refused() {
    let text = matrix_text();
    let m = matrix(&text);
    let mut e = events("email.send", 1, T0, |_| 0.75).remove(0);
    e.action_id = "act-rejected".into();
    let r = history_with(
        &text,
        vec![group(vec![e.clone()], |_| DecisionKind::Reject)],
    );
    let (cases, _) = suggest::cases(&r, &m, i64::MIN, i64::MAX);
    assert_eq!(cases[0].fate, Fate::Rejected);
    let evidence = suggest::Evidence {
        n: 100,
        k: 100,
        share: 1.0,
        interval: (0.96, 1.0),
        why: "made up".into(),
    };
    let candidate = |change| Candidate {
        change,
        evidence: evidence.clone(),
        refused: None,
    };
    let found = vec![
        candidate(Change::Gate {
            action_type: "email.send".into(),
            from: 0.80,
            to: 0.70,
        }),
        candidate(Change::Level {
            action_type: "email.send".into(),
            from: Level::AskFirst,
            to: Level::ExecuteLog,
        }),
    ];
    let ps = suggest::verify::all(&text, &m, found, &cases, &r.events);
    assert_eq!(
        ps.list[0].verified,
        Ok(()),
        "the gate alone: the level holds it"
    );
    let why = ps.list[1].verified.clone().unwrap_err();
    assert!(
        why.contains("safe alone, but together with")
            && why.contains("email.send: confidence gate 0.80 → 0.70")
            && why.contains("act-rejected"),
        "{why}"
    );
    assert_eq!(
        ps.list[1].shadow.changed_decisions, 0,
        "alone, the graduation changes nothing for the rejected action"
    );
}

#[test]
fn drills_are_left_out_and_counted() {
    let drill = tagged(events("file.delete", 40, T0, |_| 0.95), "drill");
    let mut g = group(drill, approve);
    g.drill = true;
    let (text, r) = history(vec![
        g,
        group(events("file.delete", 5, T0, |_| 0.95), approve),
    ]);
    let m = matrix(&text);
    let (cases, skipped) = suggest::cases(&r, &m, i64::MIN, i64::MAX);
    assert_eq!((cases.len(), skipped.drills), (5, 40));
    assert!(propose(&text, &r).list.is_empty());
    let dir = out_dir("suggest-drills");
    let (_, run) = suggest_files(&dir, &text, &r, &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("40 drill action(s) left out"), "{stdout}");
    let md = std::fs::read_to_string(dir.join("out/report.md")).unwrap();
    assert!(md.contains("40 drill action(s) left out"), "{md}");
}

#[test]
fn nothing_about_a_hard_stop_type_is_proposed_not_even_its_gate() {
    let (text, r) = history(vec![group(
        events("account.close", 120, T0, |i| 0.60 + (i % 5) as f64 * 0.01),
        approve,
    )]);
    let ps = propose(&text, &r);
    assert!(ps.list.is_empty(), "{:#?}", ps.list);
}

#[test]
fn a_stricter_level_keeps_who_approves_and_a_change_of_approvers_is_reported() {
    let rising = |i: usize| {
        if i >= 30 && i % 3 != 0 {
            DecisionKind::Reject
        } else {
            DecisionKind::Approve
        }
    };
    // refund.issue is matched by `refund.*`, approved by support.
    let (text, r) = history(vec![group(
        events("refund.issue", 60, T0, |_| 0.95),
        rising,
    )]);
    let ps = propose(&text, &r);
    let p = &ps.list[0];
    assert!(
        matches!(
            p.change,
            Change::Level {
                to: Level::HardStop,
                ..
            }
        ),
        "{p:#?}"
    );
    assert_eq!(p.verified, Ok(()));
    assert!(p.shadow.approvers_changed.is_empty(), "{p:#?}");
    let proposed = matrix(&suggest::edit::apply(&text, &[&p.change]).unwrap());
    let rule = proposed.level_rule("refund.issue").unwrap();
    assert_eq!(rule.roles.as_deref(), Some(&["support".to_string()][..]));
    // trade.execute runs alone unless a trigger stops it; large ones go to compliance. One level
    // stricter, they also go to the owner: the report says so.
    let mut big = events("trade.execute", 60, T0, |_| 0.95);
    for e in &mut big {
        e.amount = Some(50_000.0);
    }
    let (text, r) = history(vec![group(big, rising)]);
    let ps = propose(&text, &r);
    let p = &ps.list[0];
    assert!(
        matches!(
            p.change,
            Change::Level {
                to: Level::AskFirst,
                ..
            }
        ),
        "{p:#?}"
    );
    assert_eq!(
        p.shadow
            .approvers_changed
            .get("[compliance] → [compliance, owner]"),
        Some(&60),
        "{p:#?}"
    );
    let dir = out_dir("suggest-approvers");
    let (_, run) = suggest_files(&dir, &text, &r, &[]);
    assert!(run.status.success());
    let md = std::fs::read_to_string(dir.join("out/report.md")).unwrap();
    assert!(
        md.contains("**Approvers change**: [compliance] → [compliance, owner] for 60"),
        "{md}"
    );
}

/// email.send approved by its level alone every time graduates to execute_log — unless its
/// rule asks for two approvers: four-eyes is never proposed away.
#[test]
fn a_four_eyes_rule_is_never_proposed_lower() {
    let (text, r) = history(vec![group(events("email.send", 60, T0, |_| 0.95), approve)]);
    let graduates = |ps: &suggest::Proposals| {
        ps.list.iter().any(|p| {
            matches!(&p.change, Change::Level { action_type, to: Level::ExecuteLog, .. }
                if action_type == "email.send")
        })
    };
    assert!(graduates(&propose(&text, &r)), "the control graduates");
    let four_eyes = text.replace(
        "pattern = \"email.send\"\nlevel = \"ask_first\"\n",
        "pattern = \"email.send\"\nlevel = \"ask_first\"\napprovals = 2\n",
    );
    assert_ne!(four_eyes, text);
    let ps = propose(&four_eyes, &r);
    assert!(!graduates(&ps), "{:#?}", ps.list);
}

/// research.search: 392 of 400 caught by the gate approved, the 8 revised at 0.50 and 0.60.
fn gate_history() -> (String, Records) {
    history(vec![group(
        events("research.search", 400, T0, |i| {
            0.50 + (i % 20) as f64 * 0.01
        }),
        |i| {
            if i % 50 == 0 {
                DecisionKind::Revise
            } else {
                DecisionKind::Approve
            }
        },
    )])
}

#[test]
fn an_unknown_confidence_never_lowers_a_gate() {
    let (text, mut r) = gate_history();
    let gate = |ps: &suggest::Proposals| {
        ps.list
            .iter()
            .find(|p| matches!(p.change, Change::Gate { .. }))
            .cloned()
    };
    let before = gate(&propose(&text, &r)).unwrap();
    assert_eq!(before.verified, Ok(()));
    // The revised actions' events are missing: their confidence is unknown.
    r.events.retain(|e| {
        let i: usize = e.action_id.rsplit('-').next().unwrap().parse().unwrap();
        i % 50 != 0
    });
    let m = matrix(&text);
    let (_, skipped) = suggest::cases(&r, &m, i64::MIN, i64::MAX);
    assert_eq!(skipped.without_event, 8);
    let after = gate(&propose(&text, &r)).unwrap();
    let why = after.verified.unwrap_err();
    assert!(why.contains("confidence is unknown"), "{why}");
}

#[test]
fn the_proposals_do_not_depend_on_the_order_of_the_events() {
    let mut templated = tagged(events("email.send", 10, T0, |_| 0.95), "tpl");
    for e in &mut templated {
        e.template_id = Some("welcome-v2".into());
    }
    let (text, mut r) = history(vec![
        group(templated, approve),
        group(events("email.send", 60, T0, |_| 0.95), approve),
    ]);
    let first = propose(&text, &r);
    r.events.reverse();
    let second = propose(&text, &r);
    assert_eq!(accepted(&first), accepted(&second));
    assert!(
        accepted(&first)
            .iter()
            .any(|c| matches!(c, Change::Level { action_type, to: Level::ExecuteLog, .. } if action_type == "email.send")),
        "{:#?}",
        first.list
    );
}

#[test]
fn timeouts_count_as_not_approved_and_the_evidence_says_what_was_left_out() {
    let nobody = |at: usize| move |i: usize| (i < at).then_some(DecisionKind::Approve);
    let g = |n, at| month::Group {
        events: events("file.delete", n, T0, |_| 0.95),
        answer: Box::new(nobody(at)),
        drill: false,
    };
    // 50 approved, 20 left to time out: 71% is no graduation.
    let (text, r) = history(vec![g(70, 50)]);
    let m = matrix(&text);
    let (cases, _) = suggest::cases(&r, &m, i64::MIN, i64::MAX);
    assert_eq!(
        cases.iter().filter(|c| c.fate == Fate::TimedOut).count(),
        20
    );
    assert!(propose(&text, &r).list.is_empty());
    // 100 approved, 2 timed out: it graduates, and the evidence says how the two were counted.
    let (text, r) = history(vec![g(102, 100)]);
    let ps = propose(&text, &r);
    let p = &ps.list[0];
    assert_eq!((p.evidence.n, p.evidence.k), (102, 100));
    assert!(
        p.evidence
            .why
            .contains("2 timed out, counted as not approved"),
        "{p:#?}"
    );
}

#[test]
fn a_flag_that_cannot_escalate_is_not_a_reason() {
    let mut deletes = events("file.delete", 40, T0, |_| 0.95);
    for e in &mut deletes {
        e.reversible = false; // `irreversible` only asks for execute_log
    }
    let (text, r) = history(vec![group(deletes, approve)]);
    let m = matrix(&text);
    let (cases, _) = suggest::cases(&r, &m, i64::MIN, i64::MAX);
    assert_eq!(cases[0].triggers, ["irreversible"]);
    assert!(cases[0].escalating.is_empty());
    assert_eq!(suggest::reasons(&cases[0]), ["level"]);
    let ps = propose(&text, &r);
    assert!(
        matches!(&ps.list[0].change, Change::Level { action_type, .. } if action_type == "file.delete"),
        "{:#?}",
        ps.list
    );
}

#[test]
fn the_report_has_a_table_per_agent() {
    let (text, r) = history(vec![group(
        events("file.delete", 40, T0, |_| 0.95),
        approve,
    )]);
    let dir = out_dir("suggest-agents");
    let (_, run) = suggest_files(&dir, &text, &r, &[]);
    assert!(run.status.success());
    let md = std::fs::read_to_string(dir.join("out/report.md")).unwrap();
    assert!(
        md.contains("## By agent (at least 30 cases)")
            && md.contains("| level | file.delete | agent-1 | 40 | 40 |"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/report.json")).unwrap()).unwrap();
    assert_eq!(json["by_agent"][0][2], "agent-1");
}

#[test]
fn inputs_that_do_not_add_up_are_counted_and_an_inverted_range_is_refused() {
    let (text, mut r) = history(vec![group(
        events("file.delete", 40, T0, |_| 0.95),
        approve,
    )]);
    let first = r.decisions[0].clone();
    r.decisions.push(first.clone()); // repeated
    let mut other = r.decisions[1].clone();
    other.decision = DecisionKind::Reject; // contradicts the approval
    r.decisions.push(other);
    let mut stray = first.clone();
    stray.escalation_id = "esc-nobody".into();
    stray.action_id = "act-nobody".into();
    r.decisions.push(stray); // matches nothing
    r.events.remove(5); // a verdict without its event
    let dir = out_dir("suggest-inputs");
    let (files, run) = suggest_files(&dir, &text, &r, &[]);
    // An event that fails validation, as eval would refuse it.
    let mut bad: AgentAction = r.events[0].clone();
    bad.action_id = "act-bad".into();
    bad.confidence = Some(7.5);
    let mut lines = std::fs::read_to_string(&files[0]).unwrap();
    lines.push_str(&serde_json::to_string(&bad).unwrap());
    lines.push('\n');
    std::fs::write(&files[0], lines).unwrap();
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["suggest", "--out"])
        .arg(dir.join("out"))
        .args(["--events", files[0].to_str().unwrap()])
        .args(["--verdicts", files[1].to_str().unwrap()])
        .args(["--decisions", files[2].to_str().unwrap()])
        .output()
        .unwrap();
    drop(run);
    let stdout = String::from_utf8_lossy(&again.stdout);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stdout}{stderr}");
    for line in [
        "1 event(s) failing validation left out",
        "1 action(s) without their event",
        "1 decision(s) for escalations of no action read",
        "1 decision(s) recorded twice",
        "1 escalation(s) answered with different answers",
    ] {
        assert!(stdout.contains(line), "{line}\n{stdout}");
    }
    assert!(
        stderr.contains("events.jsonl:40: left out") && stderr.contains("confidence"),
        "{stderr}"
    );
    let inverted = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args([
            "suggest",
            "--from",
            "2026-12-02T00:00:00Z",
            "--to",
            "2026-12-01T00:00:00Z",
        ])
        .args(["--events", files[0].to_str().unwrap()])
        .args(["--verdicts", files[1].to_str().unwrap()])
        .args(["--decisions", files[2].to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(inverted.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&inverted.stderr).contains("is not before --to"));
}

#[test]
fn a_json_matrix_is_read_as_check_reads_it_and_the_proposal_written_as_toml() {
    let (text, r) = history(vec![group(
        events("file.delete", 40, T0, |_| 0.95),
        approve,
    )]);
    let value = handoff::problems::read_str(&text, config::FileFormat::Toml).unwrap();
    let dir = out_dir("suggest-json");
    let (files, _) = suggest_files(&dir, &text, &r, &[]);
    let json = dir.join("matrix.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["suggest", "--out"])
        .arg(dir.join("out"))
        .args(["--matrix", json.to_str().unwrap()])
        .args(["--events", files[0].to_str().unwrap()])
        .args(["--verdicts", files[1].to_str().unwrap()])
        .args(["--decisions", files[2].to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("1 change(s) proposed") && stdout.contains("is not TOML"),
        "{stdout}"
    );
    let proposed = std::fs::read_to_string(dir.join("out/matrix.proposed.toml")).unwrap();
    let m = matrix(&proposed);
    assert_eq!(m.type_level("file.delete", false), Level::ExecuteLog);
    assert_ne!(m.version(), matrix(&text).version());
}
