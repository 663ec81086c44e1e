//! `handoff eval`: decide JSON lines of events offline, one JSON line out per event.

use super::{load_matrix, Failure, Outcome, Result};
use handoff::cli::EvalArgs;
use handoff::event::{Codec, EventLimits, Level};
use handoff::matrix::Matrix;
use handoff::offline::EvalSummary;
use std::io::{self, BufRead, BufReader};

/// Bad lines are reported as they come and fail the run at the end (exit 1). Standard output
/// carries one JSON line per input line, or with `--summary` only the summary line.
pub fn run(args: EvalArgs) -> Result {
    let m = load_matrix(args.matrix.as_deref())?;
    let codec = Codec::new(EventLimits::default())?;
    let input: Box<dyn BufRead> = match &args.events {
        Some(p) => Box::new(BufReader::new(std::fs::File::open(p).map_err(|e| {
            Failure::usage(anyhow::anyhow!(
                "cannot open events file {}: {e}",
                p.display()
            ))
        })?)),
        None => Box::new(io::stdin().lock()),
    };
    let s = if args.summary {
        let s = handoff::offline::eval_lines(&m, &codec, input, io::sink(), io::stderr())?;
        println!("{}", summary(&s, &m));
        s
    } else {
        let out = io::BufWriter::new(io::stdout().lock());
        handoff::offline::eval_lines(&m, &codec, input, out, io::stderr())?
    };
    Ok(if s.errors > 0 {
        Outcome::ChecksFailed
    } else {
        Outcome::Success
    })
}

/// "N events (execute …), M escalations, escalation rate …%, K bad lines; rules rv-…".
fn summary(s: &EvalSummary, m: &Matrix) -> String {
    let per_level: Vec<String> = Level::ALL
        .iter()
        .zip(s.by_level)
        .map(|(l, c)| format!("{} {c}", l.as_str()))
        .collect();
    format!(
        "{} events ({}), {} escalations, escalation rate {:.1}%, {} bad lines; rules {}",
        s.events,
        per_level.join(", "),
        s.escalations,
        s.escalation_rate() * 100.0,
        s.errors,
        m.version()
    )
}
