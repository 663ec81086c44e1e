//! The local Kafka-compatible broker (tansu): found on the PATH or in `~/.cargo/bin`, installed
//! when missing (a broker in memory: the prebuilt binary of [`super::prebuilt`]; with SQLite
//! storage: built with cargo), started on a loopback port, stopped when dropped. Used by the
//! demo, the integration tests and the benchmarks; `deploy/broker.sh` does the same from the
//! shell.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::prebuilt::TANSU_VERSION;

/// Why the broker could not be had.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// tansu is not installed.
    #[error("tansu is not installed: run `deploy/broker.sh install` (or `cargo install tansu --version {TANSU_VERSION} --locked --features dynostore,libsql`)")]
    NotInstalled,
    /// Installing failed.
    #[error("installing tansu failed: {0}")]
    Install(String),
    /// It did not start or answer.
    #[error("the broker on 127.0.0.1:{port} did not start: {message}")]
    Start {
        /// Port.
        port: u16,
        /// What happened.
        message: String,
    },
}

/// Where tansu is, if installed.
pub fn find_tansu() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin")));
    candidates.map(|d| d.join("tansu")).find(|p| p.is_file())
}

/// The tansu to run a broker with `storage`: one built from source when there is one; for
/// memory storage else the prebuilt one ([`super::prebuilt`], fetched on first use; built from
/// source when that fails); for SQLite storage one built from source (built on first use).
pub fn tansu_for(storage: &Storage) -> Result<PathBuf, BrokerError> {
    if let Some(p) = find_tansu() {
        return Ok(p);
    }
    if let Storage::Sqlite(_) = storage {
        return install();
    }
    match super::prebuilt::install() {
        Ok(p) => Ok(p),
        Err(e) => {
            eprintln!(
                "the prebuilt tansu could not be had ({e}); building tansu from source instead"
            );
            install()
        }
    }
}

/// Installs tansu with cargo (about 9 minutes on 2 cores), showing cargo's output. One install
/// at a time in a process (cargo serializes processes).
pub fn install() -> Result<PathBuf, BrokerError> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = find_tansu() {
        return Ok(p);
    }
    eprintln!("tansu (the local Kafka-compatible broker) is not installed; installing it with cargo, about 9 minutes…");
    let status = Command::new("cargo")
        .args([
            "install",
            "tansu",
            "--version",
            TANSU_VERSION,
            "--locked",
            "--features",
            "dynostore,libsql",
        ])
        .status()
        .map_err(|e| BrokerError::Install(e.to_string()))?;
    if !status.success() {
        return Err(BrokerError::Install(format!(
            "cargo install exited with {status}"
        )));
    }
    find_tansu().ok_or(BrokerError::NotInstalled)
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Storage of a local broker.
#[derive(Debug, Clone)]
pub enum Storage {
    /// In memory: gone with the process.
    Memory,
    /// A SQLite file: survives a broker restart.
    Sqlite(PathBuf),
}

/// A running local broker; killed when dropped.
#[derive(Debug)]
pub struct LocalBroker {
    child: Child,
    port: u16,
}

impl LocalBroker {
    /// Starts tansu on `127.0.0.1:port` and waits until it accepts connections.
    pub fn start(port: u16, storage: Storage) -> Result<LocalBroker, BrokerError> {
        LocalBroker::start_with(port, storage, &[])
    }

    /// [`LocalBroker::start`] with more of tansu's broker flags (e.g. `--authentication`).
    pub fn start_with(
        port: u16,
        storage: Storage,
        flags: &[&str],
    ) -> Result<LocalBroker, BrokerError> {
        let tansu = tansu_for(&storage)?;
        let url = format!("tcp://127.0.0.1:{port}");
        // tansu 0.6.0 opens a SQLite path relative to its working directory, even one
        // written as absolute: it runs in the file's directory and is given the file's name.
        let (engine, cwd) = match &storage {
            Storage::Memory => ("memory://tansu/".to_string(), None),
            Storage::Sqlite(p) => {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                (
                    format!("sqlite://{}", name.unwrap_or_default()),
                    dir.map(Path::to_path_buf),
                )
            }
        };
        let mut command = Command::new(tansu);
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        let child = command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                &engine,
            ])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BrokerError::Start {
                port,
                message: e.to_string(),
            })?;
        let mut b = LocalBroker { child, port };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(b);
            }
            if let Ok(Some(status)) = b.child.try_wait() {
                return Err(BrokerError::Start {
                    port,
                    message: format!("tansu exited with {status}"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(BrokerError::Start {
            port,
            message: "no answer within 30 s".into(),
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's process id (tests pause it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the broker.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        self.stop();
    }
}
