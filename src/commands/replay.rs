//! `handoff replay`: copy a topic, or a time range of it, into the drill namespace.

use super::{init_tracing, load_settings, progress_bar, Failure, Outcome, Result};
use handoff::cli::ReplayArgs;
use handoff::config::{LogFormat, DRILL_PREFIX};
use handoff::replay::copy::{ReplayError, ReplayOptions};
use handoff::replay::source::Range;

/// A target outside `drill.` is bad usage; everything else that fails is a runtime failure.
pub fn run(args: ReplayArgs) -> Result {
    init_tracing(LogFormat::Text, "warn");
    let settings = load_settings(&args.kafka)?;
    let to = args
        .to
        .unwrap_or_else(|| format!("{DRILL_PREFIX}{}", args.from));
    let opts = ReplayOptions {
        from: args.from,
        to,
        range: Range {
            from_ms: args.from_ms,
            to_ms: args.to_ms,
        },
        speed: args.speed,
        checkpoint: args.checkpoint,
    };
    let bar = progress_bar("records");
    let report = handoff::replay::copy::replay(&settings, &opts, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish();
    let report = report.map_err(|e| match e {
        ReplayError::NotDrill(_) => Failure::usage(e),
        e => e.into(),
    })?;
    eprintln!(
        "{} record(s) copied {} → {} in {:.1?} ({} s of recorded traffic){}",
        report.copied,
        opts.from,
        opts.to,
        report.elapsed,
        report.recorded_span_ms / 1000,
        if report.resumed { ", resumed" } else { "" }
    );
    Ok(Outcome::Success)
}
