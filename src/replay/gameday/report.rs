//! What a drill measured, and the report made of it: Markdown with a pre-filled post-mortem,
//! JSON, and the timeline chart.

use crate::replay::chart;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// p50, p95 and max of a set of durations, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_s: f64,
    /// 95th percentile.
    pub p95_s: f64,
    /// Largest.
    pub max_s: f64,
}

impl Spread {
    pub(super) fn of(mut ms: Vec<i64>) -> Spread {
        if ms.is_empty() {
            return Spread::default();
        }
        ms.sort_unstable();
        let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
        Spread {
            count: ms.len(),
            p50_s: at(0.5),
            p95_s: at(0.95),
            max_s: *ms.last().expect("non-empty") as f64 / 1000.0,
        }
    }
}

/// One role's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RoleFigures {
    /// Escalation messages to the role (updates of grouped ones included).
    pub escalation_messages: usize,
    /// Distinct escalations the role got (single or in a digest).
    pub escalations: usize,
    /// Digests to the role.
    pub digests: usize,
    /// Re-escalations that reached the role after another role missed its deadline.
    pub re_escalations: usize,
    /// Escalations a human redirected to the role.
    pub redirects_in: usize,
    /// Escalations the role acknowledged.
    pub acknowledged: usize,
    /// Deadlines the role let pass.
    pub missed_deadlines: usize,
    /// Event → escalation sent to this role.
    pub event_to_escalation: Spread,
    /// Escalation → acknowledgement.
    pub escalation_to_ack: Spread,
    /// Event → acknowledgement (time to engagement).
    pub event_to_ack: Spread,
    /// Most escalations waiting at once.
    pub peak_pending: usize,
    /// Peak pending at or above the scenario's overload mark, or digests sent.
    pub overloaded: bool,
}

/// What a drill measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GamedayReport {
    /// Scenario name.
    pub scenario: String,
    /// Rule version.
    pub rule_version: String,
    /// Virtual length, seconds.
    pub duration_s: u64,
    /// Events decided.
    pub events: usize,
    /// Events needing a human (ask_first or hard_stop).
    pub needs_human: usize,
    /// needs_human / events.
    pub escalation_rate: f64,
    /// Per role.
    pub roles: BTreeMap<String, RoleFigures>,
    /// Re-escalations by tier of the new escalation.
    pub re_escalations_by_tier: BTreeMap<String, usize>,
    /// Final verdicts by outcome.
    pub final_verdicts: BTreeMap<String, usize>,
    /// Actions blocked because nobody answered (fail closed).
    pub fail_closed: usize,
    /// Per minute of the drill and per role: escalations sent and acknowledgements.
    pub timeline: BTreeMap<String, Vec<(u64, usize, usize)>>,
    /// Per minute of the drill and per role: deadlines the role let pass (seen when the
    /// escalation moved on to the next role).
    pub missed_timeline: BTreeMap<String, Vec<(u64, usize)>>,
    /// Records written to the drill topics, by topic.
    pub records_by_topic: BTreeMap<String, usize>,
    /// The scenario's `[measure] roles`: shown first, in this order.
    pub measured_roles: Vec<String>,
    /// Every role escalated to (or that let a deadline pass), the measured ones first: the
    /// roles of the table, the post-mortem and the chart.
    pub reported_roles: Vec<String>,
    /// The reported roles' figures added up: the table's last row and the post-mortem's counts.
    pub totals: Totals,
}

/// The figures of every reported role, added up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Distinct escalations (a re-escalation counts again for the role it reached).
    pub escalations: usize,
    /// Escalations acknowledged.
    pub acknowledged: usize,
    /// Deadlines let pass.
    pub missed_deadlines: usize,
    /// Re-escalations received.
    pub re_escalations: usize,
    /// Digests sent.
    pub digests: usize,
}

