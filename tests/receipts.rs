//! Approval receipts and four-eyes approval, through a processor without a broker: a final
//! verdict that lets an action run after people approved carries a receipt that verifies
//! against the published keys and binds the exact arguments (the revised ones when revised);
//! other verdicts carry none; a payment needing two approvals stays open after one, refuses the
//! same person twice, closes on a second person of another role, and its receipt lists both.

mod common;

use common::run::Run;
use common::{answer, base_event};
use handoff::config::{Settings, TrustSettings};
use handoff::event::{AgentAction, DecisionKind, Escalation, ToolCall, Verdict, VerdictOutcome};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::pipeline::process::Processor;
use handoff::trust::receipt::{self, Expected};
use handoff::trust::{read_jwks, Signer};
use std::sync::Arc;

const T0: i64 = 1_798_761_600_000;
const MIN: i64 = 60_000;

/// Two approvals from distinct roles for wire transfers: the owner and compliance.
const FOUR_EYES: &str = r#"
[[levels]]
pattern = "payment.wire"
level = "ask_first"
roles = ["compliance", "owner"]
approvals = 2
distinct_roles = true

[[levels]]
pattern = "payment.bulk"
level = "ask_first"
roles = ["owner"]
approvals = 2
"#;

fn run_with(signer: Option<&Signer>, for_auto_run: bool) -> (Run, Settings) {
    let mut settings = Settings {
        trust: TrustSettings {
            signing_key: signer.map(Signer::to_pem),
            signing_key_id: signer.map(|s| s.id().to_string()),
            published_keys: signer.map(published).into_iter().collect(),
            ..TrustSettings::default()
        },
        ..Settings::default()
    };
    settings.trust.receipts.for_auto_run = for_auto_run;
    let text = format!("{DEFAULT_MATRIX_TOML}\n{FOUR_EYES}");
    let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
    let run = Run::new(Processor::new(&settings, Arc::new(m)).unwrap());
    (run, settings)
}

/// `s`'s public key, as the gateway publishes it.
fn published(s: &Signer) -> handoff::config::PublishedKey {
    handoff::config::PublishedKey {
        id: s.id().into(),
        public_key: s.public_key(),
    }
}

fn action(id: &str, action_type: &str, arguments: &str) -> AgentAction {
    let mut e = base_event();
    e.action_id = id.into();
    e.session_id = format!("sess-{id}");
    e.action_type = action_type.into();
    e.amount = Some(40.0);
    e.tool_call = Some(ToolCall {
        name: "send_money".into(),
        arguments: arguments.into(),
        call_id: Some("call-1".into()),
        framework: None,
        run_id: None,
        arguments_schema: None,
    });
    e
}

fn escalation(run: &Run, topic: &str, id: &str) -> Escalation {
    run.escalations(topic)
        .into_iter()
        .rev()
        .find(|x| x.action_id == id)
        .unwrap_or_else(|| panic!("{id} escalated on {topic}"))
}

fn final_verdict(run: &Run, id: &str) -> Option<Verdict> {
    run.verdicts()
        .into_iter()
        .find(|v| v.action_id == id && v.is_final)
}

fn check(
    settings: &Settings,
    v: &Verdict,
    args: &str,
    now_s: i64,
) -> Result<receipt::Claims, Vec<receipt::Refusal>> {
    let keys = read_jwks(&settings.trust.jwks().to_string()).unwrap();
    let expected = Expected {
        arguments: Some(args),
        action_id: Some(&v.action_id),
        tool_name: Some("send_money"),
        agent_id: Some(&v.agent_id),
        now_s,
    };
    receipt::check(v.receipt.as_deref().expect("a receipt"), &keys, &expected)
}

