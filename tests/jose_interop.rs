//! handoff's signatures checked by independent JOSE libraries against the JWKS handoff
//! publishes: PyJWT and joserfc (Python) and `jose` (Node) verify a signed human decision and a
//! signed audit pack's trailer, and refuse a changed payload and a key the JWKS does not have.
//! The libraries are pinned (`tests/interop/requirements.txt`, `package-lock.json`) and
//! installed on first use.

mod common;

use common::python::{root, venv};
use handoff::audit::chain;
use handoff::event::{Codec, DecisionKind, HumanDecision, SchemaKind};
use handoff::trust::{jwks, public_key, signature_header, Signer};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `npm ci` in tests/interop (again when the lock changes).
fn node_jose() -> PathBuf {
    let dir = root().join("tests/interop");
    let lock = std::fs::read(dir.join("package-lock.json")).unwrap();
    let stamp = dir.join("node_modules/.lock-copy");
    if std::fs::read(&stamp).ok().as_deref() != Some(lock.as_slice()) {
        let ok = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm runs (Node 20)")
            .success();
        assert!(ok, "npm ci in tests/interop (registry reachable?)");
        std::fs::write(&stamp, &lock).unwrap();
    }
    dir
}

/// What each library says of `jws` over `payload` against `jwks`: (all verified, their words).
fn check(dir: &Path, jwks_file: &Path, jws: &str, payload: &[u8]) -> (bool, String) {
    std::fs::write(dir.join("jws"), jws).unwrap();
    std::fs::write(dir.join("payload"), payload).unwrap();
    let python = venv("jose", "tests/interop/requirements.txt").join("bin/python");
    let interop = node_jose();
    let mut all = true;
    let mut words = String::new();
    for (program, script) in [
        (python.as_os_str(), interop.join("verify_jws.py")),
        ("node".as_ref(), interop.join("verify_jws.mjs")),
    ] {
        let out = Command::new(program)
            .arg(script)
            .arg(jwks_file)
            .arg(dir.join("jws"))
            .arg(dir.join("payload"))
            .output()
            .unwrap();
        all &= out.status.success();
        words += &String::from_utf8_lossy(&out.stdout);
        words += &String::from_utf8_lossy(&out.stderr);
    }
    (all, words)
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
