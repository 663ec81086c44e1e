//! `handoff suggest`: verified rule changes from recorded verdicts and decisions.

use super::audit::time_ms;
use super::{ensure_usage, load_settings, Failure, Outcome, Result};
use handoff::audit::Records;
use handoff::cli::SuggestArgs;
use handoff::matrix::Matrix;
use handoff::suggest::{self, report::Report, Thresholds};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads the records (files or topics), proposes, verifies, writes the report.
pub fn run(args: SuggestArgs) -> Result {
    let (records, from_ms, to_ms, matrix_path) = match &args.events {
        Some(events) => {
            let from = args
                .from
                .as_deref()
                .map(|t| time_ms("--from", t))
                .transpose()?;
            let to = args.to.as_deref().map(|t| time_ms("--to", t)).transpose()?;
            let r = Records {
                events: lines(events)?,
                verdicts: lines(args.verdicts.as_deref().expect("required by clap"))?,
                decisions: lines(args.decisions.as_deref().expect("required by clap"))?,
                ..Records::default()
            };
            (
                r,
                from.unwrap_or(i64::MIN),
                to.unwrap_or(i64::MAX),
                args.matrix.clone(),
            )
        }
        None => {
            ensure_usage(args.from.is_some() && args.to.is_some(), || {
                "give --events, --verdicts and --decisions, or --from and --to to read topics"
                    .into()
            })?;
            let from = time_ms("--from", args.from.as_deref().unwrap_or_default())?;
            let to = time_ms("--to", args.to.as_deref().unwrap_or_default())?;
            let settings = load_settings(&args.kafka)?;
            let m = args.matrix.clone().or(settings.matrix.path.clone());
            let matrix = super::load_matrix(m.as_deref())?;
            handoff::kafka::admin::wait_reachable(&settings)?;
            let (r, _) = handoff::audit::read::read(&settings, &matrix, from, to)?;
            (r, from, to, m)
        }
    };
    let text = match &matrix_path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| Failure::usage(anyhow::anyhow!("cannot read {}: {e}", p.display())))?,
        None => handoff::matrix::DEFAULT_MATRIX_TOML.to_string(),
    };
    let source = handoff::matrix::MatrixSource::Default;
    let matrix = Matrix::from_toml_str(&text, source).map_err(Failure::usage)?;
    let t = Thresholds {
        min_cases: args.min_cases,
        ..Thresholds::default()
    };
    let cases = suggest::cases(&records, from_ms, to_ms);
    let proposals = suggest::propose(&text, &matrix, &cases, &records.events, &t);
    let escalated = cases
        .iter()
        .filter(|c| c.fate != suggest::Fate::Alone)
        .count();
    let curves = suggest::competence::curves(&cases, t.graduate_at, 5);
    let report = Report::new(
        cases.len(),
        escalated,
        t,
        suggest::table(&cases),
        proposals,
        curves,
    );
    write(&args.out, &text, &report)?;
    let ok = report
        .proposals
        .iter()
        .filter(|p| p.verified.is_ok())
        .count();
    println!(
        "{}: {} actions, {} escalated; {ok} change(s) proposed, {} refused by their checks",
        args.out.display(),
        report.actions,
        report.escalated,
        report.proposals.len() - ok
    );
    Ok(Outcome::Success)
}

fn write(dir: &Path, text: &str, report: &Report) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.md"), report.markdown())?;
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(report)?)?;
    let png = handoff::suggest::competence::png(&report.competence, report.thresholds.graduate_at);
    std::fs::write(dir.join("competence.png"), png)?;
    let accepted: Vec<&handoff::suggest::edit::Change> = report
        .proposals
        .iter()
        .filter(|p| p.verified.is_ok())
        .map(|p| &p.change)
        .collect();
    let proposed =
        handoff::suggest::edit::apply(text, &accepted).map_err(|e| anyhow::anyhow!(e))?;
    std::fs::write(dir.join("matrix.proposed.toml"), proposed)?;
    Ok(())
}

/// A file of JSON lines; a bad line is a usage error naming the file and the line.
fn lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(anyhow::anyhow!("cannot read {}: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Failure::usage(anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}
