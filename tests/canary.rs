//! Canaries without a broker: a real processor decides canaries beside real actions. A canary
//! reaches its role exactly like a real escalation, its verdicts go to the canaries topic and
//! never to the agents, it counts only in its own metrics, and a wrong answer is reported as
//! missed without changing any real verdict; in the inbox its page is any escalation's page.

mod common;

use common::inbox::{people, serve, Client, Stream};
use common::run::Run;
use common::{answer, base_event};
use handoff::canary::{inject, report};
use handoff::config::InboxAuth;
use handoff::config::{CanaryCase, CanarySettings, Settings};
use handoff::event::canary::Expect;
use handoff::event::AuditKind;
use handoff::event::{AgentAction, DecisionKind, SchemaKind};
use handoff::event::{Verdict, VerdictOutcome};
use handoff::inbox::guard::Review;
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::pipeline::process::{Processor, Stage};
use handoff::pipeline::stats::Stats;
use std::sync::Arc;

const NOW: i64 = 1_798_761_600_000;
const MIN: i64 = 60_000;

fn refund(id: &str) -> AgentAction {
    let mut e = base_event();
    e.action_id = format!("act-{id}");
    e.session_id = format!("sess-{id}");
    e.action_type = "refund.issue".into();
    e.amount = Some(30.0);
    e.output = Some("We refund 30 EUR.".into());
    e
}

/// A refund in a session named `session`, its action `act-<session>`.
fn inbox_refund(session: &str) -> AgentAction {
    let mut e = refund(session);
    e.action_id = format!("act-{session}");
    e.session_id = session.into();
    e
}

fn matrix() -> Arc<Matrix> {
    Arc::new(Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap())
}

/// A processor on the shipped matrix with its metrics attached.
fn run() -> (Run, Arc<Stats>) {
    let m = matrix();
    let mut p = Processor::new(&Settings::default(), m.clone()).unwrap();
    let roles = m.roles().iter().map(|r| r.name.clone()).collect();
    let stats = Arc::new(Stats::new(roles, m.families(), m.version()));
    p.attach(stats.clone());
    (Run::new(p), stats)
}

