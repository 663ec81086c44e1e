//! `handoff suggest` on recorded histories built so the right answer is known: a type people
//! always approve graduates; one whose single rejection would run unchecked does not; a gate
//! whose catches are 98% approved unchanged over 400 cases comes down (not below what people
//! revised); rising rejections make a type stricter; a hard_stop people always approve is never
//! relaxed; a phrase that only fired on approved actions is dropped, but never from a hard_stop
//! trigger (the shadow diff refuses it).

mod common;

use common::month::{self, approve, approve_first, events, suggest_files, HOUR, T0};
use handoff::audit::Records;
use handoff::event::{AgentAction, DecisionKind, Level};
use handoff::matrix::{Matrix, MatrixSource};
use handoff::suggest::{self, edit::Change, Fate, Thresholds};

/// Events of one type and how people answer the i-th.
type Group = (Vec<AgentAction>, Box<dyn Fn(usize) -> DecisionKind>);

fn history(groups: Vec<Group>) -> (String, Records) {
    month::history(
        groups
            .into_iter()
            .map(|(e, f)| month::group(e, f))
            .collect(),
    )
}

#[test]
fn proposals_follow_the_evidence_and_their_checks() {
    let week = 7 * 24 * HOUR;
    let groups: Vec<Group> = vec![
        (events("file.delete", 40, T0, |_| 0.95), Box::new(approve)),
        (
            events("data.delete", 60, T0, |_| 0.95),
            Box::new(|i| {
                if i == 7 {
                    DecisionKind::Reject
                } else {
                    DecisionKind::Approve
                }
            }),
        ),
        (
            events("research.search", 400, T0, |i| {
                0.50 + (i % 20) as f64 * 0.01
            }),
            Box::new(|i| {
                if i % 50 == 0 {
                    DecisionKind::Revise
                } else {
                    DecisionKind::Approve
                }
            }),
        ),
        (
            events("loan.approve", 60, T0 + week, |_| 0.95),
            Box::new(|i| {
                if i >= 30 && i % 3 != 0 {
                    DecisionKind::Reject
                } else {
                    DecisionKind::Approve
                }
            }),
        ),
        (events("account.close", 40, T0, |_| 0.95), Box::new(approve)),
    ];
    let (text, r) = history(groups);
    let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
    let cases = suggest::cases(&r, &m, i64::MIN, i64::MAX).0;
    assert_eq!(cases.len(), 600);
    assert!(
        cases.iter().all(|c| c.fate != Fate::Open),
        "every escalation was answered"
    );
    let ps = suggest::propose(&text, &m, &cases, &r.events, &Thresholds::default()).list;
    let find = |ty: &str| {
        ps.iter()
            .filter(|p| p.change.action_type() == Some(ty))
            .collect::<Vec<_>>()
    };
    // Always approved, by its level alone: graduates, verified.
    let f = find("file.delete");
    assert_eq!(f.len(), 1, "{ps:#?}");
    assert!(matches!(
        f[0].change,
        Change::Level {
            from: Level::AskFirst,
            to: Level::ExecuteLog,
            ..
        }
    ));
    assert_eq!(f[0].verified, Ok(()));
    assert_eq!((f[0].evidence.n, f[0].evidence.k), (40, 40));
    assert!(f[0].shadow.escalation_rate.1 < f[0].shadow.escalation_rate.0);
    assert_eq!(f[0].shadow.changed_decisions, 40);
    // 59 of 60: the evidence is there, but the one rejected would run unchecked.
    let d = find("data.delete");
    assert_eq!(d.len(), 1);
    let why = d[0].verified.clone().unwrap_err();
    assert!(why.contains("data.delete-7"), "{why}");
    // 392 of 400 approved unchanged: the gate comes down, but not to 0.60 (one step): people
    // revised actions at 0.50 and 0.60, which must stay caught — so 0.61.
    let g = find("research.search");
    assert_eq!(g.len(), 1, "{g:#?}");
    match g[0].change {
        Change::Gate { from, to, .. } => assert_eq!((from, to), (0.70, 0.61)),
        ref c => panic!("{c:?}"),
    }
    assert_eq!(g[0].verified, Ok(()));
    assert_eq!((g[0].evidence.n, g[0].evidence.k), (400, 392));
    // Rejections rose in the second half: one level stricter.
    let l = find("loan.approve");
    assert_eq!(l.len(), 1, "{l:#?}");
    assert!(matches!(
        l[0].change,
        Change::Level {
            from: Level::AskFirst,
            to: Level::HardStop,
            ..
        }
    ));
    assert_eq!(l[0].verified, Ok(()));
    // Always approved, but a hard_stop: never relaxed.
    assert!(find("account.close").is_empty(), "{ps:#?}");
    // Fewer cases than asked: nothing at all.
    let strict = Thresholds {
        min_cases: 1000,
        ..Thresholds::default()
    };
    assert!(suggest::propose(&text, &m, &cases, &r.events, &strict)
        .list
        .is_empty());
}

