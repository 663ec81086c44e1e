//! The canaries' figures per role, from their verdicts on the canaries topic: sent, caught,
//! missed, timed out, not escalated, still open, and the time to answer. [`read`] reads the
//! topic; the rest is pure.

use crate::event::canary::{CanaryResult, Expect, CANARY_HEADER};
use crate::event::{Verdict, VerdictOutcome};
use serde::Serialize;
use std::collections::BTreeMap;

/// One canary's verdicts, in the order read.
#[derive(Debug, Default)]
struct Track {
    expect: Option<Expect>,
    first_ms: Option<i64>,
    first_role: Option<String>,
    end: Option<(CanaryResult, i64, Option<String>, Option<String>)>,
}

/// One role's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RoleFigures {
    /// The role (`none` for canaries the rules handed to nobody).
    pub role: String,
    /// Canaries seen.
    pub sent: usize,
    /// Answered as expected.
    pub caught: usize,
    /// Answered otherwise.
    pub missed: usize,
    /// Not answered before the end of the chain.
    pub timed_out: usize,
    /// Not handed to anyone.
    pub not_escalated: usize,
    /// Still waiting.
    pub open: usize,
    /// caught ÷ (caught + missed + timed out).
    pub catch_rate: Option<f64>,
    /// Median time from escalation to answer, seconds.
    pub answer_p50_s: Option<f64>,
    /// 90th percentile.
    pub answer_p90_s: Option<f64>,
    /// Who missed, with how many (for the report only: never a metric label).
    pub missed_by: BTreeMap<String, usize>,
}

/// The figures per role (sorted by role) from the canaries topic's verdicts with their headers.
pub fn figures(records: &Records) -> Vec<RoleFigures> {
    let mut tracks: BTreeMap<&str, Track> = BTreeMap::new();
    for (v, headers) in records {
        let t = tracks.entry(v.action_id.as_str()).or_default();
        if t.expect.is_none() {
            t.expect = crate::event::canary::expected(headers).ok().flatten();
        }
        if v.outcome == VerdictOutcome::AwaitHuman && t.first_ms.is_none() {
            t.first_ms = Some(v.decided_at_ms);
            t.first_role = v.roles.first().cloned();
        }
        let Some(expect) = t.expect else { continue };
        if let Some(result) = CanaryResult::of(expect, v.outcome) {
            t.end = Some((
                result,
                v.decided_at_ms,
                v.roles.first().cloned(),
                v.decided_by.clone(),
            ));
        }
    }
    let mut roles: BTreeMap<String, (RoleFigures, Vec<f64>)> = BTreeMap::new();
    for t in tracks.values() {
        let role = t
            .end
            .as_ref()
            .and_then(|e| e.2.clone())
            .or_else(|| t.first_role.clone())
            .unwrap_or_else(|| "none".to_string());
        let (f, waits) = roles.entry(role.clone()).or_default();
        f.role = role;
        f.sent += 1;
        let Some((result, at, _, by)) = &t.end else {
            f.open += 1;
            continue;
        };
        match result {
            CanaryResult::Caught => f.caught += 1,
            CanaryResult::Missed => {
                f.missed += 1;
                let who = by.clone().unwrap_or_else(|| "unknown".into());
                *f.missed_by.entry(who).or_default() += 1;
            }
            CanaryResult::TimedOut => f.timed_out += 1,
            CanaryResult::NotEscalated => f.not_escalated += 1,
        }
        if matches!(result, CanaryResult::Caught | CanaryResult::Missed) {
            if let Some(first) = t.first_ms {
                waits.push((at - first).max(0) as f64 / 1000.0);
            }
        }
    }
    roles
        .into_values()
        .map(|(mut f, mut waits)| {
            let judged = f.caught + f.missed + f.timed_out;
            f.catch_rate = (judged > 0).then(|| f.caught as f64 / judged as f64);
            waits.sort_by(f64::total_cmp);
            f.answer_p50_s = quantile(&waits, 0.5);
            f.answer_p90_s = quantile(&waits, 0.9);
            f
        })
        .collect()
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The figures as a Markdown table, then who missed what.
pub fn markdown(figures: &[RoleFigures]) -> String {
    let mut s = String::from(
        "| role | sent | caught | missed | timed out | not escalated | open | catch rate | \
         answer p50 | answer p90 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let secs = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.1} s"));
    for f in figures {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            crate::escape::markdown_cell(&f.role),
            f.sent,
            f.caught,
            f.missed,
            f.timed_out,
            f.not_escalated,
            f.open,
            f.catch_rate
                .map_or("–".to_string(), |r| format!("{:.0} %", r * 100.0)),
            secs(f.answer_p50_s),
            secs(f.answer_p90_s),
        ));
    }
    let missed: Vec<String> = figures
        .iter()
        .flat_map(|f| {
            f.missed_by.iter().map(move |(who, n)| {
                format!(
                    "- {} ({}): {n}",
                    crate::escape::markdown_cell(who),
                    crate::escape::markdown_cell(&f.role)
                )
            })
        })
        .collect();
    if !missed.is_empty() {
        s.push_str("\nMissed, by person:\n");
        s.push_str(&missed.join("\n"));
        s.push('\n');
    }
    s
}

