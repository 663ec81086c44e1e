//! `handoff diff`: shadow evaluation of a rule change on recorded events.

use super::{init_tracing, load_settings, Failure, Outcome, Result};
use handoff::cli::DiffArgs;
use handoff::config::LogFormat;
use handoff::event::{AgentAction, Codec};
use handoff::kafka::range::Range;
use handoff::matrix::Matrix;
use std::path::Path;

/// Events that could not be read, and those that could.
#[derive(Default)]
struct Recorded {
    actions: Vec<AgentAction>,
    bad: usize,
}

/// A hard_stop decision the new matrix would relax fails the run (exit 1) unless
/// --allow-relax.
pub fn run(args: DiffArgs) -> Result {
    let old = Matrix::from_file(&args.old).map_err(Failure::usage)?;
    let new = Matrix::from_file(&args.new).map_err(Failure::usage)?;
    let codec = Codec::new(Default::default())?;
    let recorded = match (&args.events, &args.topic) {
        (Some(path), _) => from_file(path, &codec)?,
        (None, Some(topic)) => from_topic(&args, topic, &codec)?,
        (None, None) => {
            return Err(Failure::usage(anyhow::anyhow!(
                "give --events FILE or --topic TOPIC"
            )))
        }
    };
    let report = handoff::replay::diff::diff(&old, &new, &recorded.actions);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown(args.examples));
        if recorded.bad > 0 {
            let bad = recorded.bad;
            println!("\n{bad} record(s) could not be read and were left out.");
        }
    }
    if !report.relaxed_hard_stops.is_empty() && !args.allow_relax {
        eprintln!(
            "{} hard_stop decision(s) would be relaxed; pass --allow-relax to accept",
            report.relaxed_hard_stops.len()
        );
        return Ok(Outcome::ChecksFailed);
    }
    Ok(Outcome::Success)
}

/// JSON lines, as for eval; a bad line is named on standard error and left out.
fn from_file(path: &Path, codec: &Codec) -> Result<Recorded> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(anyhow::anyhow!("cannot read {}: {e}", path.display())))?;
    let mut recorded = Recorded::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match codec.decode_action_json(line) {
            Ok(e) => recorded.actions.push(e),
            Err(e) => {
                recorded.bad += 1;
                eprintln!("{}:{}: {e}", path.display(), i + 1);
            }
        }
    }
    Ok(recorded)
}

/// Avro records of `topic`, within --from-ms/--to-ms, from the cluster of --config/--bootstrap.
fn from_topic(args: &DiffArgs, topic: &str, codec: &Codec) -> Result<Recorded> {
    init_tracing(LogFormat::Text, "warn");
    let settings = load_settings(&args.kafka)?;
    let range = Range {
        from_ms: args.range.from.or(super::replay::deprecated(
            "--from-ms",
            "--from",
            args.from_ms,
        )),
        to_ms: args
            .range
            .to
            .or(super::replay::deprecated("--to-ms", "--to", args.to_ms)),
    };
    super::ensure_range(range.from_ms, range.to_ms)?;
    handoff::kafka::admin::wait_reachable(&settings)?;
    let mut recorded = Recorded::default();
    for r in handoff::kafka::range::read(&settings, topic, range, &Default::default())? {
        match r
            .payload
            .as_deref()
            .map(|p| codec.decode_action_record(&r.headers, p))
        {
            Some(Ok(e)) => recorded.actions.push(e),
            _ => recorded.bad += 1,
        }
    }
    Ok(recorded)
}
