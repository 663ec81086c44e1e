//! `handoff suggest`: verified rule changes from recorded verdicts and decisions.

use super::{ensure_range, ensure_usage, load_settings, Failure, Outcome, Result};
use handoff::audit::Records;
use handoff::cli::SuggestArgs;
use handoff::event::{AgentAction, Codec, CodecError};
use handoff::matrix::{Matrix, MatrixSource};
use handoff::suggest::{self, report::Report, Thresholds};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// What was read, from files or topics.
struct Read {
    records: Records,
    from_ms: i64,
    to_ms: i64,
    matrix: Option<PathBuf>,
    invalid_events: usize,
}

/// Reads the records (files or topics), proposes, verifies, writes the report.
pub fn run(args: SuggestArgs) -> Result {
    ensure_range(args.range.from, args.range.to)?;
    let read = match &args.events {
        Some(events) => from_files(&args, events)?,
        None => from_topics(&args)?,
    };
    let (text, matrix, note) = matrix_text(read.matrix.as_deref())?;
    let t = Thresholds {
        min_cases: args.min_cases,
        ..Thresholds::default()
    };
    let (cases, mut skipped) = suggest::cases(&read.records, &matrix, read.from_ms, read.to_ms);
    skipped.invalid_events = read.invalid_events;
    let proposals = suggest::propose(&text, &matrix, &cases, &read.records.events, &t);
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
    )
    .with_skipped(skipped)
    .with_agents(suggest::table_by_agent(&cases, t.min_cases));
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
    for line in report.skipped.lines() {
        println!("  {line}");
    }
    if let Some(note) = note {
        println!("  {note}");
    }
    Ok(Outcome::Success)
}

fn from_files(args: &SuggestArgs, events: &Path) -> Result<Read> {
    let (events, invalid_events) = event_lines(events)?;
    Ok(Read {
        records: Records {
            events,
            verdicts: lines(args.verdicts.as_deref().expect("required by clap"))?,
            decisions: lines(args.decisions.as_deref().expect("required by clap"))?,
            canaries: match &args.canaries {
                Some(p) => lines(p)?,
                None => Vec::new(),
            },
            ..Records::default()
        },
        from_ms: args.range.from.unwrap_or(i64::MIN),
        to_ms: args.range.to.unwrap_or(i64::MAX),
        matrix: args.matrix.clone(),
        invalid_events,
    })
}

fn from_topics(args: &SuggestArgs) -> Result<Read> {
    let (from_ms, to_ms) = match (args.range.from, args.range.to) {
        (Some(a), Some(b)) => (a, b),
        _ => {
            return Err(Failure::usage(anyhow::anyhow!(
                "give --events, --verdicts and --decisions, or --from and --to to read topics"
            )))
        }
    };
    let settings = load_settings(&args.kafka)?;
    let path = args.matrix.clone().or(settings.matrix.path.clone());
    let matrix = super::load_matrix(path.as_deref())?;
    handoff::kafka::admin::wait_reachable(&settings)?;
    let window = handoff::audit::read::Window {
        from_ms,
        to_ms,
        settle_ms: std::time::Duration::from(args.settle).as_millis() as i64,
    };
    let (records, _) = handoff::audit::read::read(&settings, &matrix, window)?;
    Ok(Read {
        records,
        from_ms,
        to_ms,
        matrix: path,
        invalid_events: 0,
    })
}

/// The matrix as TOML text to edit, the matrix, and a note when it was converted. A TOML file is
/// edited as written (comments kept); a YAML or JSON one is loaded as `check` loads it and
/// written out as TOML.
fn matrix_text(path: Option<&Path>) -> Result<(String, Matrix, Option<String>)> {
    let Some(p) = path else {
        let text = handoff::matrix::DEFAULT_MATRIX_TOML.to_string();
        let m = Matrix::from_toml_str(&text, MatrixSource::Default).map_err(Failure::usage)?;
        return Ok((text, m, None));
    };
    let source = MatrixSource::File(p.to_path_buf());
    let toml = p.extension().is_none_or(|e| e.eq_ignore_ascii_case("toml"));
    if toml {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Failure::usage(anyhow::anyhow!("cannot read {}: {e}", p.display())))?;
        let m = Matrix::from_toml_str(&text, source).map_err(Failure::usage)?;
        return Ok((text, m, None));
    }
    let m = Matrix::from_file(p).map_err(Failure::usage)?;
    let value = handoff::problems::read_file(p).map_err(|e| Failure::usage(anyhow::anyhow!(e)))?;
    let text = toml_edit::ser::to_string_pretty(&value).map_err(|e| {
        Failure::usage(anyhow::anyhow!(
            "{}: cannot be written as TOML for editing: {e}",
            p.display()
        ))
    })?;
    let note = format!(
        "{} is not TOML: matrix.proposed.toml is the same matrix written as TOML (its comments \
         are not kept)",
        p.display()
    );
    Ok((text, m, Some(note)))
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

/// Events as JSON lines, validated as `eval` validates them: a line that is not JSON of an
/// event is a usage error naming the file and the line; an event that fails validation is left
/// out, named on standard error, and counted.
fn event_lines(path: &Path) -> Result<(Vec<AgentAction>, usize)> {
    let codec = Codec::new(Default::default())?;
    let mut out = Vec::new();
    let mut invalid = 0;
    for (i, l) in read(path)?.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match codec.decode_action_json(l) {
            Ok(e) => out.push(e),
            Err(e @ CodecError::Json { .. }) => {
                return Err(Failure::usage(anyhow::anyhow!(
                    "{}:{}: {e}",
                    path.display(),
                    i + 1
                )))
            }
            Err(e) => {
                invalid += 1;
                eprintln!("{}:{}: left out: {e}", path.display(), i + 1);
            }
        }
    }
    ensure_usage(!out.is_empty() || invalid == 0, || {
        format!("{}: no event passes validation", path.display())
    })?;
    Ok((out, invalid))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(anyhow::anyhow!("cannot read {}: {e}", path.display())))
}

/// A file of JSON lines; a bad line is a usage error naming the file and the line.
fn lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    read(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Failure::usage(anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}
