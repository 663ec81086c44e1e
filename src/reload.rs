//! Rules that change without a restart. Three triggers — SIGHUP, `POST /-/reload` and
//! `[matrix] watch` — all send a [`Request`] to one task running a [`Reloader`], so reloads never
//! overlap and all have the same effect:
//!
//! read the file → compile and validate it (every problem listed, as `handoff check` does) →
//! create the topics of roles it adds → install it in [`Rules`]. Workers take it between
//! records. Any failure keeps the old rules deciding.

use crate::config::Settings;
use crate::kafka;
use crate::matrix::{Matrix, MatrixError, Rules};
use crate::metrics::rules::ReloadResult;
use crate::metrics::RuleMetrics;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP.
    Signal,
    /// `POST /-/reload`.
    Http,
    /// The file's content changed (`[matrix] watch`).
    Watch,
}

impl Trigger {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::Http => "POST /-/reload",
            Trigger::Watch => "watch",
        }
    }
}

/// A reload that did something or had nothing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// New rules decide from the next record on.
    Installed {
        /// The version replaced.
        from: String,
        /// The version now deciding.
        to: String,
    },
    /// The file compiles to the version already deciding.
    Unchanged {
        /// That version.
        version: String,
    },
}

impl std::fmt::Display for Reloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reloaded::Installed { from, to } => write!(f, "reloaded: {from} -> {to}"),
            Reloaded::Unchanged { version } => write!(f, "unchanged: {version}"),
        }
    }
}

/// Why a reload was refused: the old rules still decide.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The process decides with the built-in matrix: there is no file to reload.
    #[error("no [matrix] path is configured: the built-in default matrix cannot be reloaded")]
    NoFile,
    /// The file cannot be read or has problems (every one listed).
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// A role topic the new rules need could not be created.
    #[error("the new rules' role topics could not be created: {0}")]
    Topics(#[from] kafka::Error),
}

/// A reload request; `reply` gets the result when someone waits for it.
#[derive(Debug)]
pub struct Request {
    /// Who asked.
    pub trigger: Trigger,
    /// Where the result goes.
    pub reply: Option<oneshot::Sender<Result<Reloaded, String>>>,
}

/// Loads, checks and installs new rules.
pub struct Reloader {
    path: Option<PathBuf>,
    rules: Arc<Rules>,
    metrics: RuleMetrics,
    /// Role topics are created with these settings when `kafka.create_topics` is on.
    settings: Option<Settings>,
}

impl Reloader {
    /// A reloader of the file at `path` (none: the built-in default) into `rules`. With
    /// `settings`, the topics of roles a reload adds are created before it is installed.
    pub fn new(
        path: Option<PathBuf>,
        rules: Arc<Rules>,
        metrics: RuleMetrics,
        settings: Option<Settings>,
    ) -> Self {
        Reloader {
            path,
            rules,
            metrics,
            settings,
        }
    }

    /// Reloads once, logging and counting the result.
    pub async fn reload(&self, trigger: Trigger) -> Result<Reloaded, ReloadError> {
        let result = self.try_reload().await;
        let (from, _) = self.rules.current();
        match &result {
            Ok(Reloaded::Installed { from, to }) => {
                self.metrics.reloaded(ReloadResult::Success, to);
                tracing::info!(trigger = trigger.as_str(), from = %from, to = %to, "rules reloaded: new events are decided with the new version");
            }
            Ok(Reloaded::Unchanged { version }) => {
                self.metrics.reloaded(ReloadResult::Unchanged, version);
                tracing::info!(trigger = trigger.as_str(), version = %version, "rules reload: same rules, nothing to do");
            }
            Err(e) => {
                self.metrics.reloaded(ReloadResult::Failure, from.version());
                tracing::error!(
                    trigger = trigger.as_str(),
                    still_deciding = from.version(),
                    "rules reload refused, the old rules keep deciding: {e}"
                );
            }
        }
        result
    }

    async fn try_reload(&self) -> Result<Reloaded, ReloadError> {
        let path = self.path.clone().ok_or(ReloadError::NoFile)?;
        // Compiling a matrix (patterns, phrase automata, redaction expressions) is CPU work:
        // off the async workers.
        let new = tokio::task::spawn_blocking(move || Matrix::from_file(&path))
            .await
            .expect("compiling a matrix does not panic")?;
        let (old, _) = self.rules.current();
        if new.version() == old.version() {
            return Ok(Reloaded::Unchanged {
                version: new.version().to_string(),
            });
        }
        if let Some(s) = self.settings.as_ref().filter(|s| s.kafka.create_topics) {
            let added = added_role_topics(s, &old, &new);
            if !added.is_empty() {
                kafka::admin::ensure_topics(s, &added).await?;
            }
        }
        let to = new.version().to_string();
        self.rules.install(Arc::new(new));
        Ok(Reloaded::Installed {
            from: old.version().to_string(),
            to,
        })
    }

    /// Answers requests one at a time until every sender is gone.
    pub async fn serve(self, mut requests: mpsc::Receiver<Request>) {
        while let Some(r) = requests.recv().await {
            let result = self.reload(r.trigger).await.map_err(|e| e.to_string());
            if let Some(reply) = r.reply {
                let _ = reply.send(result);
            }
        }
    }
}

/// Topics of the roles `new` has and `old` has not (and their drill twins' topics).
fn added_role_topics(settings: &Settings, old: &Matrix, new: &Matrix) -> Vec<String> {
    let had: Vec<&str> = old.roles().iter().map(|r| r.topic.as_str()).collect();
    let added: Vec<&str> = new
        .roles()
        .iter()
        .map(|r| r.topic.as_str())
        .filter(|t| !had.contains(t))
        .collect();
    let mut prefixes = vec![settings.topics.role_prefix.clone()];
    if !settings.is_drill() {
        // Drill-marked records reaching production are decided by a twin writing drill topics.
        prefixes.push(settings.drill().topics.role_prefix);
    }
    prefixes
        .iter()
        .flat_map(|p| added.iter().map(move |t| format!("{p}{t}")))
        .collect()
}

/// The SHA-256 of a file's content (`None` when it cannot be read: a ConfigMap update swaps a
/// symlink, and the file can be briefly missing).
pub fn content_hash(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| Sha256::digest(&b).into())
}

/// Polls `path` every `every` and asks for a reload each time its content changes (not its
/// modification time: a touch does nothing, a ConfigMap's symlink swap reloads once).
pub async fn watch(path: PathBuf, every: Duration, requests: mpsc::Sender<Request>) {
    let mut last = content_hash(&path);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(now) = content_hash(&path) else {
            continue;
        };
        if Some(now) == last {
            continue;
        }
        last = Some(now);
        let request = Request {
            trigger: Trigger::Watch,
            reply: None,
        };
        if requests.send(request).await.is_err() {
            return;
        }
    }
}

/// Asks for a reload on every SIGHUP (instead of SIGHUP's default: ending the process).
#[cfg(unix)]
pub async fn on_sighup(requests: mpsc::Sender<Request>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    while hup.recv().await.is_some() {
        let request = Request {
            trigger: Trigger::Signal,
            reply: None,
        };
        if requests.send(request).await.is_err() {
            break;
        }
    }
    Ok(())
}
