//! A real Prometheus for the tests: Debian's binary (installed with apt-get when missing), the
//! shipped rules evaluated every second, the given jobs scraped every second; instant queries.

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A child process killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `prometheus` binary, installed with apt-get when missing.
pub fn binary() -> String {
    super::needs::prometheus()
}

/// A running Prometheus and the port of its API.
pub struct Prometheus {
    /// Its HTTP port.
    pub port: u16,
    _child: Killed,
}

impl Prometheus {
    /// Starts one in `dir`, with the shipped rules (evaluated every second) and `jobs`
    /// (job name, port on 127.0.0.1) scraped every second.
    pub fn start(dir: &Path, jobs: &[(&str, u16)]) -> Prometheus {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let rules = std::fs::read_to_string(root.join("deploy/prometheus/handoff.rules.yml"))
            .unwrap()
            .replace("interval: 30s", "interval: 1s");
        std::fs::write(dir.join("rules.yml"), rules).unwrap();
        let scrapes: String = jobs
            .iter()
            .map(|(job, port)| {
                format!("  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
            })
            .collect();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
                 scrape_configs:\n{scrapes}",
                dir.join("rules.yml").display()
            ),
        )
        .unwrap();
        let port = handoff::sim::broker::free_port();
        let child = Command::new(binary())
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Prometheus {
            port,
            _child: Killed(child),
        }
    }

    /// Runs an instant query; returns the result array (or panics on an HTTP or PromQL error).
    pub fn query(&self, q: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", handoff::escape::url_component(q));
        let (status, body) = super::http_get(self.port, &path);
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{q}: {e}: {status} {body}"));
        assert_eq!(v["status"], "success", "{q}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

/// True when a sample holds a real number (not NaN: a quantile of an empty histogram or a
/// ratio of zero rates is no data).
pub fn is_value(sample: &Value) -> bool {
    sample["value"][1].as_str().is_some_and(|v| v != "NaN")
}
