//! `handoff test-rules`: table cases against a matrix, each failure reported with a diff.

use super::{Failure, Outcome, Result};
use handoff::cli::TestRulesArgs;
use handoff::event::{Codec, EventLimits};

/// Any failed case fails the run (exit 1); an unreadable test file or matrix is bad usage.
pub fn run(args: TestRulesArgs) -> Result {
    let codec = Codec::new(EventLimits::default())?;
    let report = handoff::offline::run_rule_tests(&args.file, args.matrix.as_deref(), &codec)
        .map_err(Failure::usage)?;
    report.write(std::io::stdout().lock())?;
    Ok(if report.failed() > 0 {
        Outcome::ChecksFailed
    } else {
        Outcome::Success
    })
}