/// The value of one series in the Prometheus text (0 when absent).
fn sample(stats: &Stats, series: &str) -> f64 {
    let text = stats.metrics.render();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// The sum of every series of a family.
fn total(stats: &Stats, family: &str) -> f64 {
    let text = stats.metrics.render();
    text.lines()
        .filter(|l| l.starts_with(family) && !l.starts_with('#'))
        .filter(|l| l[family.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The canaries topic's verdicts, with their headers.
fn canary_records(run: &Run) -> report::Records {
    run.on("handoff.canaries")
        .into_iter()
        .map(|o| {
            let v: Verdict = run.codec.decode(SchemaKind::Verdict, &o.payload).unwrap();
            (v, o.headers.clone())
        })
        .collect()
}

#[test]
fn a_canary_is_handed_over_like_any_action_but_never_reaches_the_agent_or_the_real_metrics() {
    let (mut run, stats) = run();
    run.event(&refund("real"), NOW);
    // The worker counts decided events from the outcome: a canary's is its own.
    let outcome = run.canary(&refund("canary"), "reject", NOW);
    assert_eq!(outcome, handoff::pipeline::process::Outcome::Canary);
    let escs = run.escalations("escalations.support");
    assert_eq!(escs.len(), 2, "both reach support");
    // The same escalation but for its ids: nothing tells a person it is a canary.
    let (real, canary) = (&escs[0], &escs[1]);
    let mut same = canary.clone();
    same.escalation_id = real.escalation_id.clone();
    same.action_id = real.action_id.clone();
    same.session_id = real.session_id.clone();
    assert_eq!(&same, real);
    let headers: Vec<_> = run
        .on("escalations.support")
        .iter()
        .map(|o| o.headers.clone())
        .collect();
    assert_eq!(headers[0], headers[1], "the same headers too");
    // Its verdict goes to the canaries topic, marked with the expected answer.
    let agents: Vec<String> = run.verdicts().into_iter().map(|v| v.action_id).collect();
    assert_eq!(agents, ["act-real"]);
    let canaries = canary_records(&run);
    assert_eq!(canaries.len(), 1);
    assert_eq!(canaries[0].0.action_id, "act-canary");
    assert_eq!(canaries[0].0.outcome, VerdictOutcome::AwaitHuman);
    let mut marked = handoff::event::wire::version_headers(handoff::event::SchemaKind::Verdict);
    marked.push(report::header(Expect::Reject));
    assert_eq!(
        canaries[0].1, marked,
        "its schema version, and the expected answer"
    );
    // Counted once: the real action only.
    assert_eq!(total(&stats, "handoff_escalations_total"), 1.0);
    assert_eq!(total(&stats, "handoff_pending_escalations"), 1.0);
    assert_eq!(total(&stats, "handoff_verdicts_total"), 1.0);
    assert_eq!(
        total(&stats, "handoff_canaries_total"),
        0.0,
        "none settled yet"
    );
}

#[test]
fn a_canary_answered_wrongly_is_missed_and_changes_no_real_verdict() {
    let (mut run, stats) = run();
    run.event(&refund("real"), NOW);
    for id in ["c1", "c2", "c3"] {
        run.canary(&refund(id), "reject", NOW);
    }
    let escs = run.escalations("escalations.support");
    let by_action = |id: &str| escs.iter().find(|x| x.action_id == id).unwrap().clone();
    // sam approves what had to be stopped; ana rejects the second; nobody answers the third.
    run.decide(
        &answer(
            &by_action("act-c1"),
            DecisionKind::Approve,
            "sam",
            NOW + 5_000,
        ),
        NOW + 5_000,
    );
    run.decide(
        &answer(
            &by_action("act-c2"),
            DecisionKind::Reject,
            "ana",
            NOW + 20_000,
        ),
        NOW + 20_000,
    );
    run.decide(
        &answer(
            &by_action("act-real"),
            DecisionKind::Reject,
            "ana",
            NOW + MIN,
        ),
        NOW + MIN,
    );
    // Every deadline passes until the chain of the third ends.
    for hours in 1..=6 {
        run.tick(NOW + hours * 3_600_000);
    }
    // The agents got exactly the real action's verdicts, and its real outcome.
    let agents = run.verdicts();
    assert!(
        agents.iter().all(|v| v.action_id == "act-real"),
        "{agents:?}"
    );
    let last = agents.last().unwrap();
    assert_eq!(
        (last.outcome, last.is_final),
        (VerdictOutcome::Rejected, true)
    );
    // The canaries' outcomes, on their own topic.
    let records = canary_records(&run);
    let end = |id: &str| {
        records
            .iter()
            .rev()
            .find(|(v, _)| v.action_id == id)
            .map(|(v, _)| v.outcome)
            .unwrap()
    };
    assert_eq!(end("act-c1"), VerdictOutcome::Approved);
    assert_eq!(end("act-c2"), VerdictOutcome::Rejected);
    assert_eq!(end("act-c3"), VerdictOutcome::TimedOutBlocked);
    // Metrics: the canaries in their own families only.
    let canary = |role: &str, result: &str| {
        sample(
            &stats,
            &format!("handoff_canaries_total{{result=\"{result}\",role=\"{role}\"}}"),
        )
    };
    assert_eq!(canary("support", "missed"), 1.0);
    assert_eq!(canary("support", "caught"), 1.0);
    let last_role = run.escalations("escalations.crisis_manager");
    assert!(!last_role.is_empty(), "the third moved along its chain");
    assert_eq!(canary("crisis_manager", "timed_out"), 1.0);
    assert_eq!(
        sample(
            &stats,
            "handoff_canary_answer_seconds_count{role=\"support\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &stats,
            "handoff_canary_answer_seconds_sum{role=\"support\"}"
        ),
        25.0
    );
    assert_eq!(
        total(&stats, "handoff_human_decisions_total"),
        1.0,
        "the real answer only"
    );
    assert_eq!(total(&stats, "handoff_deadline_misses_total"), 0.0);
    assert_eq!(total(&stats, "handoff_timeouts_total"), 0.0);
    assert_eq!(total(&stats, "handoff_pending_escalations"), 0.0);
    // The report says the same, and who missed.
    let figures = report::figures(&records);
    let support = figures.iter().find(|f| f.role == "support").unwrap();
    assert_eq!((support.sent, support.caught, support.missed), (2, 1, 1));
    assert_eq!(support.missed_by.get("sam"), Some(&1));
    assert_eq!(
        (support.answer_p50_s, support.answer_p90_s),
        (Some(5.0), Some(20.0))
    );
    // The audit trail marks them.
    let r = handoff::audit::Records {
        verdicts: run.verdicts(),
        canaries: records.into_iter().map(|(v, _)| v).collect(),
        ..Default::default()
    };
    let entries = handoff::audit::join(&r, NOW, NOW + 1);
    let marked: Vec<(&str, bool)> = entries
        .iter()
        .map(|e| (e.action_id.as_str(), e.canary))
        .collect();
    assert_eq!(
        marked,
        [
            ("act-c1", true),
            ("act-c2", true),
            ("act-c3", true),
            ("act-real", false)
        ]
    );
    // Rule suggestions learn from real actions only.
    let m = handoff::matrix::Matrix::default_matrix().unwrap();
    let (cases, skipped) = handoff::suggest::cases(&r, &m, NOW, NOW + 1);
    assert_eq!((cases.len(), skipped.canaries), (1, 3));
}

#[test]
fn a_canary_the_rules_no_longer_escalate_is_reported_and_a_bad_header_is_a_dead_letter() {
    let (mut run, stats) = run();
    let mut alone = base_event();
    alone.action_id = "act-alone".into();
    let outcome = run.canary(&alone, "approve", NOW);
    assert_eq!(outcome, handoff::pipeline::process::Outcome::Canary);
    assert!(run.verdicts().is_empty());
    let records = canary_records(&run);
    assert_eq!(records[0].0.outcome, VerdictOutcome::Proceed);
    assert_eq!(
        sample(
            &stats,
            "handoff_canaries_total{result=\"not_escalated\",role=\"none\"}"
        ),
        1.0
    );
    let outcome = run.canary(&refund("bad"), "Reject!", NOW);
    assert!(matches!(
        outcome,
        handoff::pipeline::process::Outcome::DeadLetter {
            reason: "canary_header"
        }
    ));
    let dlq = run.on("agent.actions.dlq");
    assert_eq!(dlq.len(), 1);
    let message = dlq[0]
        .headers
        .iter()
        .find(|(k, _)| k == "__connect.errors.exception.message")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap();
    assert_eq!(
        message,
        "header `handoff.canary` = \"Reject!\" is not an expected answer (approve or reject)"
    );
    assert!(
        run.escalations("escalations.support").is_empty(),
        "not decided"
    );
}

#[test]
fn canary_cases_are_checked_against_the_matrix_with_every_problem_listed() {
    let dir = std::env::temp_dir().join(format!("handoff-canary-cases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, e: &AgentAction| {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_string(e).unwrap()).unwrap();
        p
    };
    let good = write("refund.json", &refund("x"));
    let alone = write("alone.json", &base_event());
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"action_id\": 1}").unwrap();
    let case = |role: &str, event: std::path::PathBuf| CanaryCase {
        role: role.into(),
        expect: Expect::Reject,
        event,
    };
    let settings = CanarySettings {
        enabled: true,
        per_role_per_hour: 2.0,
        cases: vec![
            case("support", good.clone()),
            case("nobody", good.clone()),
            case("support", alone),
            case("support", broken),
            case("support", dir.join("missing.json")),
            case("compliance", good.clone()),
        ],
    };
    let problems = inject::load(&settings, &matrix()).unwrap_err();
    let lines: Vec<String> = problems.0.iter().map(|p| p.to_string()).collect();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(lines[0].starts_with("canary.cases[1].role: \"nobody\" is not a role of the matrix"));
    assert!(
        lines[1].starts_with("canary.cases[2].event: ")
            && lines[1].contains("nobody would be asked")
    );
    assert!(
        lines[2].starts_with("canary.cases[3].event: ")
            && lines[2].contains("is not an agent action event")
    );
    assert!(lines[3].starts_with("canary.cases[4].event: cannot read"));
    assert!(
        lines[4].contains("the matrix hands it to support, not to \"compliance\""),
        "{}",
        lines[4]
    );
    let ok = CanarySettings {
        cases: vec![case("support", good)],
        ..settings
    };
    let cases = inject::load(&ok, &matrix()).unwrap();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
    let a = inject::make(&cases[0], &mut rng, NOW);
    let b = inject::make(&cases[0], &mut rng, NOW + 1);
    assert_ne!(a.action_id, b.action_id);
    assert_ne!(a.session_id, b.session_id);
    assert!(a.action_id.starts_with("act-") && a.session_id.starts_with("sess-"));
    assert_eq!(
        (a.summary.as_str(), a.timestamp_ms),
        (cases[0].event.summary.as_str(), NOW)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_shipped_canary_cases_are_handed_to_their_roles_by_the_shipped_matrix() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/canaries");
    let case = |role: &str, expect: Expect, file: &str| CanaryCase {
        role: role.into(),
        expect,
        event: dir.join(file),
    };
    let settings = CanarySettings {
        enabled: true,
        per_role_per_hour: 1.0,
        cases: vec![
            case("support", Expect::Reject, "refund-ten-times.json"),
            case("support", Expect::Approve, "refund-late-fee.json"),
            case(
                "compliance",
                Expect::Reject,
                "payment-changed-bank-details.json",
            ),
        ],
    };
    let cases = inject::load(&settings, &matrix()).unwrap();
    assert_eq!(cases.len(), 3);
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/handoff.toml"),
    )
    .unwrap();
    for c in &settings.cases {
        let name = c.event.file_name().unwrap().to_str().unwrap();
        assert!(example.contains(name), "deploy/handoff.toml shows {name}");
    }
}

#[test]
fn a_canary_looks_like_any_escalation_and_its_approval_counts_in_no_guard_metric() {
    let m = common::inbox::matrix();
    let mut s = Stream::new(&m);
    s.run.event(&inbox_refund("sess-real"), NOW);
    s.run.canary(&inbox_refund("sess-cnry"), "reject", NOW);
    s.follow();
    let escs = s.run.escalations("escalations.support");
    let id = |action: &str| {
        escs.iter()
            .find(|x| x.action_id == action)
            .unwrap()
            .escalation_id
            .clone()
    };
    let (real, canary) = (id("act-sess-real"), id("act-sess-cnry"));
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let ana = Client::signed_in(srv.port, "ana");
    let list = ana.get("/").body;
    assert!(list.contains(&real) && list.contains(&canary), "{list}");
    // The same page, but for the ids.
    let real_page = ana.get(&format!("/e/{real}")).body;
    let canary_page = ana
        .get(&format!("/e/{canary}"))
        .body
        .replace(&canary, &real)
        .replace("sess-cnry", "sess-real");
    assert_eq!(canary_page, real_page);
    // Approving it (wrongly) is sent like any answer, and counted nowhere in the inbox.
    let token = Client::form_token(&real_page);
    let r = ana.post(
        &format!("/e/{canary}/answer"),
        &[("form_token", &token), ("decision", "approve")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let sent = srv.published.decisions.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].escalation_id, canary);
    let g = &srv.app.guard;
    let warm = handoff::event::Tier::Warm;
    for review in [Review::Fast, Review::Unopened, Review::Reviewed] {
        assert_eq!(g.approvals("support", warm, review), 0);
    }
    assert_eq!(g.streak_max("support"), 0);
    let metrics = ana.get("/metrics").body;
    assert!(
        !metrics.contains("handoff_inbox_answers_total{decision=\"approve\",result=\"sent\"} 1"),
        "{metrics}"
    );
    let audit = srv.published.audit.lock().unwrap().clone();
    let answered: Vec<_> = audit
        .iter()
        .filter(|e| e.kind == AuditKind::Answered)
        .collect();
    assert_eq!(answered.len(), 1);
    assert!(answered[0].canary, "kept apart on handoff.audit");
    assert!(audit
        .iter()
        .filter(|e| e.escalation_id == real)
        .all(|e| !e.canary));
}

#[test]
fn canary_event_paths_are_read_beside_the_settings_file_that_names_them() {
    // Tests run in the crate's directory; the settings file and its events are elsewhere.
    let dir = std::env::temp_dir().join(format!("handoff-canary-beside-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("events")).unwrap();
    let event = serde_json::to_string(&refund("x")).unwrap();
    std::fs::write(dir.join("events/refund.json"), &event).unwrap();
    let absolute = dir.join("absolute.json");
    std::fs::write(&absolute, &event).unwrap();
    assert!(!std::path::Path::new("events/refund.json").exists());
    let cfg = dir.join("handoff.toml");
    let case = |expect: &str, event: &str| {
        format!("[[canary.cases]]\nrole = \"support\"\nexpect = \"{expect}\"\nevent = {event:?}\n")
    };
    let text = format!(
        "[canary]\nenabled = true\n{}{}",
        case("reject", "events/refund.json"),
        case("approve", absolute.to_str().unwrap())
    );
    std::fs::write(&cfg, text).unwrap();
    let s = Settings::load_with_env(Some(&cfg), Vec::new()).unwrap();
    assert_eq!(s.canary.cases[0].event, dir.join("events/refund.json"));
    assert_eq!(s.canary.cases[1].event, absolute, "an absolute path stays");
    let cases = inject::load(&s.canary, &matrix()).unwrap();
    assert_eq!(cases.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
