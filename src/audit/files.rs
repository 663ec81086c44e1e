//! The records behind a pack as files of JSON lines, the form `handoff suggest --events
//! --verdicts --decisions [--canaries]` reads: written by `handoff audit export --records DIR`
//! for exactly the pack's actions. docs/recorded-files.md describes each file.

use super::{Entry, Records};
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The file names, in `DIR`.
pub const EVENTS: &str = "events.jsonl";
/// Every verdict of the actions (their first and those that followed).
pub const VERDICTS: &str = "verdicts.jsonl";
/// The human decisions answering their escalations.
pub const DECISIONS: &str = "decisions.jsonl";
/// The canaries' verdicts (kept apart: they test the people, not the rules).
pub const CANARIES: &str = "canaries.jsonl";

/// What of `r` belongs to the actions of `entries`: their events, their verdicts (canaries'
/// apart), and every decision answering one of the escalations they were handed over in.
pub fn of_entries(r: &Records, entries: &[Entry]) -> Records {
    let ids: HashSet<&str> = entries.iter().map(|e| e.action_id.as_str()).collect();
    let escalations: HashSet<&str> = entries
        .iter()
        .flat_map(|e| {
            let shown = e.shown.iter().map(|s| s.escalation_id.as_str());
            shown.chain(e.answers.iter().map(|a| a.escalation_id.as_str()))
        })
        .collect();
    let mine = |id: &String| ids.contains(id.as_str());
    Records {
        events: r
            .events
            .iter()
            .filter(|e| mine(&e.action_id))
            .cloned()
            .collect(),
        verdicts: r
            .verdicts
            .iter()
            .filter(|v| mine(&v.action_id))
            .cloned()
            .collect(),
        canaries: r
            .canaries
            .iter()
            .filter(|v| mine(&v.action_id))
            .cloned()
            .collect(),
        decisions: r
            .decisions
            .iter()
            .filter(|d| escalations.contains(d.escalation_id.as_str()))
            .cloned()
            .collect(),
        ..Records::default()
    }
}

/// Writes the four files into `dir` (created); returns their paths and line counts.
pub fn write(dir: &Path, r: &Records) -> std::io::Result<Vec<(PathBuf, usize)>> {
    std::fs::create_dir_all(dir)?;
    Ok(vec![
        lines(dir, EVENTS, &r.events)?,
        lines(dir, VERDICTS, &r.verdicts)?,
        lines(dir, DECISIONS, &r.decisions)?,
        lines(dir, CANARIES, &r.canaries)?,
    ])
}

fn lines<T: Serialize>(dir: &Path, name: &str, xs: &[T]) -> std::io::Result<(PathBuf, usize)> {
    let mut text = String::new();
    for x in xs {
        text.push_str(&serde_json::to_string(x).expect("records serialize"));
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok((path, xs.len()))
}
