//! The `handoff` binary: parse the command line, run, map the outcome to an exit code.
//! Exit codes: 0 success; 1 the run found problems (bad input lines, failed rule cases, an
//! invalid matrix); 2 usage errors (from clap).

use anyhow::Context;
use clap::Parser;
use handoff::cli::{Cli, Command};
use handoff::event::{Codec, EventLimits};
use handoff::matrix::Matrix;
use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { matrix } => match Matrix::load(matrix.as_deref()) {
            Ok(m) => {
                print!("{}", handoff::cli::check_report(&m));
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Eval {
            matrix,
            events,
            summary,
        } => {
            let m = Matrix::load(matrix.as_deref())?;
            let codec = Codec::new(EventLimits::default())?;
            let input: Box<dyn BufRead> = match &events {
                Some(p) => Box::new(BufReader::new(
                    std::fs::File::open(p)
                        .with_context(|| format!("cannot open events file {}", p.display()))?,
                )),
                None => Box::new(io::stdin().lock()),
            };
            let out = io::BufWriter::new(io::stdout().lock());
            let s = handoff::offline::eval_lines(&m, &codec, input, out, io::stderr())?;
            if summary {
                let names = handoff::event::Level::ALL.map(|l| l.as_str());
                let per_level: Vec<String> = names
                    .iter()
                    .zip(s.by_level)
                    .map(|(n, c)| format!("{n} {c}"))
                    .collect();
                eprintln!(
                    "{} events ({}), {} escalations, escalation rate {:.1}%, {} bad lines; rules {}",
                    s.events,
                    per_level.join(", "),
                    s.escalations,
                    s.escalation_rate() * 100.0,
                    s.errors,
                    m.version()
                );
            }
            Ok(if s.errors > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::TestRules { file, matrix } => {
            let codec = Codec::new(EventLimits::default())?;
            let report = handoff::offline::run_rule_tests(&file, matrix.as_deref(), &codec)?;
            report.write(io::stdout().lock())?;
            Ok(if report.failed() > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Generate {
            count,
            seed,
            trigger_boost,
            malformed,
        } => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&malformed),
                "--malformed {malformed}: must be between 0 and 1"
            );
            anyhow::ensure!(
                trigger_boost.is_finite() && trigger_boost >= 0.0,
                "--trigger-boost {trigger_boost}: must be zero or more"
            );
            let mut fleet = handoff::generate::Fleet::new(handoff::generate::FleetConfig {
                seed,
                trigger_boost,
                malformed_share: malformed,
                ..Default::default()
            });
            let mut out = io::BufWriter::new(io::stdout().lock());
            for _ in 0..count {
                writeln!(out, "{}", fleet.next_record_json())?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
