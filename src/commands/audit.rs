//! `handoff audit export` and `handoff audit verify`: the evidence pack of the oversight.

use super::{load_matrix, load_settings, Failure, Outcome, Result};
use handoff::audit::{self, chain};
use handoff::cli::{AuditArgs, AuditCommand, AuditExportArgs, AuditVerifyArgs};

/// Dispatches to export or verify.
pub fn run(args: AuditArgs) -> Result {
    match args.command {
        AuditCommand::Export(a) => export(a),
        AuditCommand::Verify(a) => verify(a),
    }
}

fn export(args: AuditExportArgs) -> Result {
    let (from_ms, to_ms) = (args.from, args.to);
    super::ensure_range(Some(from_ms), Some(to_ms))?;
    let settings = load_settings(&args.kafka)?;
    let matrix = load_matrix(settings.matrix.path.as_deref())?;
    handoff::kafka::admin::wait_reachable(&settings)?;
    let window = audit::read::Window {
        from_ms,
        to_ms,
        settle_ms: std::time::Duration::from(args.settle).as_millis() as i64,
    };
    let (records, sources) = audit::read::read(&settings, &matrix, window)?;
    let entries = audit::join(&records, from_ms, to_ms);
    let header = chain::Header {
        pack: chain::PACK.into(),
        version: chain::VERSION,
        from_ms,
        to_ms,
        created_at_ms: handoff::clock::SystemClock::now(),
        sources,
    };
    let signer = settings.trust.signer();
    let bytes = chain::write(&header, &entries, signer.as_ref());
    let out = args
        .out
        .unwrap_or_else(|| format!("audit-{from_ms}-{to_ms}.jsonl").into());
    std::fs::write(&out, &bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    if let Some(dir) = &args.records {
        let files = audit::files::write(dir, &audit::files::of_entries(&records, &entries))
            .map_err(|e| anyhow::anyhow!("cannot write the records into {}: {e}", dir.display()))?;
        for (path, n) in files {
            println!("{}: {n} record(s)", path.display());
        }
    }
    let s = audit::summary(&entries);
    println!(
        "{}: {} actions, {} handed to people, {} answered ({} answers without the detail opened), \
         {} timed out, {} still open, {} decided without a rule version; {} of the actions canaries",
        out.display(),
        s.actions,
        s.escalated,
        s.answered,
        s.answered_unopened,
        s.timed_out,
        s.open,
        s.unversioned,
        s.canaries
    );
    println!(
        "sha256 {}  (keep it apart from the pack: `handoff audit verify --expect`)",
        chain::sha256_hex(&bytes)
    );
    match &signer {
        Some(k) => println!(
            "signed with key {:?} (`handoff audit verify --jwks` checks it against the published keys)",
            k.id()
        ),
        None => println!("not signed: [trust] signing_key is not set"),
    }
    Ok(Outcome::Success)
}

fn verify(args: AuditVerifyArgs) -> Result {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| Failure::usage(anyhow::anyhow!("cannot read {}: {e}", args.file.display())))?;
    let keys = args.jwks.as_deref().map(read_jwks).transpose()?;
    let digest = chain::sha256_hex(&bytes);
    let name = args.file.display();
    let (from_ms, to_ms, entries, signature) = match chain::verify(&bytes) {
        chain::Verified::Intact {
            from_ms,
            to_ms,
            entries,
            signature,
        } => (from_ms, to_ms, entries, signature),
        chain::Verified::Broken { line, why } => {
            println!("{name}: broken at line {line}: {why}");
            return Ok(Outcome::ChecksFailed);
        }
    };
    if let Some(want) = &args.expect {
        if !want.eq_ignore_ascii_case(&digest) {
            println!("{name}: chain intact, but its sha256 {digest} is not the one expected ({want}): the pack was rewritten");
            return Ok(Outcome::ChecksFailed);
        }
    }
    let signed = match (&signature, &keys) {
        (Some(sig), Some(keys)) => match sig.check(keys) {
            Ok(kid) => format!("signed by key {kid:?} of the JWKS"),
            Err(why) => {
                println!("{name}: chain intact, but {why}: the pack was rewritten or signed by another key");
                return Ok(Outcome::ChecksFailed);
            }
        },
        (None, Some(_)) => {
            println!(
                "{name}: chain intact, but the pack is not signed (--jwks asks for a signature)"
            );
            return Ok(Outcome::ChecksFailed);
        }
        (Some(_), None) => "signed (not checked: --jwks checks it)".to_string(),
        (None, None) => "not signed".to_string(),
    };
    println!("{name}: intact, {entries} entries decided in [{from_ms}, {to_ms}), {signed}, sha256 {digest}");
    Ok(Outcome::Success)
}

/// The published keys, from a file or from a URL (a gateway's or an inbox's
/// `/.well-known/jwks.json`).
pub(super) fn read_jwks(
    at: &str,
) -> Result<std::collections::HashMap<String, ed25519_dalek::VerifyingKey>> {
    if let Some(rest) = at.strip_prefix("http://") {
        let authority = rest.split('/').next().unwrap_or_default();
        let local = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|h| authority == *h || authority.starts_with(&format!("{h}:")));
        if !local {
            return Err(Failure::usage(anyhow::anyhow!(
                "--jwks {at}: keys fetched over plain http could be anyone's; use https:// (or \
                 http:// to this machine) or a file"
            )));
        }
    }
    let text = if at.starts_with("http://") || at.starts_with("https://") {
        ureq::get(at)
            .call()
            .and_then(|mut r| r.body_mut().read_to_string())
            .map_err(|e| Failure::usage(anyhow::anyhow!("--jwks {at}: {e}")))?
    } else {
        std::fs::read_to_string(at)
            .map_err(|e| Failure::usage(anyhow::anyhow!("--jwks {at}: {e}")))?
    };
    handoff::trust::read_jwks(&text)
        .map_err(|e| Failure::usage(anyhow::anyhow!("--jwks {at}: {e}")))
}