#[test]
fn the_command_writes_a_report_a_json_and_the_proposed_matrix_from_files() {
    let groups: Vec<Group> = vec![
        (events("file.delete", 40, T0, |_| 0.95), Box::new(approve)),
        (
            events("research.search", 10, T0, |_| 0.95),
            Box::new(approve),
        ),
    ];
    let (text, r) = history(groups);
    let dir = std::env::temp_dir().join(format!("handoff-suggest-{}", std::process::id()));
    let (files, run) = suggest_files(&dir, &text, &r, &[]);
    let (events, verdicts, decisions) = (&files[0], &files[1], &files[2]);
    let out = dir.join("out");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("50 actions, 40 escalated; 1 change(s) proposed"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("**file.delete: level ask_first → execute_log** — proposed"),
        "{md}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["proposals"][0]["evidence"]["n"], 40);
    let proposed = std::fs::read_to_string(out.join("matrix.proposed.toml")).unwrap();
    let m = Matrix::from_toml_str(&proposed, MatrixSource::Default).unwrap();
    let mut e = r.events[0].clone();
    e.session_id = "fresh".into();
    assert_eq!(
        m.evaluate(&e, &Default::default()).base_level,
        Level::ExecuteLog
    );
    // A bad line names the file and the line.
    std::fs::write(decisions, "{\"not\": \"a decision\"}\n").unwrap();
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["suggest", "--events"])
        .arg(events)
        .arg("--verdicts")
        .arg(verdicts)
        .arg("--decisions")
        .arg(decisions)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("decisions.jsonl:1"));
}

#[test]
fn the_competence_curve_shows_the_week_a_type_crossed_the_threshold() {
    let week = 7 * 24 * HOUR;
    // file.delete: 20 a week for six weeks, approved unchanged 60, 70, 80, 95, 100, 100%.
    let shares = [12, 14, 16, 19, 20, 20];
    let mut groups: Vec<Group> = Vec::new();
    for (w, k) in shares.into_iter().enumerate() {
        let mut evs = events("file.delete", 20, T0 + w as i64 * week, |_| 0.95);
        for e in &mut evs {
            e.action_id = format!("{}-w{w}", e.action_id);
            e.session_id = format!("{}-w{w}", e.session_id);
        }
        groups.push((
            evs,
            Box::new(move |i| {
                if i < k {
                    DecisionKind::Approve
                } else {
                    DecisionKind::Reject
                }
            }),
        ));
    }
    groups.push((
        events("data.delete", 30, T0, |_| 0.95),
        Box::new(|i| {
            if i % 2 == 0 {
                DecisionKind::Approve
            } else {
                DecisionKind::Revise
            }
        }),
    ));
    let (text, r) = history(groups);
    let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
    let cases = suggest::cases(&r, &m, i64::MIN, i64::MAX).0;
    let curves = suggest::competence::curves(&cases, 0.9, 5);
    let f = curves
        .iter()
        .find(|c| c.action_type == "file.delete")
        .unwrap();
    let weekly: Vec<(usize, usize)> = f.weeks.iter().map(|w| (w.1, w.2)).collect();
    assert_eq!(
        weekly,
        [(20, 12), (20, 14), (20, 16), (20, 19), (20, 20), (20, 20)]
    );
    assert_eq!(f.crossed, Some(3), "the fourth week, at 95%");
    let d = curves
        .iter()
        .find(|c| c.action_type == "data.delete")
        .unwrap();
    assert_eq!(d.crossed, None);
    let png = suggest::competence::png(&curves, 0.9);
    let decoder = png::Decoder::new(std::io::Cursor::new(png.clone()));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (1280, 720));
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/suggest-competence.png");
    std::fs::write(out, png).unwrap();
}

