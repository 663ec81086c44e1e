//! Rules that change without a restart, without a broker: what a reload changes (new events,
//! moves along chains, digests, metrics) and what it keeps (open escalations' versions, their
//! deadlines, streaks, queued digest items); the reloader's refusals; the file watch.

mod common;

use common::run::Run;

use common::base_event;
use handoff::event::{AgentAction, DecisionKind, Digest, Escalation, HumanDecision, SchemaKind};
use handoff::matrix::{Matrix, MatrixSource, Rules, DEFAULT_MATRIX_TOML};
use handoff::metrics::Metrics;
use handoff::pipeline::process::{Processor, Stage};
use handoff::reload::{Reloaded, Reloader, Request, Trigger};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

fn matrix(text: &str) -> Arc<Matrix> {
    Arc::new(Matrix::from_toml_str(text, MatrixSource::Default).unwrap())
}

/// The default matrix with the refund gate moved: a new version, same roles.
fn stricter() -> String {
    DEFAULT_MATRIX_TOML.replace("threshold = 0.70", "threshold = 0.75")
}

/// The default matrix without `support_l2`: support's chain goes straight to the crisis manager.
fn without_l2() -> String {
    let start = DEFAULT_MATRIX_TOML.find("[roles.support_l2]").unwrap();
    let end = start
        + DEFAULT_MATRIX_TOML[start..]
            .find("[roles.crisis_manager]")
            .unwrap();
    let mut t = DEFAULT_MATRIX_TOML.to_string();
    t.replace_range(start..end, "");
    t.replace(
        "escalate_to = \"support_l2\"",
        "escalate_to = \"crisis_manager\"",
    )
}

/// A run whose processor follows `rules`.
fn following(rules: &Arc<Rules>) -> Run {
    let (m, _) = rules.current();
    Run::new(
        Processor::new(&Default::default(), m)
            .unwrap()
            .following(rules.clone()),
    )
}

/// A refund: ask_first, handed to support (warm, 1 h).
fn refund(id: &str, session: &str) -> AgentAction {
    let mut e = base_event();
    e.action_id = id.into();
    e.session_id = session.into();
    e.action_type = "refund.issue".into();
    e.amount = Some(40.0);
    e
}

fn answer(x: &Escalation, kind: DecisionKind) -> HumanDecision {
    HumanDecision {
        escalation_id: x.escalation_id.clone(),
        action_id: x.action_id.clone(),
        session_id: x.session_id.clone(),
        role: x.role.clone(),
        decided_by: "ana".into(),
        decision: kind,
        comment: None,
        revised_output: None,
        redirect_role: None,
        decided_at_ms: 0,
        drill: false,
        chosen_option: None,
        revised_arguments: None,
    }
}

#[test]
fn new_events_take_the_new_version_while_open_escalations_keep_the_one_they_were_opened_with() {
    let (a, b) = (matrix(DEFAULT_MATRIX_TOML), matrix(&stricter()));
    assert_ne!(a.version(), b.version());
    let rules = Rules::new(a.clone());
    let mut run = following(&rules);
    run.event(&refund("act-1", "s-1"), T0);
    let outs = run.take();
    let x1 = run.escalations_in(&outs).remove(0).1;
    assert_eq!(x1.rule_version, a.version());
    assert_eq!(run.verdicts_in(&outs)[0].rule_version, a.version());

    rules.install(b.clone());
    run.event(&refund("act-2", "s-2"), T0 + 1_000);
    let outs = run.take();
    assert_eq!(
        run.verdicts_in(&outs)[0].rule_version,
        b.version(),
        "a new event: new rules"
    );
    let x2 = run.escalations_in(&outs).remove(0).1;
    assert_eq!(x2.rule_version, b.version());

    // The answer to the escalation opened under A is decided as A's: its verdict says so.
    run.decide(&answer(&x1, DecisionKind::Approve), T0 + 2_000);
    let outs = run.take();
    let v = run.verdicts_in(&outs);
    assert_eq!((v.len(), v[0].action_id.as_str()), (1, "act-1"));
    assert_eq!(v[0].rule_version, a.version());

    // Deadlines carried over: act-2's passes after an hour and moves along the chain.
    run.tick(T0 + 1_000 + HOUR + 10);
    let outs = run.take();
    let moved = run.escalations_in(&outs);
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].0, "escalations.support_l2");
    assert_eq!(moved[0].1.rule_version, b.version());
}

