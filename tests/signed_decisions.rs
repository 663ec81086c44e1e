//! Signed human decisions, through a processor without a broker: with keys trusted, a decision
//! signed by a trusted key for a role it may vouch for is applied; unsigned, badly signed,
//! unknown-key and wrong-role ones are dead letters naming why, counted, and change nothing;
//! during a rolling upgrade unsigned ones may be allowed, badly signed ones never.

mod common;

use common::run::Run;
use common::{answer, base_event};
use handoff::config::{DecisionKey, Settings, TrustSettings};
use handoff::event::wire::dlq_headers;
use handoff::event::{AgentAction, DecisionKind, Escalation, HumanDecision, SchemaKind};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::output::Output;
use handoff::pipeline::process::Processor;
use handoff::trust::{signature_header, Signer};
use std::sync::Arc;

const T0: i64 = 1_798_761_600_000;

fn trusting(keys: &[(&Signer, &[&str])], allow_unsigned: bool) -> Run {
    let settings = Settings {
        trust: TrustSettings {
            decision_keys: keys
                .iter()
                .map(|(k, roles)| DecisionKey {
                    id: k.id().into(),
                    public_key: k.public_key(),
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                })
                .collect(),
            allow_unsigned_decisions: allow_unsigned,
            ..TrustSettings::default()
        },
        ..Settings::default()
    };
    let m = Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default).unwrap();
    Run::new(Processor::new(&settings, Arc::new(m)).unwrap())
}

/// A 40 EUR refund: ask_first, escalated to support.
fn refund(run: &mut Run, id: &str) -> Escalation {
    let mut e: AgentAction = base_event();
    e.action_id = id.into();
    e.session_id = format!("sess-{id}");
    e.action_type = "refund.issue".into();
    e.amount = Some(40.0);
    run.event(&e, T0);
    let x = run.escalations("escalations.support");
    x.into_iter()
        .find(|x| x.action_id == id)
        .expect("escalated to support")
}

/// Sends `d` with `headers` (besides the version header); `signed_by` signs `signed_bytes`
/// when given, else the record's own bytes.
fn send(run: &mut Run, d: &HumanDecision, signer: Option<&Signer>, over: Option<&[u8]>) {
    let bytes = run.codec.encode(SchemaKind::HumanDecision, d).unwrap();
    let mut h = handoff::event::wire::version_headers(SchemaKind::HumanDecision);
    if let Some(s) = signer {
        let (k, v) = signature_header(s, over.unwrap_or(&bytes));
        h.push((k.to_string(), v));
    }
    run.record_with("human.decisions", &d.session_id, &bytes, &h, T0 + 60_000);
}

fn header(o: &Output, k: &str) -> String {
    o.headers
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| String::from_utf8_lossy(v).to_string())
        .unwrap_or_default()
}

fn final_verdicts(run: &Run, action: &str) -> usize {
    run.verdicts()
        .iter()
        .filter(|v| v.action_id == action && v.is_final)
        .count()
}

#[test]
fn forged_decisions_are_dead_letters_that_change_nothing_and_a_signed_one_is_applied() {
    let inbox = Signer::generate("inbox-1");
    let slack = Signer::generate("slack-1");
    let mut run = trusting(&[(&inbox, &[]), (&slack, &["finance"])], false);
    let x = refund(&mut run, "act-1");
    let approve = answer(&x, DecisionKind::Approve, "mallory", T0 + 60_000);
    let other = answer(&x, DecisionKind::Reject, "mallory", T0 + 60_000);
    let other_bytes = run.codec.encode(SchemaKind::HumanDecision, &other).unwrap();
    let stranger = Signer::generate("stranger");
    let impostor = Signer::generate("inbox-1"); // a trusted id, another key
    send(&mut run, &approve, None, None);
    send(&mut run, &approve, Some(&stranger), None);
    send(&mut run, &approve, Some(&impostor), None);
    send(&mut run, &approve, Some(&inbox), Some(&other_bytes));
    send(&mut run, &approve, Some(&slack), None); // support is not slack-1's role
                                                  // slack-1 may sign for finance: a decision naming finance for support's escalation is
                                                  // refused all the same — the role must be the one the escalation waits for.
    let mut as_finance = approve.clone();
    as_finance.role = "finance".into();
    send(&mut run, &as_finance, Some(&slack), None);
    let dl = run.on("agent.actions.dlq");
    let reasons: Vec<String> = dl.iter().map(|o| header(o, dlq_headers::CLASS)).collect();
    assert_eq!(
        reasons,
        [
            "unsigned_decision",
            "unknown_signing_key",
            "bad_signature",
            "bad_signature",
            "role_not_vouched",
            "role_mismatch"
        ]
    );
    assert!(header(dl[4], dlq_headers::MESSAGE).contains("field `role` has value \"support\""));
    assert!(header(dl[1], dlq_headers::MESSAGE).contains("\"stranger\""));
    assert_eq!(final_verdicts(&run, "act-1"), 0, "nothing was decided");

    let mut by_ana = approve.clone();
    by_ana.decided_by = "ana".into();
    send(&mut run, &by_ana, Some(&inbox), None);
    let v: Vec<_> = run.verdicts().into_iter().filter(|v| v.is_final).collect();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].decided_by.as_deref(), Some("ana"));
    assert_eq!(
        run.on("agent.actions.dlq").len(),
        6,
        "the signed one is no dead letter"
    );
}

#[test]
fn during_an_upgrade_unsigned_decisions_may_pass_but_badly_signed_ones_never() {
    let inbox = Signer::generate("inbox-1");
    let mut run = trusting(&[(&inbox, &[])], true);
    let x = refund(&mut run, "act-2");
    let approve = answer(&x, DecisionKind::Approve, "ana", T0 + 60_000);
    send(&mut run, &approve, Some(&Signer::generate("inbox-1")), None);
    assert_eq!(
        header(run.on("agent.actions.dlq")[0], dlq_headers::CLASS),
        "bad_signature"
    );
    assert_eq!(final_verdicts(&run, "act-2"), 0);
    send(&mut run, &approve, None, None);
    assert_eq!(
        final_verdicts(&run, "act-2"),
        1,
        "unsigned, allowed while upgrading"
    );
}

#[test]
fn without_keys_decisions_are_taken_as_before() {
    let mut run = trusting(&[], false);
    let x = refund(&mut run, "act-3");
    send(
        &mut run,
        &answer(&x, DecisionKind::Approve, "ana", T0 + 60_000),
        None,
        None,
    );
    assert_eq!(final_verdicts(&run, "act-3"), 1);
    assert!(run.on("agent.actions.dlq").is_empty());
}