#[test]
fn a_phrase_that_only_fires_on_approved_actions_is_dropped_but_never_from_a_hard_stop() {
    let with = |ty: &str, field: fn(&mut AgentAction, String), text: &str| {
        let mut evs = events(ty, 40, T0, |_| 0.95);
        for e in &mut evs {
            field(e, text.to_string());
        }
        evs
    };
    let groups: Vec<Group> = vec![
        // "real person" asks for a human (ask_first); people approve every one unchanged.
        (
            with(
                "research.web",
                |e, t| e.user_message = Some(t),
                "Thanks! Is a real person reading this?",
            ),
            Box::new(approve),
        ),
        // "lawsuit" is a policy keyword (hard_stop); people approve every one too.
        (
            with(
                "research.search",
                |e, t| e.request = t,
                "Summarise the news about the lawsuit against the city.",
            ),
            Box::new(approve),
        ),
    ];
    let (text, r) = history(groups);
    let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
    let cases = suggest::cases(&r, &m, i64::MIN, i64::MAX).0;
    let ps = suggest::propose(&text, &m, &cases, &r.events, &Thresholds::default()).list;
    let phrase = |p: &str| {
        ps.iter()
            .find(|x| matches!(&x.change, Change::Phrase { phrase, .. } if phrase == p))
            .unwrap_or_else(|| panic!("no proposal for {p:?}: {ps:#?}"))
    };
    let person = phrase("real person");
    assert_eq!(
        person.change,
        Change::Phrase {
            trigger: "human_requested".into(),
            phrase: "real person".into()
        }
    );
    assert_eq!((person.evidence.n, person.evidence.k), (40, 40));
    assert_eq!(person.verified, Ok(()));
    assert_eq!(person.shadow.changed_decisions, 40);
    assert!(person.shadow.escalation_rate.1 < person.shadow.escalation_rate.0);
    let lawsuit = phrase("lawsuit");
    assert_eq!((lawsuit.evidence.n, lawsuit.evidence.k), (40, 40));
    let why = lawsuit.verified.clone().unwrap_err();
    assert!(why.contains("relaxes 40 hard_stop"), "{why}");
    // One rejection among them: the phrase mattered once, it stays.
    let groups: Vec<Group> = vec![(
        with(
            "research.web",
            |e, t| e.user_message = Some(t),
            "Thanks! Is a real person reading this?",
        ),
        Box::new(|i| {
            if i == 3 {
                DecisionKind::Reject
            } else {
                DecisionKind::Approve
            }
        }),
    )];
    let (text, r) = history(groups);
    let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
    let cases = suggest::cases(&r, &m, i64::MIN, i64::MAX).0;
    let ps = suggest::propose(&text, &m, &cases, &r.events, &Thresholds::default()).list;
    assert!(
        ps.iter()
            .all(|p| !matches!(p.change, Change::Phrase { .. })),
        "{ps:#?}"
    );
}

