//! The report of `suggest`: Markdown for people, JSON for tools.

use super::verify::Shadow;
use super::{Proposal, Proposals, Row, Skipped, Thresholds};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Everything `suggest` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Actions read.
    pub actions: usize,
    /// Of which handed to people.
    pub escalated: usize,
    /// The thresholds used.
    pub thresholds: Thresholds,
    /// Counts per reason × action type.
    pub rows: Vec<(String, String, Row)>,
    /// What the records held that the cases leave out, or that does not add up.
    pub skipped: Skipped,
    /// Proposals, verified or refused with the reason, in the order they were combined.
    pub proposals: Vec<Proposal>,
    /// Every accepted proposal applied together (`matrix.proposed.toml`), shadow-diffed.
    pub combined: Shadow,
    /// Per action type, the share approved unchanged week by week.
    pub competence: Vec<super::competence::Curve>,
    /// Counts per reason × action type × agent, where an agent has enough cases.
    pub by_agent: Vec<(String, String, String, Row)>,
}

impl Report {
    /// Builds the report.
    pub fn new(
        actions: usize,
        escalated: usize,
        thresholds: Thresholds,
        rows: BTreeMap<(String, String), Row>,
        proposals: Proposals,
        competence: Vec<super::competence::Curve>,
    ) -> Report {
        let mut rows: Vec<(String, String, Row)> =
            rows.into_iter().map(|((r, t), row)| (r, t, row)).collect();
        rows.sort_by(|a, b| b.2.escalations.cmp(&a.2.escalations).then(a.0.cmp(&b.0)));
        Report {
            actions,
            escalated,
            thresholds,
            rows,
            skipped: Skipped::default(),
            proposals: proposals.list,
            combined: proposals.combined,
            competence,
            by_agent: Vec::new(),
        }
    }

    /// With what was left out.
    pub fn with_skipped(mut self, skipped: Skipped) -> Report {
        self.skipped = skipped;
        self
    }

    /// With the per-agent counts.
    pub fn with_agents(mut self, rows: BTreeMap<(String, String, String), Row>) -> Report {
        self.by_agent = rows
            .into_iter()
            .map(|((r, t, a), row)| (r, t, a, row))
            .collect();
        self
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Rule suggestions\n");
        let _ = writeln!(
            s,
            "{} actions, {} handed to people ({:.1}%). Proposals need at least {} cases; \
             each was applied to a copy of the matrix, checked, and diffed on the same events.\n",
            self.actions,
            self.escalated,
            100.0 * self.escalated as f64 / self.actions.max(1) as f64,
            self.thresholds.min_cases
        );
        let skipped = self.skipped.lines();
        if !skipped.is_empty() {
            let _ = writeln!(s, "Left out or inconsistent in the records:\n");
            for l in skipped {
                let _ = writeln!(s, "- {l}");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Proposals\n");
        if self.proposals.is_empty() {
            let _ = writeln!(
                s,
                "None: no reason × action type has enough evidence for a change.\n"
            );
        }
        for p in &self.proposals {
            let state = match &p.verified {
                Ok(()) => "proposed".to_string(),
                Err(why) => format!("**not proposed**: {why}"),
            };
            let _ = writeln!(
                s,
                "- **{}** — {state}. {}; share {:.1}% (95% interval {:.1}–{:.1}%). {}",
                p.change.describe(),
                p.evidence.why,
                p.evidence.share * 100.0,
                p.evidence.interval.0 * 100.0,
                p.evidence.interval.1 * 100.0,
                shadow_line(&p.shadow)
            );
        }
        let accepted = self.proposals.iter().filter(|p| p.verified.is_ok()).count();
        if accepted > 1 {
            let _ = writeln!(
                s,
                "\nAll {accepted} accepted together (`matrix.proposed.toml`, checked as one): {}",
                shadow_line(&self.combined)
            );
        }
        let _ = writeln!(s, "\n## Competence\n");
        let _ = writeln!(
            s,
            "![competence](competence.png)\n\nShare of decided escalations approved unchanged per \
             week; graduation threshold {:.0}%.\n\n| action type | weeks | decided | last week | crossed the threshold |\n|---|---:|---:|---:|---|",
            self.thresholds.graduate_at * 100.0
        );
        for c in &self.competence {
            let last = c
                .weeks
                .last()
                .map_or(0.0, |w| 100.0 * w.2 as f64 / w.1 as f64);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {last:.0}% | {} |",
                c.action_type,
                c.weeks.len(),
                c.total(),
                c.status()
            );
        }
        let _ = writeln!(s, "\n## Escalations by reason and action type\n");
        let _ = writeln!(
            s,
            "| reason | action type | escalations | approved unchanged | revised | rejected | redirected | timed out | open | decide p50 | p90 |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let secs = |ms: Option<i64>| {
            ms.map_or("–".to_string(), |m| format!("{:.0} s", m as f64 / 1000.0))
        };
        for (reason, ty, r) in &self.rows {
            let _ = writeln!(
                s,
                "| {reason} | {ty} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.escalations,
                r.unchanged,
                r.revised,
                r.rejected,
                r.redirected,
                r.timed_out,
                r.open,
                secs(r.decide_p50_ms),
                secs(r.decide_p90_ms)
            );
        }
        if self.by_agent.is_empty() {
            let _ = writeln!(
                s,
                "\n## By agent\n\nNo agent has {} or more escalations for one reason and action type.",
                self.thresholds.min_cases
            );
        } else {
            let _ = writeln!(
                s,
                "\n## By agent (at least {} cases)\n\n| reason | action type | agent | escalations | approved unchanged | revised | rejected | decide p50 |\n|---|---|---|---:|---:|---:|---:|---:|",
                self.thresholds.min_cases
            );
            for (reason, ty, agent, r) in &self.by_agent {
                let _ = writeln!(
                    s,
                    "| {reason} | {ty} | {agent} | {} | {} | {} | {} | {} |",
                    r.escalations,
                    r.unchanged,
                    r.revised,
                    r.rejected,
                    secs(r.decide_p50_ms)
                );
            }
        }
        s
    }
}

/// What a change does to the events, in one sentence.
fn shadow_line(x: &Shadow) -> String {
    let mut line = format!(
        "Escalation rate {:.2}% → {:.2}%, {} decision(s) change.",
        x.escalation_rate.0 * 100.0,
        x.escalation_rate.1 * 100.0,
        x.changed_decisions
    );
    if !x.approvers_changed.is_empty() {
        let moves: Vec<String> = x
            .approvers_changed
            .iter()
            .map(|(k, n)| format!("{k} for {n}"))
            .collect();
        line.push_str(&format!(" **Approvers change**: {}.", moves.join("; ")));
    }
    line
}
