//! handoff's signatures checked by independent JOSE libraries against the JWKS handoff
//! publishes: PyJWT and joserfc (Python) and `jose` (Node) verify a signed human decision and a
//! signed audit pack's trailer, and refuse a changed payload and a key the JWKS does not have.
//! The libraries are pinned (`tests/interop/requirements.txt`, `package-lock.json`) and
//! installed on first use.

mod common;

use common::jose::{check_receipt, libraries_say};
use handoff::audit::chain;
use handoff::event::{Codec, DecisionKind, HumanDecision, SchemaKind};
use handoff::trust::{jwks, public_key, signature_header, Signer};
use std::path::Path;

/// What each library says of `jws` over `payload` against `jwks`: (all verified, their words).
fn check(dir: &Path, jwks_file: &Path, jws: &str, payload: &[u8]) -> (bool, String) {
    std::fs::write(dir.join("jws"), jws).unwrap();
    std::fs::write(dir.join("payload"), payload).unwrap();
    let (jws, payload) = (dir.join("jws"), dir.join("payload"));
    libraries_say(
        "jws",
        &[jwks_file.as_os_str(), jws.as_os_str(), payload.as_os_str()],
    )
}

fn decision() -> HumanDecision {
    HumanDecision {
        escalation_id: "esc-1".into(),
        action_id: "act-1".into(),
        session_id: "sess-1".into(),
        role: "support".into(),
        decided_by: "ana".into(),
        decision: DecisionKind::Approve,
        comment: None,
        revised_output: None,
        redirect_role: None,
        decided_at_ms: 1_798_761_600_000,
        drill: false,
        chosen_option: None,
        revised_arguments: None,
    }
}