/// A month of decisions with a known right answer for every kind of proposal, through the
/// command; the report, the JSON, the proposed matrix and the chart are kept in
/// `target/suggest-example/out` for people to read.
#[test]
fn a_recorded_month_gives_every_kind_of_proposal_through_the_command() {
    let week = 7 * 24 * HOUR;
    let mut groups: Vec<Group> = Vec::new();
    // file.delete: 40 a week, approved unchanged 35, 39, 40, 40 (the rest revised, never
    // rejected): it earned its autonomy.
    for (w, k) in [35, 39, 40, 40].into_iter().enumerate() {
        let mut evs = events("file.delete", 40, T0 + w as i64 * week, |_| 0.95);
        for e in &mut evs {
            e.action_id = format!("{}-w{w}", e.action_id);
            e.session_id = format!("{}-w{w}", e.session_id);
            e.timestamp_ms = T0 + w as i64 * week + (e.timestamp_ms - T0) / 10;
        }
        groups.push((evs, Box::new(move |i| approve_first(i, k))));
    }
    // research.search below its 0.70 gate: 392 of 400 approved, those at 0.50 and 0.60 revised.
    groups.push((
        events("research.search", 400, T0, |i| {
            0.50 + (i % 20) as f64 * 0.01
        }),
        Box::new(|i| {
            if i % 50 == 0 {
                DecisionKind::Revise
            } else {
                DecisionKind::Approve
            }
        }),
    ));
    // "real person" in what users write: 40 asked for a human, all approved unchanged.
    let mut web = events("research.web", 40, T0, |_| 0.95);
    for e in &mut web {
        e.user_message = Some("Thanks! Is a real person reading this?".into());
    }
    groups.push((web, Box::new(approve)));
    // "lawsuit" (a hard_stop keyword) in 40 news searches, all approved: never relaxed.
    let mut news = events("research.news", 40, T0, |_| 0.95);
    for e in &mut news {
        e.request = "Summarise the news about the lawsuit against the city.".into();
    }
    groups.push((news, Box::new(approve)));
    // loan.approve: rejections rise in the second half of the month.
    groups.push((
        events("loan.approve", 60, T0 + 2 * week, |_| 0.95),
        Box::new(|i| {
            if i >= 30 && i % 3 != 0 {
                DecisionKind::Reject
            } else {
                DecisionKind::Approve
            }
        }),
    ));
    // data.delete: 59 of 60 approved; the one rejected must stay checked.
    groups.push((
        events("data.delete", 60, T0, |_| 0.95),
        Box::new(|i| {
            if i == 7 {
                DecisionKind::Reject
            } else {
                DecisionKind::Approve
            }
        }),
    ));
    // account.close is a hard_stop people always approve: nothing is proposed.
    groups.push((events("account.close", 40, T0, |_| 0.95), Box::new(approve)));
    let (text, r) = history(groups);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/suggest-example");
    let _ = std::fs::remove_dir_all(&dir);
    let (_, run) = suggest_files(&dir, &text, &r, &[]);
    let out = dir.join("out");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for line in [
        "**file.delete: level ask_first → execute_log** — proposed",
        "**research.search: confidence gate 0.70 → 0.61** — proposed",
        "**human_requested: drop the phrase \"real person\"** — proposed",
        "**loan.approve: level ask_first → hard_stop** — proposed",
        "**policy_keyword: drop the phrase \"lawsuit\"** — **not proposed**: it relaxes 40 hard_stop",
        "**data.delete: level ask_first → execute_log** — **not proposed**: it would let through 1",
    ] {
        assert!(md.contains(line), "{line}\n{md}");
    }
    assert!(!md.contains("**account.close"), "{md}");
    let proposed = std::fs::read_to_string(out.join("matrix.proposed.toml")).unwrap();
    let m = Matrix::from_toml_str(&proposed, MatrixSource::Default).unwrap();
    assert_eq!(m.threshold("research.search"), 0.61);
    assert!(
        proposed.contains("\"lawsuit\""),
        "a hard_stop phrase is kept"
    );
    assert!(!proposed.contains("\"real person\""));
    assert!(out.join("competence.png").exists());
}