impl GamedayReport {
    /// Fills [`GamedayReport::reported_roles`] and [`GamedayReport::totals`] from the roles'
    /// figures, once they are final: every role that got an escalation, a digest or let a
    /// deadline pass, the measured ones first.
    pub fn settle(&mut self) {
        let engaged = |f: &RoleFigures| f.escalations + f.digests + f.missed_deadlines > 0;
        let measured = self.measured_roles.iter();
        let others = self
            .roles
            .keys()
            .filter(|r| !self.measured_roles.contains(r));
        let mut reported: Vec<String> = Vec::new();
        for r in measured.chain(others) {
            if self.roles.get(r).is_some_and(engaged) && !reported.contains(r) {
                reported.push(r.clone());
            }
        }
        self.reported_roles = reported;
        let mut t = Totals::default();
        for (_, f) in self.reported() {
            t.escalations += f.escalations;
            t.acknowledged += f.acknowledged;
            t.missed_deadlines += f.missed_deadlines;
            t.re_escalations += f.re_escalations;
            t.digests += f.digests;
        }
        self.totals = t;
    }

    /// The reported roles and their figures, in report order.
    fn reported(&self) -> impl Iterator<Item = (&str, &RoleFigures)> {
        self.reported_roles
            .iter()
            .filter_map(|r| Some((r.as_str(), self.roles.get(r)?)))
    }

