//! The Python the client tests run with: a venv per pinned requirements file, made on first use
//! in `~/.cache/handoff/` (keyed by the file's hash, so a changed pin makes a new one) and kept;
//! CI's lint step uses the same one.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv with `requirements` (relative to the repository) installed.
pub fn venv(name: &str, requirements: &str) -> PathBuf {
    let reqs = root().join(requirements);
    let text = std::fs::read(&reqs).unwrap_or_else(|e| panic!("{}: {e}", reqs.display()));
    let hash = hex::encode(Sha256::digest(&text));
    let home = std::env::var_os("HOME").expect("HOME is set");
    let dir = Path::new(&home)
        .join(".cache/handoff")
        .join(format!("{name}-venv-{}", &hash[..12]));
    if dir.join(".installed").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .expect("python3 runs")
        .success();
    assert!(ok, "python3 -m venv {}", dir.display());
    let ok = Command::new(dir.join("bin/pip"))
        .args(["install", "-q", "-r"])
        .arg(&reqs)
        .status()
        .expect("pip runs")
        .success();
    assert!(ok, "pip install -r {requirements} (PyPI reachable?)");
    std::fs::write(dir.join(".installed"), b"").unwrap();
    dir
}