/// The canaries' verdicts (with their headers) written in `range`; unreadable records are
/// counted (the second value), not fatal.
pub fn read(
    settings: &crate::config::Settings,
    range: crate::kafka::range::Range,
) -> Result<(Records, usize), crate::kafka::range::SourceError> {
    let codec = crate::event::Codec::new(Default::default()).expect("the shipped schemas parse");
    let recs = crate::audit::read::topic(settings, &settings.topics.canaries, range)?;
    let mut bad = 0;
    let mut out = Vec::with_capacity(recs.len());
    for r in recs {
        let decoded = r.payload.as_deref().and_then(|p| {
            codec
                .decode_record(crate::event::SchemaKind::Verdict, &r.headers, p)
                .ok()
        });
        match decoded {
            Some(v) => out.push((v, r.headers)),
            None => bad += 1,
        }
    }
    Ok((out, bad))
}

/// Verdicts of canaries with their record headers.
pub type Records = Vec<(Verdict, Vec<(String, Vec<u8>)>)>;

/// The header of a canary's verdict record (for tests building records).
pub fn header(expect: Expect) -> (String, Vec<u8>) {
    (
        CANARY_HEADER.to_string(),
        expect.as_str().as_bytes().to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Level;

    fn verdict(id: &str, outcome: VerdictOutcome, at: i64, role: &str, by: &str) -> Verdict {
        Verdict {
            action_id: id.into(),
            session_id: "s".into(),
            agent_id: "a".into(),
            action_type: "t".into(),
            level: Level::AskFirst,
            outcome,
            is_final: outcome != VerdictOutcome::AwaitHuman,
            triggers: vec![],
            roles: vec![role.into()],
            escalation_ids: vec![],
            rule_version: "v".into(),
            decided_at_ms: at,
            decided_by: (!by.is_empty()).then(|| by.into()),
            comment: None,
            revised_output: None,
            redirect_role: None,
            drill: false,
            chosen_option: None,
            revised_arguments: None,
            receipt: None,
        }
    }

    #[test]
    fn figures_per_role() {
        use VerdictOutcome::*;
        let r = |id, o, at, role, by, e| (verdict(id, o, at, role, by), vec![header(e)]);
        let records = vec![
            r("1", AwaitHuman, 0, "compliance", "", Expect::Reject),
            r("1", Rejected, 10_000, "compliance", "ana", Expect::Reject),
            r("2", AwaitHuman, 0, "compliance", "", Expect::Reject),
            r("2", Approved, 2_000, "compliance", "sam", Expect::Reject),
            r("3", AwaitHuman, 0, "compliance", "", Expect::Approve),
            r(
                "3",
                TimedOutBlocked,
                90_000,
                "compliance",
                "",
                Expect::Approve,
            ),
            r("4", AwaitHuman, 0, "compliance", "", Expect::Reject),
            r("5", AwaitHuman, 0, "trader", "", Expect::Approve),
            r("5", Approved, 30_000, "trader", "tom", Expect::Approve),
        ];
        let f = figures(&records);
        assert_eq!(f.len(), 2);
        let c = &f[0];
        assert_eq!(
            (
                c.role.as_str(),
                c.sent,
                c.caught,
                c.missed,
                c.timed_out,
                c.open
            ),
            ("compliance", 4, 1, 1, 1, 1)
        );
        assert_eq!(c.catch_rate, Some(1.0 / 3.0));
        assert_eq!((c.answer_p50_s, c.answer_p90_s), (Some(2.0), Some(10.0)));
        assert_eq!(c.missed_by.get("sam"), Some(&1));
        assert_eq!((f[1].role.as_str(), f[1].caught), ("trader", 1));
        let md = markdown(&f);
        assert!(
            md.contains("| compliance | 4 | 1 | 1 | 1 | 0 | 1 | 33 % | 2.0 s | 10.0 s |"),
            "{md}"
        );
        assert!(md.contains("- sam (compliance): 1"), "{md}");
    }
}
