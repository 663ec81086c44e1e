//! One module per subcommand, each with a `run` function; here what they share: how a command
//! ends ([`Outcome`], [`Failure`]), the runtime and the stop signal ([`CommandRuntime`]), logging, and
//! the Kafka settings of the commands that talk to a cluster.

pub mod audit;
pub mod canary;
pub mod check;
pub mod demo;
pub mod diff;
pub mod eval;
pub mod gameday;
pub mod gateway;
pub mod generate;
pub mod inbox;
pub mod keygen;
pub mod receipt;
pub mod replay;
pub mod respond;
pub mod run;
pub mod suggest;
pub mod tail;
pub mod test_rules;

use handoff::cli::KafkaArgs;
use handoff::config::{LogFormat, Settings};
use handoff::matrix::Matrix;
use std::future::Future;
use std::path::Path;
use tokio::sync::watch;

/// How a command that ran to its end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked and everything checked out.
    Success,
    /// It ran, and what it checked failed: an invalid matrix, bad input lines, failed rule
    /// cases, a relaxed hard_stop. It has said what on its output.
    ChecksFailed,
}

/// Why a command stopped short.
#[derive(Debug)]
pub enum Failure {
    /// The command line, the configuration or a file it names cannot be used.
    Usage(anyhow::Error),
    /// Something failed while running: Kafka, delivery, draining, I/O.
    Runtime(anyhow::Error),
}

impl Failure {
    /// Marks an error as bad usage or configuration: `.map_err(Failure::usage)`.
    pub fn usage(e: impl Into<anyhow::Error>) -> Failure {
        Failure::Usage(e.into())
    }
}

/// `?` on any other error: a runtime failure.
impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Runtime(e.into())
    }
}

/// What a command returns.
pub type Result<T = Outcome> = std::result::Result<T, Failure>;

/// Fails with a usage error unless `ok`.
pub fn ensure_usage(ok: bool, message: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Failure::Usage(anyhow::anyhow!(message())))
    }
}

/// Refuses an inverted or empty time range as bad usage.
pub fn ensure_range(from: Option<i64>, to: Option<i64>) -> Result<()> {
    handoff::cli::check_range(from, to).map_err(|e| Failure::usage(anyhow::anyhow!(e)))
}

/// The runtime of a command that stops cleanly on SIGTERM or SIGINT, with the signal handler
/// already installed: made first, before the command reads its configuration or connects, so a
/// stop request at any moment is seen, never fatal.
pub struct CommandRuntime {
    rt: Option<tokio::runtime::Runtime>,
    stop: watch::Receiver<bool>,
}

impl CommandRuntime {
    /// Builds the runtime and installs the handlers.
    pub fn now() -> Result<CommandRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (tx, stop) = watch::channel(false);
        let signals = {
            let _in_runtime = rt.enter();
            Signals::install()?
        };
        rt.spawn(async move {
            signals.recv().await;
            tracing::info!("stop requested: draining");
            let _ = tx.send(true);
        });
        Ok(CommandRuntime { rt: Some(rt), stop })
    }

    /// The runtime.
    pub fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("present until dropped")
    }

    /// True once a stop has been requested.
    pub fn stop_requested(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once a stop has been requested (at once if it already has been).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.clone();
        async move {
            if rx.wait_for(|s| *s).await.is_err() {
                // No stop can come any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for CommandRuntime {
    /// Does not wait for blocking work still running (a reachability check that a stop cut
    /// short): the command is over.
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// SIGTERM and SIGINT, registered with the runtime.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the handlers now; needs the runtime entered.
    fn install() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The first of them.
    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Logs to standard error at `level` (a `tracing` filter), in colour only when standard error
/// is a terminal and `NO_COLOR` is unset or empty (<https://no-color.org>): a log redirected to
/// a file or a pipe carries no escape codes.
pub fn init_tracing(format: LogFormat, level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // A span's close is logged with its fields: the pipeline's per-batch span (debug level) then
    // reports each batch's counts and time when the filter lets debug through.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The settings of a command that talks to Kafka, layered as for `run`: defaults, then the
/// `--config` file, then `HANDOFF_…` variables; then `--bootstrap` over
/// `kafka.bootstrap_servers`. Unusable settings are a usage error listing every problem.
pub fn load_settings(args: &KafkaArgs) -> Result<Settings> {
    let mut settings = Settings::load(args.config.as_deref()).map_err(Failure::usage)?;
    if let Some(bootstrap) = &args.bootstrap {
        settings.kafka.bootstrap_servers = bootstrap.clone();
        let mut problems = handoff::problems::Problems::default();
        settings.validate(&mut problems);
        ensure_usage(problems.is_empty(), || {
            format!("--bootstrap {bootstrap:?}: the settings have problems:\n{problems}")
        })?;
    }
    settings.with_secrets().map_err(Failure::usage)
}

/// The matrix at `path` (the shipped one without): unreadable or invalid is a usage error.
pub fn load_matrix(path: Option<&Path>) -> Result<Matrix> {
    Matrix::load(path).map_err(Failure::usage)
}

/// The metrics listener, when metrics are on: an address that cannot be bound (in use, not
/// allowed) is a usage error naming it.
pub async fn bind_metrics(settings: &Settings) -> Result<Option<tokio::net::TcpListener>> {
    if !settings.metrics.enabled {
        return Ok(None);
    }
    let bind = &settings.metrics.bind;
    tokio::net::TcpListener::bind(bind.as_str())
        .await
        .map(Some)
        .map_err(|e| {
            Failure::usage(anyhow::anyhow!(
                "metrics.bind: cannot listen on {bind}: {e}"
            ))
        })
}

/// Serves `/metrics`, `/healthz`, `/readyz` (and `/-/reload` when reloads are taken) on
/// `listener` until the process ends.
pub async fn serve_endpoints(
    listener: tokio::net::TcpListener,
    endpoints: handoff::serve::Endpoints,
    settings: handoff::config::MetricsSettings,
) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if let Err(e) = handoff::serve::serve_on(listener, endpoints, &settings).await {
        tracing::error!(%addr, error = %e, "cannot serve metrics and probes");
    }
}

/// A progress bar counting `what` (records, events).
pub fn progress_bar(what: &str) -> indicatif::ProgressBar {
    let template = format!("{{bar:40}} {{pos}}/{{len}} {what}  {{per_sec}}  ETA {{eta}}");
    indicatif::ProgressBar::new(0)
        .with_style(indicatif::ProgressStyle::with_template(&template).expect("a valid template"))
}
