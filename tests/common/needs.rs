//! What the tests need from the machine, installed on first use from one place, so `cargo test`
//! passes on a fresh machine with nothing installed by hand: Debian packages (Prometheus,
//! Chromium and its WebDriver) here; the broker (`deploy/broker.sh install`, through
//! `handoff::sim::broker`), the Python venvs (`python.rs`) and the Node packages (`jose.rs`)
//! beside their users. A failed install says what was tried and how to do it by hand.
#![allow(dead_code)]

use std::process::Command;

/// `binary` (a name on `PATH` or an absolute path), installing the Debian `packages` with
/// apt-get when it is missing. Installs are serialized across test processes (flock).
pub fn apt_binary(binary: &str, packages: &[&str]) -> String {
    if runs(binary) {
        return binary.to_string();
    }
    let list = packages.join(" ");
    eprintln!("{binary} is missing: installing the Debian package(s) {list} (once)");
    let script = format!(
        "command -v {binary} >/dev/null || {{ apt-get update -qq && \
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {list}; }}"
    );
    let installed = Command::new("flock")
        .args(["/tmp/handoff-tests-apt.lock", "sh", "-c", &script])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        installed && runs(binary),
        "{binary} is not installed and `apt-get install {list}` failed: install it by hand \
         (as root: apt-get install {list}), or run .ci/run, which does"
    );
    binary.to_string()
}

fn runs(binary: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Prometheus (and promtool).
pub fn prometheus() -> String {
    apt_binary("prometheus", &["prometheus"])
}

/// Chromium and chromedriver: the path of chromedriver (`CHROMEDRIVER` when set).
pub fn chromedriver() -> String {
    if let Ok(bin) = std::env::var("CHROMEDRIVER") {
        return bin;
    }
    apt_binary("chromium", &["chromium", "chromium-driver"]);
    apt_binary("chromedriver", &["chromium", "chromium-driver"])
}
