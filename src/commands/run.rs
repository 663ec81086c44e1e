//! `handoff run`: the stream processor, until SIGTERM/SIGINT or a fatal error.

use super::{init_tracing, load_matrix, load_settings, Failure, Outcome, Result, Started};
use handoff::cli::RunArgs;
use handoff::config::Settings;
use handoff::matrix::Matrix;
use handoff::pipeline::RunReport;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Everything that can be refused is checked before connecting: the settings, the matrix, the
/// metrics address. A stop before the pipeline has started ends the run at once (exit 0).
pub fn run(args: RunArgs, started: Started) -> Result {
    let settings = load_settings(&args.kafka)?;
    let settings = if args.drill {
        settings.drill()
    } else {
        settings
    };
    init_tracing(settings.log.format, &settings.log.level);
    let matrix = Arc::new(load_matrix(settings.matrix.path.as_deref())?);
    tracing::info!(settings = %settings.redacted(), "starting");
    let metrics = started.rt().block_on(bind_metrics(&settings))?;
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

/// The metrics listener, when metrics are on: an address that cannot be bound (in use, not
/// allowed) refuses the run, naming it.
async fn bind_metrics(settings: &Settings) -> Result<Option<TcpListener>> {
    if !settings.metrics.enabled {
        return Ok(None);
    }
    let bind = &settings.metrics.bind;
    TcpListener::bind(bind.as_str())
        .await
        .map(Some)
        .map_err(|e| {
            Failure::usage(anyhow::anyhow!(
                "metrics.bind: cannot listen on {bind}: {e}"
            ))
        })
}

/// Runs the pipeline, serving metrics on `listener` once it has started. `Ok(None)` when a stop
/// came before the pipeline started (connecting, creating topics): nothing was consumed, there
/// is nothing to drain. A stop after the start drains as usual.
async fn run_until_stopped(
    settings: &Settings,
    matrix: Arc<Matrix>,
    listener: Option<TcpListener>,
    started: &Started,
) -> Result<Option<RunReport>> {
    let running = Arc::new(AtomicBool::new(false));
    let on_start = {
        let running = running.clone();
        move |stats: handoff::pipeline::StatsHandle| {
            running.store(true, Ordering::Release);
            if let Some(listener) = listener {
                tokio::spawn(serve_metrics(listener, stats.metrics.clone()));
            }
        }
    };
    let pipeline = handoff::pipeline::run(settings, matrix, started.stopped(), on_start);
    let stopped_early = async {
        started.stopped().await;
        if running.load(Ordering::Acquire) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        report = pipeline => Ok(Some(report?)),
        () = stopped_early => Ok(None),
    }
}

async fn serve_metrics(listener: TcpListener, metrics: handoff::metrics::Metrics) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if let Err(e) = handoff::metrics::serve_on(listener, metrics).await {
        tracing::error!(%addr, error = %e, "cannot serve metrics");
    }
}
