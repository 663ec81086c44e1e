//! `handoff replay`: copy a topic, or a time range of it, into the drill namespace.

use super::{init_tracing, load_settings, progress_bar, Failure, Outcome, Result};
use handoff::cli::ReplayArgs;
use handoff::config::{LogFormat, DRILL_PREFIX};
use handoff::kafka::range::Range;
use handoff::replay::copy::{ReplayError, ReplayOptions};

/// A target outside `drill.` is bad usage; everything else that fails is a runtime failure.
pub fn run(args: ReplayArgs) -> Result {
    init_tracing(LogFormat::Text, "warn");
    let settings = load_settings(&args.kafka)?;
    let (from_ms, old_topic) = time_or_topic("--from", args.from.as_deref(), "--topic")?;
    let (to_ms, old_into) = time_or_topic("--to", args.to.as_deref(), "--into")?;
    let topic = old_topic.unwrap_or(args.topic);
    let into = args.into.or(old_into);
    super::ensure_usage(from_ms.is_none() || args.from_ms.is_none(), || {
        "give the range's start once: --from (--from-ms is its old spelling)".into()
    })?;
    super::ensure_usage(to_ms.is_none() || args.to_ms.is_none(), || {
        "give the range's end once: --to (--to-ms is its old spelling)".into()
    })?;
    let from_ms = from_ms.or(deprecated("--from-ms", "--from", args.from_ms));
    let to_ms = to_ms.or(deprecated("--to-ms", "--to", args.to_ms));
    super::ensure_range(from_ms, to_ms)?;
    let to = into.unwrap_or_else(|| format!("{DRILL_PREFIX}{topic}"));
    let opts = ReplayOptions {
        from: topic,
        to,
        range: Range { from_ms, to_ms },
        speed: args.speed,
        checkpoint: args.checkpoint,
    };
    handoff::kafka::admin::wait_reachable(&settings)?;
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

/// `--from`/`--to` take times, as in every other command; a value that is not a time but a
/// topic name is the old spelling (`--from TOPIC`, `--to drill.TOPIC`): taken as the topic, with
/// a deprecation note naming the new flag.
fn time_or_topic(
    flag: &str,
    value: Option<&str>,
    topic_flag: &str,
) -> Result<(Option<i64>, Option<String>)> {
    let Some(v) = value else {
        return Ok((None, None));
    };
    match handoff::cli::parse_time(v) {
        Ok(ms) => Ok((Some(ms), None)),
        Err(_) if handoff::matrix::is_topic_name(v) => {
            eprintln!(
                "warning: `{flag} {v}` names a topic, which is deprecated: use `{topic_flag} {v}` \
                 ({flag} takes a time, RFC 3339 or ms since the epoch, as in every command)"
            );
            Ok((None, Some(v.to_string())))
        }
        Err(e) => Err(Failure::usage(anyhow::anyhow!("{flag} {v:?}: {e}"))),
    }
}

/// A deprecated flag's value, with a note naming its replacement.
pub fn deprecated(old: &str, new: &str, value: Option<i64>) -> Option<i64> {
    if value.is_some() {
        eprintln!("warning: {old} is deprecated: use {new} (RFC 3339 or ms since the epoch)");
    }
    value
}