    /// Writes report.md, report.json and timeline.png into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(self).expect("a report serializes"),
        )?;
        std::fs::write(dir.join("timeline.png"), self.chart_png())
    }

    /// The timeline chart as PNG bytes (see [`chart`]).
    pub fn chart_png(&self) -> Vec<u8> {
        chart::timeline_png(&chart::Timeline {
            title: &format!("Game-day: {}", self.scenario),
            roles: &self.reported_roles,
            series: &self.timeline,
            missed: &self.missed_timeline,
            minutes: self.duration_s.div_ceil(60),
        })
    }

    /// The report as Markdown, with a post-mortem template pre-filled with the figures.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        self.summary(&mut s);
        self.engagement_table(&mut s);
        self.chart_caption(&mut s);
        self.post_mortem(&mut s);
        s
    }

    fn summary(&self, s: &mut String) {
        let _ = writeln!(s, "# Game-day: {}\n", self.scenario);
        let _ = writeln!(
            s,
            "{} virtual minutes, rules {}. {} events, {} needed a human (escalation rate {:.1}%). \
             {} action(s) blocked because nobody answered in time (fail closed).\n",
            self.duration_s / 60,
            self.rule_version,
            self.events,
            self.needs_human,
            100.0 * self.escalation_rate,
            self.fail_closed
        );
    }

    fn engagement_table(&self, s: &mut String) {
        let _ = writeln!(s, "## Time to engagement per role\n");
        let _ = writeln!(
            s,
            "| role | escalations | acknowledged | event → escalation p50/p95/max (s) | escalation → ack p50/p95/max (s) | event → ack p50/p95/max (s) | missed deadlines | re-escalations in | digests | peak waiting | overloaded |\n|---|---:|---:|---|---|---|---:|---:|---:|---:|---|"
        );
        let fmt = |x: &Spread| {
            if x.count == 0 {
                "-".to_string()
            } else {
                format!("{:.0} / {:.0} / {:.0}", x.p50_s, x.p95_s, x.max_s)
            }
        };
        for (role, f) in self.reported() {
            let _ = writeln!(
                s,
                "| {role} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f.escalations,
                f.acknowledged,
                fmt(&f.event_to_escalation),
                fmt(&f.escalation_to_ack),
                fmt(&f.event_to_ack),
                f.missed_deadlines,
                f.re_escalations,
                f.digests,
                f.peak_pending,
                if f.overloaded { "**yes**" } else { "no" }
            );
        }
        let t = &self.totals;
        let _ = writeln!(
            s,
            "| **all roles** | {} | {} | | | | {} | {} | {} | | |",
            t.escalations, t.acknowledged, t.missed_deadlines, t.re_escalations, t.digests
        );
        let unreached: Vec<&str> = self
            .measured_roles
            .iter()
            .filter(|r| !self.reported_roles.contains(r))
            .map(String::as_str)
            .collect();
        if !unreached.is_empty() {
            let _ = writeln!(
                s,
                "\nMeasured but never escalated to: {}.",
                unreached.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "\nRe-escalations by tier: {:?}. Final verdicts: {:?}.\n",
            self.re_escalations_by_tier, self.final_verdicts
        );
    }

    fn chart_caption(&self, s: &mut String) {
        let roles: Vec<String> = self
            .reported_roles
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{r} {}", chart::PALETTE_NAMES[i % 8]))
            .collect();
        let _ = writeln!(
            s,
            "![Escalations, acknowledgements and missed deadlines per minute, one panel per role](timeline.png)\n\n\
             One panel per role ({}), on the same scale: escalations sent per minute (solid), \
             acknowledgements (dashed, lighter) and missed deadlines (red crosses), by minute since \
             the start of the drill.\n",
            roles.join(", ")
        );
    }

    fn post_mortem(&self, s: &mut String) {
        let overloaded: Vec<&str> = self
            .reported()
            .filter(|(_, f)| f.overloaded)
            .map(|(r, _)| r)
            .collect();
        let _ = writeln!(s, "## Post-mortem\n");
        let _ = writeln!(
            s,
            "- **What happened:** {} events in {} minutes; {} needed a human.",
            self.events,
            self.duration_s / 60,
            self.needs_human
        );
        let _ = writeln!(
            s,
            "- **Who was engaged, how fast:** see the table; slowest p95 time to engagement: {}.",
            self.reported()
                .filter(|(_, f)| f.event_to_ack.count > 0)
                .max_by(|a, b| a.1.event_to_ack.p95_s.total_cmp(&b.1.event_to_ack.p95_s))
                .map(|(r, f)| format!("{r}, {:.0} s", f.event_to_ack.p95_s))
                .unwrap_or_else(|| "nobody acknowledged".into())
        );
        let _ = writeln!(
            s,
            "- **Missed deadlines:** {} (the table's total); **blocked for lack of an answer:** {}.",
            self.totals.missed_deadlines,
            self.fail_closed
        );
        let _ = writeln!(
            s,
            "- **Overloaded roles:** {}.",
            if overloaded.is_empty() {
                "none".to_string()
            } else {
                overloaded.join(", ")
            }
        );
        let _ = writeln!(s, "- **Causes:** _…_");
        let _ = writeln!(s, "- **What went well:** _…_");
        let _ = writeln!(
            s,
            "- **Rule changes decided** (try them with `handoff diff` first): _…_"
        );
        let _ = writeln!(s, "- **Owners and dates:** _…_");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(escalations: usize, missed_deadlines: usize) -> RoleFigures {
        RoleFigures {
            escalations,
            missed_deadlines,
            re_escalations: missed_deadlines,
            ..Default::default()
        }
    }

    #[test]
    fn every_role_escalated_to_is_reported_the_measured_ones_first_once() {
        let mut r = GamedayReport {
            roles: BTreeMap::from([
                ("a".to_string(), role(5, 1)),
                ("b".to_string(), role(0, 0)),
                ("c".to_string(), role(0, 2)),
                ("d".to_string(), role(7, 0)),
            ]),
            measured_roles: vec!["d".into(), "b".into(), "d".into(), "nobody".into()],
            ..Default::default()
        };
        r.settle();
        assert_eq!(r.reported_roles, ["d", "a", "c"]);
        assert_eq!((r.totals.escalations, r.totals.missed_deadlines), (12, 3));
        let md = r.markdown();
        assert!(
            md.contains("| **all roles** | 12 | 0 | | | | 3 | 3 | 0 | | |"),
            "{md}"
        );
        assert!(
            md.contains("Measured but never escalated to: b, nobody."),
            "{md}"
        );
        assert!(md.contains("**Missed deadlines:** 3 "), "{md}");
    }
}