#[test]
fn a_removed_role_keeps_its_open_escalations_answerable_and_its_chain_ends_at_the_deadline() {
    let (a, b) = (matrix(DEFAULT_MATRIX_TOML), matrix(&without_l2()));
    let rules = Rules::new(a.clone());
    let mut run = following(&rules);
    for i in 0..3 {
        run.event(&refund(&format!("act-{i}"), &format!("s-{i}")), T0);
    }
    run.take();
    // Support lets an hour pass: all three move to support_l2 under A.
    run.tick(T0 + HOUR + 10);
    let at_l2: Vec<Escalation> = run
        .taken_escalations()
        .into_iter()
        .map(|(_, x)| x)
        .collect();
    assert_eq!(at_l2.len(), 3);
    assert!(at_l2.iter().all(|x| x.role == "support_l2"));

    rules.install(b.clone());
    // An answer still counts on a role the rules no longer have.
    run.decide(&answer(&at_l2[0], DecisionKind::Reject), T0 + HOUR + 20);
    let v = run.taken_verdicts();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].outcome, handoff::event::VerdictOutcome::Rejected);
    assert_eq!(v[0].rule_version, a.version());
    // The others' deadline (immediate, 5 min) passes: there is no next role, their chain ends
    // and the refunds (fail closed) are blocked.
    run.tick(T0 + HOUR + 10 + 5 * 60_000 + 10);
    let outs = run.take();
    assert!(run.escalations_in(&outs).is_empty(), "nowhere to move");
    let v = run.verdicts_in(&outs);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v
        .iter()
        .all(|v| v.outcome == handoff::event::VerdictOutcome::TimedOutBlocked));

    // A new refund under B goes support → crisis_manager, B's chain.
    run.event(&refund("act-9", "s-9"), T0 + 2 * HOUR);
    run.take();
    run.tick(T0 + 3 * HOUR + 10);
    let moved = run.taken_escalations();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].0, "escalations.crisis_manager");
}

#[test]
fn queued_digest_items_carry_over_and_a_removed_roles_digest_goes_to_the_review_queue() {
    let limited = DEFAULT_MATRIX_TOML.replace(
        "[roles.support_l2]\n",
        "[roles.support_l2]\nrate_limit = { max = 2, per = \"1m\" }\n",
    );
    let rules = Rules::new(matrix(&limited));
    let mut run = following(&rules);
    for i in 0..3 {
        run.event(&refund(&format!("act-{i}"), &format!("s-{i}")), T0);
    }
    run.take();
    run.tick(T0 + HOUR + 10);
    let outs = run.take();
    assert_eq!(run.escalations_in(&outs).len(), 1, "one single, two folded");
    rules.install(matrix(&without_l2()));
    run.tick(T0 + HOUR + 10 + 60_000);
    let outs = run.take();
    let digests: Vec<Digest> = outs
        .iter()
        .filter(|(_, o)| Run::kind(o) == "digest")
        .map(|(t, o)| {
            assert_eq!(t, "handoff.review", "support_l2 is gone");
            run.codec.decode(SchemaKind::Digest, &o.payload).unwrap()
        })
        .collect();
    assert_eq!(digests.len(), 1);
    assert_eq!(
        digests[0].items.len(),
        2,
        "the folded items still reach people"
    );
}

