//! Every subcommand that talks to Kafka takes its client settings from `--config`, TLS
//! included: against a TLS-only listener, `generate`, `run`, `replay`, `respond` and a
//! wall-clock `gameday` all work, a plaintext client is refused, and a wrong CA stops `run`
//! within `connect_timeout` with an error naming the problem.
//!
//! tansu 0.6.0 cannot serve TLS itself (its `--cert` and `--key` flags are in a clap group that
//! makes them exclusive), so the listener is a TLS-terminating proxy (`tests/tls_proxy.py`) in
//! front of a plain tansu that advertises the proxy's port: clients only ever talk TLS to it.
//! The CA and the server certificate are made here with the `openssl` CLI.

mod common;

use common::kafka::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `connect_timeout` of every config here.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A child process, killed (and reaped) when dropped unless it has exited: nothing a test
/// starts outlives it, whichever assertion fails.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn new(name: &'static str, child: Child) -> Proc {
        Proc { name, child }
    }

    fn sigterm(&self) {
        sigterm(&self.child);
    }

    fn wait(&mut self, within: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                start.elapsed() < within,
                "{} did not exit within {within:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Closing the proxy's standard input also asks it to stop.
        drop(self.child.stdin.take());
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs `openssl ARGS` in `dir`, failing with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test PKI, in one folder.
struct Pki {
    /// The CA that signed the server certificate.
    ca: PathBuf,
    /// An unrelated CA.
    other_ca: PathBuf,
    /// The server certificate (CN and SAN 127.0.0.1, SAN localhost) and its key.
    cert: PathBuf,
    key: PathBuf,
}

/// Makes a self-signed CA `name.pem` (key `name.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let cnf = format!("{name}.cnf");
    std::fs::write(
        dir.join(&cnf),
        format!(
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_ca\n\
             [dn]\nCN = handoff test {name}\n\
             [v3_ca]\nbasicConstraints = critical,CA:TRUE\n\
             keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
        ),
    )
    .unwrap();
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-config", &cnf,
            "-keyout", &key, "-out", &pem,
        ],
    );
    dir.join(pem)
}

fn make_pki(dir: &Path) -> Pki {
    let ca = make_ca(dir, "ca");
    let other_ca = make_ca(dir, "other-ca");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "[srv]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-extensions",
            "srv",
            "-out",
            "server.pem",
        ],
    );
    Pki {
        ca,
        other_ca,
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// A plain tansu behind a TLS proxy; the only advertised listener is the proxy's.
struct TlsBroker {
    port: u16,
    _proxy: Proc,
    _tansu: Proc,
}

impl TlsBroker {
    fn start(dir: &Path, pki: &Pki) -> TlsBroker {
        let memory = handoff::sim::broker::Storage::Memory;
        let tansu =
            handoff::sim::broker::tansu_for(&memory).expect("tansu, installed on first use");
        let (plain, tls) = (
            handoff::sim::broker::free_port(),
            handoff::sim::broker::free_port(),
        );
        let tansu = Proc::new(
            "tansu",
            Command::new(tansu)
                .args(["broker", "--listener-url"])
                .arg(format!("tcp://127.0.0.1:{plain}"))
                .arg("--advertised-listener-url")
                .arg(format!("tcp://127.0.0.1:{tls}"))
                .args(["--storage-engine", "memory://tansu/"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("tansu.log")).unwrap())
                .spawn()
                .unwrap(),
        );
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", plain)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tansu does not listen on {plain}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls_proxy.py");
        let mut proxy = Proc::new(
            "tls proxy",
            Command::new("python3")
                .arg(script)
                .args(["--listen", &tls.to_string()])
                .args(["--upstream", &plain.to_string()])
                .arg("--cert")
                .arg(&pki.cert)
                .arg("--key")
                .arg(&pki.key)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(dir.join("proxy.log")).unwrap())
                .spawn()
                .unwrap(),
        );
        let mut first = String::new();
        let stdout = proxy.child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut first).unwrap();
        assert_eq!(
            first.trim(),
            "ready",
            "the proxy did not start: {}",
            std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default()
        );
        TlsBroker {
            port: tls,
            _proxy: proxy,
            _tansu: tansu,
        }
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A settings file for the cluster at `bootstrap`; with `ca`, TLS verified against it.
fn config(dir: &Path, name: &str, bootstrap: &str, ca: Option<&Path>) -> PathBuf {
    let tls = match ca {
        Some(ca) => format!(
            "[kafka.common]\n\"security.protocol\" = \"ssl\"\n\"ssl.ca.location\" = {:?}\n",
            ca.display().to_string()
        ),
        None => String::new(),
    };
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ngroup_id = \"tls\"\n{tls}\
             [pipeline]\nshutdown_deadline = \"10s\"\nconnect_timeout = \"{}s\"\n\
             [log]\nlevel = \"info\"\n[metrics]\nbind = \"127.0.0.1:0\"\n",
            CONNECT_TIMEOUT.as_secs()
        ),
    )
    .unwrap();
    p
}

