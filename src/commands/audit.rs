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
    let bytes = chain::write(&header, &entries);
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
    Ok(Outcome::Success)
}

fn verify(args: AuditVerifyArgs) -> Result {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| Failure::usage(anyhow::anyhow!("cannot read {}: {e}", args.file.display())))?;
    let digest = chain::sha256_hex(&bytes);
    match chain::verify(&bytes) {
        chain::Verified::Intact {
            from_ms,
            to_ms,
            entries,
        } => {
            if let Some(want) = &args.expect {
                if !want.eq_ignore_ascii_case(&digest) {
                    println!("{}: chain intact, but its sha256 {digest} is not the one expected ({want}): the pack was rewritten", args.file.display());
                    return Ok(Outcome::ChecksFailed);
                }
            }
            println!(
                "{}: intact, {entries} entries decided in [{from_ms}, {to_ms}), sha256 {digest}",
                args.file.display()
            );
            Ok(Outcome::Success)
        }
        chain::Verified::Broken { line, why } => {
            println!("{}: broken at line {line}: {why}", args.file.display());
            Ok(Outcome::ChecksFailed)
        }
    }
}