#[test]
fn a_role_the_new_rules_add_gets_its_topic_and_its_metrics() {
    let with_auditor = format!(
        "{}\n[roles.auditor]\ndescription = \"Audit desk\"\nview = \"audit\"\n",
        DEFAULT_MATRIX_TOML.replace(
            "[approvals]\nroles = [\"owner\"]",
            "[approvals]\nroles = [\"auditor\"]"
        )
    );
    let a = matrix(DEFAULT_MATRIX_TOML);
    let rules = Rules::new(a.clone());
    let mut run = following(&rules);
    let roles: Vec<String> = a.roles().iter().map(|r| r.name.clone()).collect();
    let stats = Arc::new(handoff::pipeline::stats::Stats::new(
        roles,
        a.families(),
        a.version(),
    ));
    run.p.attach(stats.clone());
    let mut e = base_event();
    e.action_type = "email.send".into();
    run.event(&e, T0);
    let before = run.taken_escalations();
    assert!(
        before.iter().any(|(t, _)| t == "escalations.owner"),
        "{before:?}"
    );
    rules.install(matrix(&with_auditor));
    let mut e2 = e.clone();
    e2.action_id = "act-2".into();
    e2.session_id = "s-2".into();
    run.event(&e2, T0 + 1);
    let after = run.taken_escalations();
    assert!(
        after.iter().any(|(t, _)| t == "escalations.auditor"),
        "{after:?}"
    );
    let text = stats.metrics.render();
    assert!(
        text.contains("handoff_escalations_total{role=\"auditor\",tier=\"warm\"} 1"),
        "{text}"
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn metric(m: &Metrics, series: &str) -> String {
    let text = m.render();
    text.lines()
        .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

#[tokio::test]
async fn a_bad_file_keeps_the_old_rules_and_the_metrics_say_so() {
    let dir = tempdir("reloader");
    let path = dir.join("matrix.toml");
    write(&path, DEFAULT_MATRIX_TOML);
    let a = matrix(DEFAULT_MATRIX_TOML);
    let m = Metrics::new(&[], &[], a.version());
    let rules = Rules::new(a.clone());
    let r = Reloader::new(Some(path.clone()), rules.clone(), m.rules().clone(), None);

    let got = r.reload(Trigger::Signal).await.unwrap();
    assert_eq!(
        got,
        Reloaded::Unchanged {
            version: a.version().into()
        }
    );

    write(
        &path,
        &format!(
            "{}\n[bogus]\nx = 1\n",
            stricter().replace("threshold = 0.75", "threshold = 7.5")
        ),
    );
    let e = r.reload(Trigger::Http).await.unwrap_err().to_string();
    assert!(
        e.contains("bogus") && e.contains("7.5"),
        "every problem is listed: {e}"
    );
    assert_eq!(
        rules.current().0.version(),
        a.version(),
        "the old rules still decide"
    );
    assert_eq!(metric(&m, "handoff_rules_last_reload_successful"), "0");
    assert_eq!(
        metric(&m, "handoff_rules_reloads_total{result=\"failure\"}"),
        "1"
    );

    write(&path, &stricter());
    let got = r.reload(Trigger::Watch).await.unwrap();
    let b = matrix(&stricter());
    assert_eq!(
        got,
        Reloaded::Installed {
            from: a.version().into(),
            to: b.version().into()
        }
    );
    assert_eq!(rules.current().0.version(), b.version());
    assert_eq!(rules.generation(), 1);
    assert_eq!(metric(&m, "handoff_rules_last_reload_successful"), "1");
    assert_eq!(
        metric(&m, "handoff_rules_reloads_total{result=\"success\"}"),
        "1"
    );
    assert_eq!(
        metric(
            &m,
            &format!("handoff_rule_info{{version=\"{}\"}}", b.version())
        ),
        "1"
    );
    assert!(
        !m.render().contains(a.version()),
        "the old version is no longer shown"
    );

    let none = Reloader::new(None, rules, m.rules().clone(), None);
    let e = none.reload(Trigger::Signal).await.unwrap_err().to_string();
    assert!(e.contains("no [matrix] path"), "{e}");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("handoff-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Requests the watch sends within `wait`.
async fn requests_within(rx: &mut tokio::sync::mpsc::Receiver<Request>, wait: Duration) -> usize {
    let mut n = 0;
    let until = tokio::time::Instant::now() + wait;
    while let Ok(Some(r)) = tokio::time::timeout_at(until, rx.recv()).await {
        assert_eq!(r.trigger, Trigger::Watch);
        n += 1;
    }
    n
}

#[tokio::test]
async fn the_watch_reloads_once_per_configmap_update_and_never_for_a_touch() {
    // A Kubernetes ConfigMap volume: matrix.toml -> ..data/matrix.toml, ..data -> ..<stamp>/.
    let dir = tempdir("watch");
    let stamp = |name: &str, text: &str| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        write(&d.join("matrix.toml"), text);
    };
    stamp("..v1", DEFAULT_MATRIX_TOML);
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/matrix.toml", dir.join("matrix.toml")).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let every = Duration::from_millis(100);
    let watch = tokio::spawn(handoff::reload::watch(dir.join("matrix.toml"), every, tx));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A touch (new modification time, same content): nothing.
    let f = std::fs::File::options()
        .append(true)
        .open(dir.join("..v1/matrix.toml"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    assert_eq!(
        requests_within(&mut rx, Duration::from_millis(600)).await,
        0
    );

    // The kubelet's update: a new directory, then ..data swapped atomically by a rename.
    stamp("..v2", &stricter());
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..v1")).unwrap();
    assert_eq!(
        requests_within(&mut rx, Duration::from_millis(800)).await,
        1
    );
    watch.abort();
}