/// `handoff ARGS` started with its standard error going to `DIR/LABEL.err`.
fn spawn_handoff<S: AsRef<OsStr>>(dir: &Path, label: &str, args: &[S]) -> (Child, PathBuf) {
    let err = dir.join(format!("{label}.err"));
    let child = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("{label}.out"))).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    (child, err)
}

/// Runs `handoff ARGS` to its end (failing after `within`): its status, standard error and
/// how long it took.
fn handoff<S: AsRef<OsStr>>(
    dir: &Path,
    label: &'static str,
    args: &[S],
    within: Duration,
) -> (ExitStatus, String, Duration) {
    let started = Instant::now();
    let (child, err) = spawn_handoff(dir, label, args);
    let mut p = Proc::new(label, child);
    let status = p.wait(within);
    let stderr = std::fs::read_to_string(err).unwrap();
    (status, stderr, started.elapsed())
}

/// The number before `needle` in `text` (`"300 record(s) copied"` → 300).
fn count_before(text: &str, needle: &str) -> Option<u64> {
    let at = text.find(needle)?;
    text[..at].split_whitespace().last()?.parse().ok()
}

/// The number after `needle` in `text` (`"answered 12, …"` → 12).
fn count_after(text: &str, needle: &str) -> Option<u64> {
    let at = text.find(needle)? + needle.len();
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

#[test]
fn every_kafka_subcommand_works_against_a_tls_only_listener() {
    let _g = serial();
    let started = Instant::now();
    let dir = tmpdir("tls-all");
    let pki = make_pki(&dir);
    let b = TlsBroker::start(&dir, &pki);
    let cfg = config(&dir, "tls", &b.bootstrap(), Some(&pki.ca));
    let cfg = cfg.to_str().unwrap();

    // 1. generate over TLS.
    let (status, err, took) = handoff(
        &dir,
        "generate",
        &[
            "generate",
            "--config",
            cfg,
            "--topic",
            INPUT,
            "--count",
            "300",
            "--trigger-boost",
            "4",
        ],
        Duration::from_secs(60),
    );
    assert!(status.success(), "generate: {status}: {err}");
    assert!(
        err.contains("300 events delivered to agent.actions"),
        "{err}"
    );
    eprintln!("generate over TLS: {took:?}");

    // 2. run decides them; replay reads the verdicts back until all 300 are there. Each
    // attempt copies to a topic of its own, outside drill.agent.verdicts, which the
    // wall-clock game day below reads.
    let (run, run_log) = spawn_handoff(&dir, "run", &["run", "--config", cfg]);
    let mut run = Proc::new("handoff run", run);
    wait_log(&run_log, "partitions assigned", Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut copied = 0;
    for attempt in 0.. {
        let to = format!("drill.tls.verdicts.{attempt}");
        let (status, err, _) = handoff(
            &dir,
            "replay",
            &[
                "replay", "--config", cfg, "--topic", VERDICTS, "--into", &to, "--speed", "max",
            ],
            Duration::from_secs(60),
        );
        // A replay reads to where the topic ended when it started: before the first verdict
        // is written, that is nothing (a clear error), and the next attempt copies more.
        let empty = err.contains("has no records at all");
        assert!(status.success() || empty, "replay: {status}: {err}");
        copied = match empty {
            true => 0,
            false => count_before(&err, "record(s) copied").unwrap_or_else(|| panic!("{err}")),
        };
        if copied >= 300 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        copied >= 300,
        "{copied} verdicts copied; run's log:\n{}",
        std::fs::read_to_string(&run_log).unwrap()
    );

    // 3. respond answers escalations for a while, then reports on SIGTERM.
    let (respond, respond_err) = spawn_handoff(
        &dir,
        "respond",
        &[
            "respond", "--config", cfg, "--delay", "500ms", "--jitter", "500ms",
        ],
    );
    let mut respond = Proc::new("handoff respond", respond);
    std::thread::sleep(Duration::from_secs(8));
    respond.sigterm();
    let status = respond.wait(Duration::from_secs(30));
    let err = std::fs::read_to_string(&respond_err).unwrap();
    assert!(status.success(), "respond: {status}: {err}");
    let read = count_after(&err, "escalations read ").unwrap_or_else(|| panic!("{err}"));
    let answered = count_after(&err, "answered ").unwrap_or_else(|| panic!("{err}"));
    assert!(read > 0 && answered > 0, "{err}");
    eprintln!("respond over TLS: read {read}, answered {answered}");

    run.sigterm();
    let status = run.wait(Duration::from_secs(30));
    assert!(
        status.success(),
        "run: {status}: {}",
        std::fs::read_to_string(&run_log).unwrap()
    );

    // 4. A wall-clock game day against a live `run --drill`, over TLS.
    let (drill, drill_log) = spawn_handoff(&dir, "drill", &["run", "--drill", "--config", cfg]);
    let mut drill = Proc::new("handoff run --drill", drill);
    wait_log(&drill_log, "partitions assigned", Duration::from_secs(60));
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, live_scenario("tls flash", "10s")).unwrap();
    let out = dir.join("gameday");
    let (status, err, took) = handoff(
        &dir,
        "gameday",
        &[
            OsStr::new("gameday"),
            scenario.as_os_str(),
            OsStr::new("--config"),
            OsStr::new(cfg),
            OsStr::new("--wall-clock"),
            OsStr::new("--grace"),
            OsStr::new("8s"),
            OsStr::new("--out"),
            out.as_os_str(),
        ],
        Duration::from_secs(90),
    );
    assert!(status.success(), "gameday: {status}: {err}");
    eprintln!("wall-clock gameday over TLS: {took:?}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(report["events"].as_u64().unwrap() >= 100, "{report}");
    let escalations: u64 = report["roles"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["escalations"].as_u64().unwrap())
        .sum();
    assert!(escalations >= 10, "{report}");
    assert!(report["roles"]["trader"]["acknowledged"].as_u64().unwrap() >= 1);
    drill.sigterm();
    let status = drill.wait(Duration::from_secs(30));
    assert!(
        status.success(),
        "run --drill: {status}: {}",
        std::fs::read_to_string(&drill_log).unwrap()
    );
    eprintln!("TLS test: {:?}", started.elapsed());
}

#[test]
fn the_listener_refuses_a_plaintext_client() {
    let _g = serial();
    let dir = tmpdir("tls-plaintext");
    let pki = make_pki(&dir);
    let b = TlsBroker::start(&dir, &pki);
    // A client without the TLS settings gets nowhere: the listener is TLS-only.
    let plain = config(&dir, "plain", &b.bootstrap(), None);
    let (status, err, took) = handoff(
        &dir,
        "plain",
        &[
            "generate",
            "--config",
            plain.to_str().unwrap(),
            "--topic",
            INPUT,
            "--count",
            "10",
        ],
        CONNECT_TIMEOUT + Duration::from_secs(10),
    );
    eprintln!("plaintext generate: {status} after {took:?}:\n{err}");
    assert_eq!(
        status.code(),
        Some(3),
        "a plaintext client was served: {err}"
    );
    assert!(err.contains("cannot reach Kafka"), "{err}");
}

#[test]
fn a_wrong_ca_stops_run_within_connect_timeout_naming_the_problem() {
    let _g = serial();
    let dir = tmpdir("tls-wrong-ca");
    let pki = make_pki(&dir);
    let b = TlsBroker::start(&dir, &pki);
    let wrong = config(&dir, "wrong-ca", &b.bootstrap(), Some(&pki.other_ca));
    let (status, err, took) = handoff(
        &dir,
        "wrong-ca",
        &["run", "--config", wrong.to_str().unwrap()],
        CONNECT_TIMEOUT + Duration::from_secs(10),
    );
    eprintln!("run with a wrong CA: {status} after {took:?}:\n{err}");
    assert_eq!(status.code(), Some(3), "a runtime failure: {err}");
    assert!(took < CONNECT_TIMEOUT + Duration::from_secs(5), "{took:?}");
    // librdkafka's words (OpenSSL's reason): "SSL handshake failed: error:0A000086:SSL
    // routines::certificate verify failed: broker certificate could not be verified, verify
    // that ssl.ca.location is correctly configured …".
    assert!(
        err.contains("certificate verify failed"),
        "the error does not name the TLS problem:\n{err}"
    );
}
