//! Independent JOSE libraries (PyJWT and joserfc in Python, `jose` in Node), pinned in
//! `tests/interop/` and installed on first use, run on handoff's signatures.
#![allow(dead_code)]

use super::python::{root, venv};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `npm ci` in tests/interop (again when the lock changes).
pub fn node_jose() -> PathBuf {
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

/// Runs `verify_<name>.py` (PyJWT and joserfc) and `verify_<name>.mjs` (jose) with `args`:
/// (all accepted, their words).
pub fn libraries_say(name: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let python = venv("jose", "tests/interop/requirements.txt").join("bin/python");
    let interop = node_jose();
    let mut all = true;
    let mut words = String::new();
    for (program, script) in [
        (
            python.as_os_str(),
            interop.join(format!("verify_{name}.py")),
        ),
        ("node".as_ref(), interop.join(format!("verify_{name}.mjs"))),
    ] {
        let out = Command::new(program)
            .arg(script)
            .args(args)
            .output()
            .unwrap();
        all &= out.status.success();
        words += &String::from_utf8_lossy(&out.stdout);
        words += &String::from_utf8_lossy(&out.stderr);
    }
    (all, words)
}

/// What each library says of `receipt` for `arguments` run by `agent`, against the JWKS in
/// `jwks_file` (files written into `dir`): (all accepted, words).
pub fn check_receipt(
    dir: &Path,
    jwks_file: &Path,
    receipt: &str,
    arguments: &str,
    agent: &str,
) -> (bool, String) {
    std::fs::write(dir.join("receipt"), receipt).unwrap();
    std::fs::write(dir.join("arguments.json"), arguments).unwrap();
    let (receipt, arguments) = (dir.join("receipt"), dir.join("arguments.json"));
    libraries_say(
        "receipt",
        &[
            jwks_file.as_os_str(),
            receipt.as_os_str(),
            arguments.as_os_str(),
            agent.as_ref(),
        ],
    )
}
