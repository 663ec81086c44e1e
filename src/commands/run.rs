//! `handoff run`: the stream processor, until SIGTERM/SIGINT or a fatal error.

use super::{init_tracing, load_matrix, load_settings, CommandRuntime, Outcome, Result};
use handoff::cli::RunArgs;
use handoff::config::Settings;
use handoff::matrix::Matrix;
use handoff::matrix::Rules;
use handoff::pipeline::{RunReport, Running};
use handoff::reload::{self, Reloader, Request};
use handoff::serve::Endpoints;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc::Sender;

/// Everything that can be refused is checked before connecting: the settings, the matrix, the
/// metrics address. A stop before the pipeline has started ends the run at once (exit 0).
pub fn run(args: RunArgs, started: CommandRuntime) -> Result {
    let settings = load_settings(&args.kafka)?;
    let settings = if args.drill {
        settings.drill()
    } else {
        settings
    };
    init_tracing(settings.log.format, &settings.log.level);
    let matrix = Arc::new(load_matrix(settings.matrix.path.as_deref())?);
    tracing::info!(settings = %settings.redacted(), "starting");
    let metrics = started.rt().block_on(super::bind_metrics(&settings))?;
    let run = run_until_stopped(&settings, matrix, metrics, &started);
    let Some(report) = started.rt().block_on(run)? else {
        eprintln!("stopped before start-up finished");
        return Ok(Outcome::Success);
    };
    let s = report.stats;
    tracing::info!(
        consumed = s.consumed,
        decided = s.decided(),
        dead_letters = s.dead_letters,
        "drained and committed"
    );
    Ok(Outcome::Success)
}

/// Runs the pipeline, serving the HTTP endpoints on `listener` from the start and reloading
/// the rules on request. `Ok(None)` when a stop came before the pipeline started (connecting,
/// creating topics): nothing was consumed, there is nothing to drain. A stop after the start
/// drains as usual.
async fn run_until_stopped(
    settings: &Settings,
    matrix: Arc<Matrix>,
    listener: Option<TcpListener>,
    started: &CommandRuntime,
) -> Result<Option<RunReport>> {
    let rules = Rules::new(matrix);
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(8);
    let endpoints = Endpoints::default().reloading(&settings.metrics, reload_tx.clone());
    if let Some(listener) = listener {
        let m = settings.metrics.clone();
        tokio::spawn(super::serve_endpoints(listener, endpoints.clone(), m));
    }
    start_reload_triggers(settings, reload_tx);
    // The reloader serves requests once the pipeline runs (its metrics are the pipeline's);
    // the start callback only hands things over.
    let (metrics_tx, metrics_rx) = tokio::sync::oneshot::channel();
    {
        let (settings, rules) = (settings.clone(), rules.clone());
        tokio::spawn(async move {
            let Ok(metrics) = metrics_rx.await else {
                return;
            };
            let path = settings.matrix.path.clone();
            let reloader = Reloader::new(path, rules, metrics, Some(settings));
            reloader.serve(reload_rx).await;
        });
    }
    let running = endpoints.running.clone();
    let on_start = move |r: Running| {
        let _ = metrics_tx.send(r.stats.metrics.rules().clone());
        let _ = endpoints.running.set(r);
    };
    let pipeline = handoff::pipeline::run(settings, rules, started.stopped(), on_start);
    let stopped_early = async {
        started.stopped().await;
        if running.get().is_some() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        report = pipeline => Ok(Some(report?)),
        () = stopped_early => Ok(None),
    }
}

/// SIGHUP always asks for a reload (it no longer ends the process); `[matrix] watch` polls the
/// file when set. Requests wait in the channel until the pipeline has started.
fn start_reload_triggers(settings: &Settings, requests: Sender<Request>) {
    if let (Some(path), Some(every)) = (&settings.matrix.path, settings.matrix.watch) {
        tokio::spawn(reload::watch(path.clone(), every, requests.clone()));
    }
    tokio::spawn(async move {
        if let Err(e) = reload::on_sighup(requests).await {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: reload with POST /-/reload");
        }
    });
}
