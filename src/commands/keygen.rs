//! `handoff keygen`: a key pair for signing human decisions (and audit packs). The private key goes to a file
//! (never printed); the public key is printed as the `[[trust.decision_keys]]` entry that makes
//! processors trust it.

use super::{Failure, Outcome, Result};
use std::io::Write;
use std::path::Path;

pub fn run(id: &str, out: &Path) -> Result {
    if !handoff::config::trust::is_key_id(id) {
        let rule = handoff::config::trust::KEY_ID_RULE;
        return Err(Failure::Usage(anyhow::anyhow!("--id {id:?}: {rule}")));
    }
    let key = handoff::trust::Signer::generate(id);
    let public = key.public_key();
    write_private(out, &key.to_pem())
        .map_err(|e| Failure::Usage(anyhow::anyhow!("--out {}: {e}", out.display())))?;
    let reference = toml_edit::Value::from(format!("file:{}", out.display()));
    println!(
        "private key written to {} (only its owner may read it)\n\
         # for the process that signs (the inbox, respond, gameday, audit export):\n\
         [trust]\nsigning_key = {reference}\nsigning_key_id = \"{id}\"\n\n\
         # for every processor, when it signs decisions (the inbox's, respond's):\n\
         [[trust.decision_keys]]\nid = \"{id}\"\npublic_key = \"{public}\"\n\n\
         # for the gateway and the inbox, which serve it at /.well-known/jwks.json, when it signs\n\
         # what others check (audit packs); give decisions and packs a key each:\n\
         [[trust.published_keys]]\nid = \"{id}\"\npublic_key = \"{public}\"",
        out.display(),
    );
    Ok(Outcome::Success)
}

/// Writes a new file readable by its owner only; an existing file is never replaced.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())
}
