//! Recorded histories built so the right answer is known, for `suggest` and the audit trail: a
//! real processor decides every event, people answer each escalation as a group says (or leave
//! it to time out), and the records are returned as the topics would hold them.
#![allow(dead_code)]

use super::base_event;
use super::run::Run;
use handoff::audit::Records;
use handoff::event::{AgentAction, DecisionKind, HumanDecision};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::pipeline::process::Processor;
use std::sync::Arc;

pub const T0: i64 = 1_798_761_600_000;
pub const HOUR: i64 = 3_600_000;
pub const WEEK: i64 = 7 * 24 * HOUR;

/// Events of one type and how people answer the i-th (`None`: nobody does, its deadlines pass).
pub struct Group {
    pub events: Vec<AgentAction>,
    pub answer: Box<dyn Fn(usize) -> Option<DecisionKind>>,
    /// Drill traffic: its verdicts are marked as the drill twin marks them.
    pub drill: bool,
}

/// A group answered by `answer`.
pub fn group(events: Vec<AgentAction>, answer: impl Fn(usize) -> DecisionKind + 'static) -> Group {
    Group {
        events,
        answer: Box::new(move |i| Some(answer(i))),
        drill: false,
    }
}

/// The shipped matrix with `account.close` a `hard_stop` approved by support.
pub fn matrix_text() -> String {
    format!("{DEFAULT_MATRIX_TOML}\n[[levels]]\npattern = \"account.close\"\nlevel = \"hard_stop\"\nroles = [\"support\"]\n")
}

/// `n` events of `ty`, one session each, an hour apart from `start`.
pub fn events(
    ty: &str,
    n: usize,
    start: i64,
    confidence: impl Fn(usize) -> f64,
) -> Vec<AgentAction> {
    (0..n)
        .map(|i| {
            let mut e = base_event();
            e.action_id = format!("{ty}-{i}");
            e.session_id = format!("s-{ty}-{i}");
            e.action_type = ty.into();
            e.amount = Some(10.0);
            e.confidence = Some(confidence(i));
            e.timestamp_ms = start + i as i64 * HOUR;
            e
        })
        .collect()
}

/// `events` with `tag` in their action and session ids (two groups of one type apart).
pub fn tagged(mut events: Vec<AgentAction>, tag: &str) -> Vec<AgentAction> {
    for e in &mut events {
        e.action_id = format!("{tag}-{}", e.action_id);
        e.session_id = format!("{tag}-{}", e.session_id);
    }
    events
}

pub fn approve(_: usize) -> DecisionKind {
    DecisionKind::Approve
}

/// The first `k` approved, the rest revised.
pub fn approve_first(i: usize, k: usize) -> DecisionKind {
    if i < k {
        DecisionKind::Approve
    } else {
        DecisionKind::Revise
    }
}

/// Every one approved but the `at`-th, which is answered `kind`.
pub fn all_but(at: usize, kind: DecisionKind) -> impl Fn(usize) -> DecisionKind {
    move |i| if i == at { kind } else { DecisionKind::Approve }
}

/// [`history_with`] the matrix of [`matrix_text`].
pub fn history(groups: Vec<Group>) -> (String, Records) {
    let text = matrix_text();
    let r = history_with(&text, groups);
    (text, r)
}

/// Decides every event with the matrix `text`, then answers each of its escalations a minute
/// later as its group says; finally lets two days pass, so unanswered deadlines fire.
pub fn history_with(text: &str, groups: Vec<Group>) -> Records {
    let m = Arc::new(Matrix::from_toml_str(text, MatrixSource::Default).unwrap());
    let mut run = Run::new(Processor::new(&Default::default(), m).unwrap());
    let mut r = Records::default();
    let mut last = T0;
    for g in &groups {
        let verdicts_before = r.verdicts.len();
        for (i, e) in g.events.iter().enumerate() {
            last = last.max(e.timestamp_ms);
            run.event(e, e.timestamp_ms);
            let outs = run.take();
            r.verdicts.extend(run.verdicts_in(&outs));
            let escs: Vec<_> = run
                .escalations_in(&outs)
                .into_iter()
                .map(|(_, x)| x)
                .collect();
            r.escalations.extend(escs.iter().cloned());
            let Some(kind) = (g.answer)(i) else {
                r.events.push(e.clone());
                continue;
            };
            for x in escs {
                let d = HumanDecision {
                    escalation_id: x.escalation_id.clone(),
                    action_id: x.action_id.clone(),
                    session_id: x.session_id.clone(),
                    role: x.role.clone(),
                    decided_by: "ana".into(),
                    decision: kind,
                    comment: Some("checked".into()),
                    revised_output: (kind == DecisionKind::Revise).then(|| "better".into()),
                    redirect_role: None,
                    decided_at_ms: e.timestamp_ms + 60_000,
                    drill: g.drill,
                    chosen_option: None,
                    revised_arguments: None,
                };
                run.decide(&d, d.decided_at_ms);
                r.decisions.push(d);
                let outs = run.take();
                r.verdicts.extend(run.verdicts_in(&outs));
                r.escalations
                    .extend(run.escalations_in(&outs).into_iter().map(|(_, x)| x));
            }
            r.events.push(e.clone());
        }
        if g.drill {
            for v in &mut r.verdicts[verdicts_before..] {
                v.drill = true;
            }
        }
    }
    for h in 1..=48 {
        run.tick(last + h * HOUR);
        let outs = run.take();
        r.verdicts.extend(run.verdicts_in(&outs));
        r.escalations
            .extend(run.escalations_in(&outs).into_iter().map(|(_, x)| x));
    }
    r
}

/// Writes the records as JSON-lines files and the matrix into `dir`, and runs `handoff suggest`
/// on them with `--out dir/out` and `extra` arguments: the files (events, verdicts, decisions,
/// matrix) and the run.
pub fn suggest_files(
    dir: &std::path::Path,
    matrix: &str,
    r: &Records,
    extra: &[&str],
) -> (Vec<std::path::PathBuf>, std::process::Output) {
    fn json<T: serde::Serialize>(xs: &[T]) -> String {
        let lines: Vec<String> = xs
            .iter()
            .map(|x| serde_json::to_string(x).unwrap())
            .collect();
        lines.join("\n") + "\n"
    }
    std::fs::create_dir_all(dir).unwrap();
    let files: Vec<std::path::PathBuf> = [
        ("events.jsonl", json(&r.events)),
        ("verdicts.jsonl", json(&r.verdicts)),
        ("decisions.jsonl", json(&r.decisions)),
        ("matrix.toml", matrix.to_string()),
    ]
    .into_iter()
    .map(|(name, text)| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    })
    .collect();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("suggest")
        .args(
            ["--events", "--verdicts", "--decisions", "--matrix"]
                .iter()
                .zip(&files)
                .flat_map(|(flag, f)| [std::ffi::OsStr::new(flag), f.as_os_str()]),
        )
        .arg("--out")
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .unwrap();
    (files, run)
}