#[test]
fn pyjwt_joserfc_and_jose_verify_handoffs_signatures_against_its_jwks() {
    let dir = std::env::temp_dir().join(format!("handoff-jose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (current, next) = (
        Signer::generate("handoff-2026-12"),
        Signer::generate("handoff-2027-01"),
    );
    let keys = [
        (current.id(), public_key(&current.public_key()).unwrap()),
        (next.id(), public_key(&next.public_key()).unwrap()),
    ];
    let jwks_file = dir.join("jwks.json");
    std::fs::write(
        &jwks_file,
        jwks(keys.iter().map(|(id, k)| (*id, k))).to_string(),
    )
    .unwrap();

    // A human decision's signature, as the inbox writes it in the record header.
    let value = Codec::new(Default::default())
        .unwrap()
        .encode(SchemaKind::HumanDecision, &decision())
        .unwrap();
    let (_, jws) = signature_header(&next, &value);
    let jws = String::from_utf8(jws).unwrap();
    let (ok, words) = check(&dir, &jwks_file, &jws, &value);
    assert!(ok, "{words}");
    for library in ["pyjwt: verified", "joserfc: verified", "jose: verified"] {
        assert!(words.contains(library), "{words}");
    }
    let mut changed = value.clone();
    changed[3] ^= 1;
    let (ok, words) = check(&dir, &jwks_file, &jws, &changed);
    assert!(!ok && words.matches("refused").count() == 3, "{words}");

    // An audit pack's trailer.
    let header = chain::Header {
        pack: chain::PACK.into(),
        version: chain::VERSION,
        from_ms: 0,
        to_ms: 10,
        created_at_ms: 11,
        sources: serde_json::Value::Null,
    };
    let pack = chain::write(&header, &[serde_json::json!({"by": "ana"})], Some(&current));
    let chain::Verified::Intact {
        signature: Some(sig),
        ..
    } = chain::verify(&pack)
    else {
        panic!("a signed, intact pack")
    };
    let (ok, words) = check(&dir, &jwks_file, &sig.jws, sig.payload.as_bytes());
    assert!(ok, "{words}");

    // A key the JWKS does not have.
    let stranger = Signer::generate("stranger");
    let (_, jws) = signature_header(&stranger, &value);
    let (ok, words) = check(&dir, &jwks_file, &String::from_utf8(jws).unwrap(), &value);
    assert!(!ok, "{words}");
}

/// A receipt the processor issued for a person's approval, checked as an executor would by
/// PyJWT, joserfc and jose against the JWKS the gateway serves: accepted for the approved
/// arguments, refused for others, for another agent, and once expired.
#[test]
fn pyjwt_joserfc_and_jose_check_a_receipt_as_an_executor_would() {
    use handoff::config::{Settings, TrustSettings};
    use handoff::matrix::Matrix;
    let dir = std::env::temp_dir().join(format!("handoff-receipt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = Signer::generate("processor-2026-12");
    let mut settings = Settings {
        trust: TrustSettings {
            signing_key: Some(key.to_pem()),
            signing_key_id: Some(key.id().into()),
            published_keys: vec![handoff::config::PublishedKey {
                id: key.id().into(),
                public_key: key.public_key(),
            }],
            ..TrustSettings::default()
        },
        ..Settings::default()
    };
    // Issued now, good for a minute: the libraries check the expiry against their own clock.
    settings.trust.receipts.expires_after = std::time::Duration::from_secs(60);
    let processor = handoff::pipeline::process::Processor::new(
        &settings,
        std::sync::Arc::new(Matrix::default_matrix().unwrap()),
    )
    .unwrap();
    let mut run = common::run::Run::new(processor);
    let now = handoff::clock::SystemClock::now();
    let mut e = common::base_event();
    e.action_type = "refund.issue".into();
    e.amount = Some(40.0);
    e.tool_call = Some(handoff::event::ToolCall {
        name: "issue_refund".into(),
        arguments: r#"{"order_id":"o-1","amount":40}"#.into(),
        call_id: None,
        framework: None,
        run_id: None,
        arguments_schema: None,
    });
    run.event(&e, now);
    let x = run
        .escalations("escalations.support")
        .pop()
        .expect("escalated");
    run.decide(&common::answer(&x, DecisionKind::Approve, "ana", now), now);
    let v = run.verdicts().into_iter().find(|v| v.is_final).unwrap();
    let receipt = v.receipt.expect("a receipt on the approval");
    let jwks_file = dir.join("jwks.json");
    std::fs::write(&jwks_file, settings.trust.jwks().to_string()).unwrap();

    let (ok, words) = check_receipt(
        &dir,
        &jwks_file,
        &receipt,
        r#"{"amount":40,"order_id":"o-1"}"#,
        "agent-1",
    );
    assert!(ok, "{words}");
    for library in ["pyjwt: verified", "joserfc: verified", "jose: verified"] {
        assert!(words.contains(library), "{words}");
    }
    let (ok, words) = check_receipt(
        &dir,
        &jwks_file,
        &receipt,
        r#"{"amount":400,"order_id":"o-1"}"#,
        "agent-1",
    );
    assert!(!ok && words.matches("refused").count() == 3, "{words}");
    let (ok, words) = check_receipt(
        &dir,
        &jwks_file,
        &receipt,
        r#"{"amount":40,"order_id":"o-1"}"#,
        "agent-9",
    );
    assert!(!ok && words.matches("refused").count() == 3, "{words}");

    // Issued an hour ago, expired a minute later.
    let mut old = common::run::Run::new(
        handoff::pipeline::process::Processor::new(
            &settings,
            std::sync::Arc::new(Matrix::default_matrix().unwrap()),
        )
        .unwrap(),
    );
    let then = now - 3_600_000;
    old.event(&e, then);
    let x = old.escalations("escalations.support").pop().unwrap();
    old.decide(
        &common::answer(&x, DecisionKind::Approve, "ana", then),
        then,
    );
    let stale = old
        .verdicts()
        .into_iter()
        .find(|v| v.is_final)
        .unwrap()
        .receipt
        .unwrap();
    let (ok, words) = check_receipt(
        &dir,
        &jwks_file,
        &stale,
        r#"{"amount":40,"order_id":"o-1"}"#,
        "agent-1",
    );
    assert!(!ok && words.matches("refused").count() == 3, "{words}");
    assert!(words.contains("xpired"), "{words}");
}