#[test]
fn an_approval_yields_a_receipt_bound_to_the_exact_arguments_until_it_expires() {
    let key = Signer::generate("processor-1");
    let (mut run, settings) = run_with(Some(&key), false);
    let e = action("act-r1", "refund.issue", r#"{"order":"o-1","amount":40}"#);
    run.event(&e, T0);
    assert!(
        run.verdicts().iter().all(|v| v.receipt.is_none()),
        "await_human carries no receipt"
    );
    let x = escalation(&run, "escalations.support", "act-r1");
    run.decide(
        &answer(&x, DecisionKind::Approve, "ana", T0 + MIN),
        T0 + MIN,
    );
    let v = final_verdict(&run, "act-r1").expect("approved");
    assert_eq!(v.outcome, VerdictOutcome::Approved);
    let now = (T0 + MIN) / 1000;
    // Key order and spacing do not matter: the hash is over the canonical form.
    let claims = check(&settings, &v, r#"{ "amount": 40, "order": "o-1" }"#, now).unwrap();
    assert_eq!(claims.approvers.len(), 1);
    assert_eq!(claims.approvers[0].sub, "ana");
    assert_eq!(claims.approvers[0].role, "support");
    assert_eq!(claims.approvers[0].via, "unsigned");
    assert_eq!(
        claims.approvers[0].context_sha256.as_ref().map(String::len),
        Some(43)
    );
    assert_eq!(claims.level, "ask_first");
    assert_eq!(claims.rule_version, v.rule_version);
    assert_eq!(claims.exp - claims.iat, 600, "the default expiry");
    assert_eq!(claims.approval.id, claims.jti);
    // One argument changed, after expiry, another key: each refused, saying why.
    let changed = check(&settings, &v, r#"{"order":"o-1","amount":400}"#, now).unwrap_err();
    assert_eq!(changed[0].reason(), "arguments_differ");
    let late = check(&settings, &v, r#"{"order":"o-1","amount":40}"#, now + 601).unwrap_err();
    assert_eq!(late[0].reason(), "expired");
    let (_, elsewhere) = run_with(Some(&Signer::generate("processor-1")), false);
    let foreign = check(&elsewhere, &v, r#"{"order":"o-1","amount":40}"#, now).unwrap_err();
    assert_eq!(foreign[0].reason(), "bad_receipt");
}

#[test]
fn a_revision_binds_the_revised_arguments_and_a_rejection_carries_no_receipt() {
    let key = Signer::generate("processor-1");
    let (mut run, settings) = run_with(Some(&key), false);
    let e = action("act-r2", "refund.issue", r#"{"order":"o-2","amount":40}"#);
    run.event(&e, T0);
    let x = escalation(&run, "escalations.support", "act-r2");
    let mut revise = answer(&x, DecisionKind::Revise, "ana", T0 + MIN);
    revise.revised_arguments = Some(r#"{"order":"o-2","amount":25}"#.into());
    run.decide(&revise, T0 + MIN);
    let v = final_verdict(&run, "act-r2").unwrap();
    assert_eq!(v.outcome, VerdictOutcome::Revised);
    let now = (T0 + MIN) / 1000;
    let claims = check(&settings, &v, r#"{"amount":25,"order":"o-2"}"#, now).unwrap();
    assert_eq!(claims.outcome, "revised");
    assert_eq!(
        claims.approvers[0].sub, "ana",
        "the reviser approved what they wrote"
    );
    let original = check(&settings, &v, r#"{"order":"o-2","amount":40}"#, now).unwrap_err();
    assert_eq!(original[0].reason(), "arguments_differ");

    let e = action("act-r3", "refund.issue", r#"{"order":"o-3","amount":40}"#);
    run.event(&e, T0);
    let x = escalation(&run, "escalations.support", "act-r3");
    run.decide(&answer(&x, DecisionKind::Reject, "ana", T0 + MIN), T0 + MIN);
    let v = final_verdict(&run, "act-r3").unwrap();
    assert_eq!(v.outcome, VerdictOutcome::Rejected);
    assert_eq!(v.receipt, None);
}

#[test]
fn without_a_signing_key_there_are_no_receipts_and_auto_run_receipts_are_opt_in() {
    let (mut run, _) = run_with(None, false);
    let e = action("act-r4", "refund.issue", r#"{"amount":40}"#);
    run.event(&e, T0);
    let x = escalation(&run, "escalations.support", "act-r4");
    run.decide(
        &answer(&x, DecisionKind::Approve, "ana", T0 + MIN),
        T0 + MIN,
    );
    assert_eq!(final_verdict(&run, "act-r4").unwrap().receipt, None);

    let key = Signer::generate("processor-1");
    let mut research = base_event();
    research.action_id = "act-r5".into();
    research.tool_call = action("x", "x", r#"{"q":"batteries"}"#).tool_call;
    let (mut off, _) = run_with(Some(&key), false);
    off.event(&research, T0);
    let v = final_verdict(&off, "act-r5").unwrap();
    assert_eq!(v.outcome, VerdictOutcome::Proceed);
    assert_eq!(v.receipt, None, "off by default");
    let (mut on, settings) = run_with(Some(&key), true);
    on.event(&research, T0);
    let v = final_verdict(&on, "act-r5").unwrap();
    let mut keys_checked = check(&settings, &v, r#"{"q":"batteries"}"#, T0 / 1000).unwrap();
    assert_eq!(keys_checked.outcome, "proceed");
    assert!(keys_checked.approvers.is_empty());
    assert_eq!(keys_checked.approval.approved_at.take(), None);
}

#[test]
fn four_eyes_waits_for_a_second_person_of_another_role_and_lists_both() {
    let key = Signer::generate("processor-1");
    let (mut run, settings) = run_with(Some(&key), false);
    let e = action("act-w1", "payment.wire", r#"{"to":"DE89","amount":40}"#);
    run.event(&e, T0);
    let to_owner = escalation(&run, "escalations.owner", "act-w1");
    let to_compliance = escalation(&run, "escalations.compliance", "act-w1");
    run.decide(
        &answer(&to_owner, DecisionKind::Approve, "olga", T0 + MIN),
        T0 + MIN,
    );
    assert_eq!(
        final_verdict(&run, "act-w1"),
        None,
        "open after one approval"
    );
    // The same person again, for the other role: refused, still open.
    run.decide(
        &answer(&to_compliance, DecisionKind::Approve, "olga", T0 + 2 * MIN),
        T0 + 2 * MIN,
    );
    assert_eq!(
        final_verdict(&run, "act-w1"),
        None,
        "one person never counts twice"
    );
    run.decide(
        &answer(&to_compliance, DecisionKind::Approve, "carl", T0 + 3 * MIN),
        T0 + 3 * MIN,
    );
    let v = final_verdict(&run, "act-w1").expect("approved by two");
    assert_eq!(v.outcome, VerdictOutcome::Approved);
    let claims = check(
        &settings,
        &v,
        r#"{"amount":40,"to":"DE89"}"#,
        (T0 + 3 * MIN) / 1000,
    )
    .unwrap();
    let who: Vec<(&str, &str)> = claims
        .approvers
        .iter()
        .map(|a| (a.sub.as_str(), a.role.as_str()))
        .collect();
    assert_eq!(who, [("olga", "owner"), ("carl", "compliance")]);
    assert_ne!(
        claims.approvers[0].context_sha256, claims.approvers[1].context_sha256,
        "each saw their role's package"
    );
}

#[test]
fn two_approvals_from_one_role_keep_its_escalation_open_and_any_rejection_rejects() {
    let (mut run, _) = run_with(None, false);
    let e = action("act-b1", "payment.bulk", r#"{"n":3}"#);
    run.event(&e, T0);
    let x = escalation(&run, "escalations.owner", "act-b1");
    run.decide(
        &answer(&x, DecisionKind::Approve, "olga", T0 + MIN),
        T0 + MIN,
    );
    run.decide(
        &answer(&x, DecisionKind::Approve, "olga", T0 + MIN),
        T0 + MIN,
    );
    assert_eq!(final_verdict(&run, "act-b1"), None);
    run.decide(
        &answer(&x, DecisionKind::Approve, "oscar", T0 + 2 * MIN),
        T0 + 2 * MIN,
    );
    assert_eq!(
        final_verdict(&run, "act-b1").unwrap().outcome,
        VerdictOutcome::Approved
    );

    let e = action("act-b2", "payment.bulk", r#"{"n":4}"#);
    run.event(&e, T0);
    let x = escalation(&run, "escalations.owner", "act-b2");
    run.decide(
        &answer(&x, DecisionKind::Approve, "olga", T0 + MIN),
        T0 + MIN,
    );
    run.decide(
        &answer(&x, DecisionKind::Reject, "oscar", T0 + 2 * MIN),
        T0 + 2 * MIN,
    );
    assert_eq!(
        final_verdict(&run, "act-b2").unwrap().outcome,
        VerdictOutcome::Rejected
    );
}

#[test]
fn the_deadline_applies_to_the_whole_and_the_chain_moves_on_after_one_approval() {
    let (mut run, _) = run_with(None, false);
    let e = action("act-b3", "payment.bulk", r#"{"n":5}"#);
    run.event(&e, T0);
    let x = escalation(&run, "escalations.owner", "act-b3");
    run.decide(
        &answer(&x, DecisionKind::Approve, "olga", T0 + MIN),
        T0 + MIN,
    );
    // The owner's warm deadline (1 h) passes with one of two approvals: no verdict yet; the
    // owner has no `escalate_to` in the default matrix, so the action times out, blocked.
    run.tick(T0 + 61 * MIN);
    let v = final_verdict(&run, "act-b3").expect("timed out");
    assert_eq!(v.outcome, VerdictOutcome::TimedOutBlocked);
    assert_eq!(v.receipt, None);
}

#[test]
fn a_quorum_the_roles_cannot_meet_is_refused_with_the_rule_named() {
    for (extra, path) in [
        (
            "[[levels]]\npattern = \"payment.x\"\nlevel = \"ask_first\"\nroles = [\"owner\"]\napprovals = 2\ndistinct_roles = true\n",
            "levels[",
        ),
        (
            "[[levels]]\npattern = \"payment.x\"\nlevel = \"ask_first\"\napprovals = 9\n",
            ".approvals",
        ),
        ("per_level = { hard_stop = 0 }", "approvals.per_level.hard_stop"),
    ] {
        let text = match extra.strip_prefix("per_level") {
            // Into the default's own [approvals] table.
            Some(_) => DEFAULT_MATRIX_TOML.replace("[approvals]\n", &format!("[approvals]\n{extra}\n")),
            None => format!("{DEFAULT_MATRIX_TOML}\n{extra}"),
        };
        let e = Matrix::from_toml_str(&text, MatrixSource::Default)
            .unwrap_err()
            .to_string();
        assert!(e.contains(path), "{extra}: {e}");
    }
}

#[test]
fn receipt_verify_says_exactly_what_does_not_match_and_exits_1() {
    let key = Signer::generate("processor-1");
    let (mut run, settings) = run_with(Some(&key), false);
    let e = action("act-c1", "refund.issue", r#"{"order":"o-9","amount":40}"#);
    run.event(&e, T0);
    let x = escalation(&run, "escalations.support", "act-c1");
    run.decide(
        &answer(&x, DecisionKind::Approve, "ana", T0 + MIN),
        T0 + MIN,
    );
    let v = final_verdict(&run, "act-c1").unwrap();
    let dir = std::env::temp_dir().join(format!("handoff-receipt-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, settings.trust.jwks().to_string()).unwrap();
    let verdict_line = serde_json::to_string(&v).unwrap();
    let verify_at = |at: i64, extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(["receipt", "verify", &verdict_line, "--jwks"])
            .arg(&jwks)
            .args(["--at", &at.to_string()])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let verify = |extra: &[&str]| verify_at(T0 + 2 * MIN, extra);
    let (code, said) = verify(&[
        "--arguments",
        r#"{"amount":40,"order":"o-9"}"#,
        "--tool",
        "send_money",
    ]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.starts_with("valid: approved act-c1 of agent-1 (send_money)"),
        "{said}"
    );
    assert!(said.contains("ana (support,"), "{said}");
    let (code, said) = verify(&[
        "--arguments",
        r#"{"amount":41,"order":"o-9"}"#,
        "--tool",
        "refund",
        "--agent",
        "agent-1",
    ]);
    assert_eq!(code, Some(1), "{said}");
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert!(lines[0].starts_with("refused (other_tool): tool_name: the receipt says \"send_money\", about to run \"refund\""), "{said}");
    assert!(
        lines[1].starts_with("refused (arguments_differ): arguments_sha256"),
        "{said}"
    );
    let (code, said) = verify_at(T0 + 20 * MIN, &[]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("refused (expired): expired at"), "{said}");
}

#[test]
fn check_eval_and_test_rules_express_four_eyes() {
    let dir = std::env::temp_dir().join(format!("handoff-four-eyes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let matrix = dir.join("matrix.toml");
    std::fs::write(&matrix, format!("{DEFAULT_MATRIX_TOML}\n{FOUR_EYES}")).unwrap();
    let handoff = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let m = matrix.to_str().unwrap();
    let (code, said) = handoff(&["check", "--matrix", m], "");
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("payment.wire (2 approvals from distinct roles)")
            && said.contains("payment.bulk (2 approvals)"),
        "{said}"
    );
    let event = serde_json::to_string(&action("a-1", "payment.wire", "{}")).unwrap();
    let (_, said) = handoff(&["eval", "--matrix", m], &event);
    assert!(
        said.contains(r#""quorum":{"approvals":2,"distinct_roles":true}"#),
        "{said}"
    );
    let cases = dir.join("cases.yaml");
    std::fs::write(
        &cases,
        format!(
            "matrix: {m}\nbase_event: {event}\ncases:\n  - name: wires need two\n    events: [{{}}]\n    \
             expect: {{ approvals: 2, distinct_roles: true, roles: [compliance, owner] }}\n  - \
             name: refunds need one\n    events: [{{ action_type: refund.issue }}]\n    expect: {{ \
             approvals: 2 }}\n"
        ),
    )
    .unwrap();
    let (code, said) = handoff(&["test-rules", cases.to_str().unwrap()], "");
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("approvals: expected 2, got 1"), "{said}");
    assert_eq!(said.matches("approvals: expected").count(), 1, "{said}");
}

/// The inbox shows four-eyes progress: after ana's approval, sam (support too) sees "1 of 2
/// approvals: ana (support)" in the list and on the page, and his approval closes it.
#[test]
fn the_inbox_shows_one_of_two_approvals_and_who_gave_it() {
    use common::inbox::{people, serve, Client, Stream};
    let text = DEFAULT_MATRIX_TOML.replace(
        "pattern = \"refund.*\"\nlevel = \"ask_first\"\n",
        "pattern = \"refund.*\"\nlevel = \"ask_first\"\napprovals = 2\n",
    );
    assert_ne!(text, DEFAULT_MATRIX_TOML);
    let m = Arc::new(Matrix::from_toml_str(&text, MatrixSource::Default).unwrap());
    let mut s = Stream::new(&m);
    let e = action("act-i1", "refund.issue", r#"{"amount":40}"#);
    s.run.event(&e, T0);
    s.follow();
    let x = escalation(&s.run, "escalations.support", "act-i1");
    let srv = serve(&m, &s, &people(handoff::config::InboxAuth::Token));
    let approve = |who: &str| {
        let c = Client::signed_in(srv.port, who);
        let page = c.get(&format!("/e/{}", x.escalation_id)).body;
        let token = Client::form_token(&page);
        let path = format!("/e/{}/answer", x.escalation_id);
        let r = c.post(&path, &[("form_token", &token), ("decision", "approve")]);
        assert_eq!(r.status, 303, "{}", r.body);
        srv.published
            .decisions
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .clone()
    };
    let by_ana = approve("ana");
    s.run.decide(&by_ana, T0 + MIN);
    s.follow();
    assert_eq!(final_verdict(&s.run, "act-i1"), None);
    let sam = Client::signed_in(srv.port, "sam");
    let list = sam.get("/").body;
    assert!(list.contains("1 of 2 approvals"), "{list}");
    let page = sam.get(&format!("/e/{}", x.escalation_id)).body;
    assert!(
        page.contains("<b>1 of 2 approvals</b>: <bdi>ana (support)</bdi>"),
        "{page}"
    );
    let by_sam = approve("sam");
    s.run.decide(&by_sam, T0 + 2 * MIN);
    s.follow();
    let v = final_verdict(&s.run, "act-i1").expect("approved by two");
    assert_eq!(v.outcome, VerdictOutcome::Approved);
    assert!(!sam.get("/").body.contains("1 of 2 approvals"));
}

fn dead_letters(run: &Run) -> Vec<String> {
    run.on("agent.actions.dlq")
        .iter()
        .map(|o| {
            o.headers
                .iter()
                .find(|(k, _)| k == handoff::event::wire::dlq_headers::MESSAGE)
                .map(|(_, v)| String::from_utf8_lossy(v).to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// Under four-eyes a revision is refused (one person cannot approve it alone); the approvers
/// must agree on an option; acknowledging does not stop the whole's deadline, so an action with
/// one approval of two times out instead of waiting for ever.
#[test]
fn four_eyes_refuses_a_lone_revision_and_never_waits_for_ever() {
    let (mut run, _) = run_with(None, false);
    let e = action("act-f1", "payment.bulk", r#"{"n":1}"#);
    run.event(&e, T0);
    let x = escalation(&run, "escalations.owner", "act-f1");
    let mut revise = answer(&x, DecisionKind::Revise, "olga", T0 + MIN);
    revise.revised_arguments = Some(r#"{"n":2}"#.into());
    run.decide(&revise, T0 + MIN);
    assert_eq!(final_verdict(&run, "act-f1"), None);
    assert!(
        dead_letters(&run)
            .last()
            .is_some_and(|m| m.contains("one person cannot approve a revision alone")),
        "{:?}",
        dead_letters(&run)
    );
    run.decide(
        &answer(&x, DecisionKind::Acknowledge, "olga", T0 + MIN),
        T0 + MIN,
    );
    run.decide(
        &answer(&x, DecisionKind::Approve, "olga", T0 + 2 * MIN),
        T0 + 2 * MIN,
    );
    run.tick(T0 + 30 * MIN);
    assert_eq!(final_verdict(&run, "act-f1"), None, "still within the hour");
    run.tick(T0 + 61 * MIN);
    assert_eq!(
        final_verdict(&run, "act-f1").map(|v| v.outcome),
        Some(VerdictOutcome::TimedOutBlocked),
        "acknowledged and half approved, it still times out"
    );
}

#[test]
fn approvers_must_agree_on_the_option_they_choose() {
    let (mut run, _) = run_with(None, false);
    let mut e = action("act-f2", "payment.bulk", r#"{"n":1}"#);
    e.options = vec!["pay today".into(), "pay on Monday".into()];
    run.event(&e, T0);
    let x = escalation(&run, "escalations.owner", "act-f2");
    let choose = |by: &str, option: &str| {
        let mut d = answer(&x, DecisionKind::Approve, by, T0 + MIN);
        d.chosen_option = Some(option.into());
        d
    };
    run.decide(&choose("olga", "pay today"), T0 + MIN);
    run.decide(&choose("oscar", "pay on Monday"), T0 + MIN);
    assert_eq!(final_verdict(&run, "act-f2"), None);
    assert!(dead_letters(&run)
        .last()
        .is_some_and(|m| m.contains("every approver who chooses must choose the same")));
    run.decide(&choose("oscar", "pay today"), T0 + 2 * MIN);
    let v = final_verdict(&run, "act-f2").unwrap();
    assert_eq!(v.chosen_option.as_deref(), Some("pay today"));
}

/// A quorum raised above the roles asked (a level's `per_level` over a distinct-roles rule)
/// asks for more people, not for roles nobody was asked: a third person completes it.
#[test]
fn a_quorum_raised_beyond_the_roles_asked_is_met_by_more_people() {
    let text = format!("{DEFAULT_MATRIX_TOML}\n{FOUR_EYES}").replace(
        "[approvals]\n",
        "[approvals]\nper_level = { ask_first = 3 }\n",
    );
    let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
    let mut run = Run::new(Processor::new(&Settings::default(), Arc::new(m)).unwrap());
    let e = action("act-f3", "payment.wire", r#"{"to":"x"}"#);
    run.event(&e, T0);
    let owner = escalation(&run, "escalations.owner", "act-f3");
    let compliance = escalation(&run, "escalations.compliance", "act-f3");
    run.decide(
        &answer(&owner, DecisionKind::Approve, "olga", T0 + MIN),
        T0 + MIN,
    );
    run.decide(
        &answer(&compliance, DecisionKind::Approve, "carl", T0 + MIN),
        T0 + MIN,
    );
    assert_eq!(final_verdict(&run, "act-f3"), None, "two of three");
    run.decide(
        &answer(&owner, DecisionKind::Approve, "oscar", T0 + 2 * MIN),
        T0 + 2 * MIN,
    );
    assert_eq!(
        final_verdict(&run, "act-f3").map(|v| v.outcome),
        Some(VerdictOutcome::Approved)
    );
}

/// Two refunds proposed as tool calls in one session a minute apart are not grouped (each
/// call's arguments are what a person approves), where two without a call are.
#[test]
fn tool_calls_are_never_grouped() {
    let (mut run, _) = run_with(None, false);
    for (i, with_call) in [(1, true), (2, true), (3, false), (4, false)] {
        let mut e = action(&format!("act-g{i}"), "refund.issue", r#"{"n":1}"#);
        e.session_id = if with_call {
            "sess-calls"
        } else {
            "sess-plain"
        }
        .into();
        if !with_call {
            e.tool_call = None;
        }
        run.event(&e, T0 + i64::from(i) * MIN);
    }
    // A grouped action's hand-over carries the escalation it joined: count the distinct ones.
    let escalated = |s: &str| {
        let mut ids: Vec<String> = run
            .escalations("escalations.support")
            .into_iter()
            .filter(|x| x.session_id == s)
            .map(|x| x.escalation_id)
            .collect();
        ids.sort();
        ids.dedup();
        ids.len()
    };
    assert_eq!(escalated("sess-calls"), 2);
    assert_eq!(escalated("sess-plain"), 1, "the second joined the first");
}

/// The pending-escalations gauge follows four-eyes: every `Opened` is matched by one `Closed`
/// whatever the path (approve then reject, acknowledge then two approvals, a timeout), and the
/// state's own count agrees at each step.
#[test]
fn pending_escalations_balance_under_four_eyes() {
    use handoff::state::{Effect, HandOver, PartitionState};
    let text = format!("{DEFAULT_MATRIX_TOML}\n{FOUR_EYES}");
    let m = Matrix::from_toml_str(&text, MatrixSource::Default).unwrap();
    let balance = |fx: &[Effect]| {
        fx.iter()
            .map(|e| match e {
                Effect::Opened(..) => 1,
                Effect::Closed(..) => -1,
                _ => 0,
            })
            .sum::<i64>()
    };
    let paths: [&[(&str, DecisionKind)]; 3] = [
        &[
            ("olga", DecisionKind::Approve),
            ("oscar", DecisionKind::Reject),
        ],
        &[
            ("olga", DecisionKind::Acknowledge),
            ("olga", DecisionKind::Approve),
            ("oscar", DecisionKind::Approve),
        ],
        &[("olga", DecisionKind::Approve)],
    ];
    for (i, path) in paths.iter().enumerate() {
        let mut st = PartitionState::new();
        let e = action(&format!("act-p{i}"), "payment.bulk", r#"{"n":1}"#);
        let (before, _) = st.state_for(&e.session_id, 0);
        let d = m.evaluate(&e, &before);
        let plan = handoff::escalation::plan(&m, &e, &d, T0, false);
        let x = plan.escalations[0].1.clone();
        let mut fx = Vec::new();
        let triggers = d.triggers.names();
        let h = HandOver {
            triggers: &triggers,
            plan,
            group_within_ms: 0,
            now_ms: T0,
        };
        st.hand_over(&m, &e, before, h, &mut fx);
        let mut open = balance(&fx);
        assert_eq!(open, 1);
        for (by, kind) in path.iter() {
            let mut fx = Vec::new();
            st.decide(&m, &answer(&x, *kind, by, T0 + MIN), T0 + MIN, &mut fx)
                .unwrap();
            open += balance(&fx);
            assert_eq!(
                open,
                st.pending().len() as i64,
                "path {i} after {by} {kind:?}"
            );
        }
        let mut fx = Vec::new();
        st.fire_due(&m, T0 + 2 * 3_600_000, &mut fx);
        open += balance(&fx);
        assert_eq!(
            (open, st.pending().len()),
            (0, 0),
            "path {i}: nothing left pending"
        );
    }
}
