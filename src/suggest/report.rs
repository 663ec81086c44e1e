//! The report of `suggest`: Markdown for people, JSON for tools.

use super::{Proposal, Row, Thresholds};
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
    /// Proposals, verified or refused with the reason.
    pub proposals: Vec<Proposal>,
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
        proposals: Vec<Proposal>,
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
            proposals,
            competence,
            by_agent: Vec::new(),
        }
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
                "- **{}** — {state}. {}; share {:.1}% (95% interval {:.1}–{:.1}%). \
                 Escalation rate {:.2}% → {:.2}%, {} decision(s) change.",
                p.change.describe(),
                p.evidence.why,
                p.evidence.share * 100.0,
                p.evidence.interval.0 * 100.0,
                p.evidence.interval.1 * 100.0,
                p.escalation_rate.0 * 100.0,
                p.escalation_rate.1 * 100.0,
                p.changed_decisions
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
            let crossed = c
                .crossed
                .map_or("not yet".to_string(), |w| format!("week {}", w + 1));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {last:.0}% | {crossed} |",
                c.action_type,
                c.weeks.len(),
                c.total()
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
        if !self.by_agent.is_empty() {
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
