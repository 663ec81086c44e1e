//! The competence curve: per action type, the share of its decided escalations approved
//! unchanged, week by week, the week it first crossed the graduation threshold and the week it
//! fell below it again — as numbers for the report and as a PNG drawn with `plotters`: one
//! panel per action type (so no line hides another), each with its axes, the threshold dashed
//! and its status in the panel's title; the title says how many types are drawn of how many.

use super::{Case, Fate};
use crate::replay::chart::{register_font, rgb_png, FONT, PALETTE};
use plotters::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;
/// Action types drawn, at most (the most escalated); the chart's title says when there are more.
pub const DRAWN: usize = 12;

/// One action type's weeks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    /// The action type.
    pub action_type: String,
    /// (week number from the first week of the data, decided escalations, approved unchanged).
    pub weeks: Vec<(i64, usize, usize)>,
    /// The first week with at least `min_per_week` decided and the share at the threshold.
    pub crossed: Option<i64>,
    /// After `crossed`, the first such week below the threshold again.
    pub fell: Option<i64>,
}

impl Curve {
    /// Decided escalations in all weeks.
    pub fn total(&self) -> usize {
        self.weeks.iter().map(|w| w.1).sum()
    }

    /// Where it stands against the threshold, in words ("crossed in week 2", "crossed in week
    /// 1, below again from week 3", "not yet").
    pub fn status(&self) -> String {
        match (self.crossed, self.fell) {
            (None, _) => "not yet".into(),
            (Some(c), None) => format!("crossed in week {}", c + 1),
            (Some(c), Some(f)) => {
                format!("crossed in week {}, below again from week {}", c + 1, f + 1)
            }
        }
    }
}

/// The curves of every action type with decided escalations, the most escalated first.
pub fn curves(cases: &[Case], threshold: f64, min_per_week: usize) -> Vec<Curve> {
    let decided = |c: &&Case| {
        matches!(
            c.fate,
            Fate::Unchanged | Fate::Revised | Fate::Rejected | Fate::Redirected
        )
    };
    let Some(first) = cases.iter().filter(decided).map(|c| c.decided_at_ms).min() else {
        return Vec::new();
    };
    let mut by: BTreeMap<&str, BTreeMap<i64, (usize, usize)>> = BTreeMap::new();
    for c in cases.iter().filter(decided) {
        let w = (c.decided_at_ms - first) / WEEK_MS;
        let e = by
            .entry(c.action_type.as_str())
            .or_default()
            .entry(w)
            .or_default();
        e.0 += 1;
        e.1 += usize::from(c.fate == Fate::Unchanged);
    }
    let mut out: Vec<Curve> = by
        .into_iter()
        .map(|(ty, weeks)| {
            let weeks: Vec<(i64, usize, usize)> =
                weeks.into_iter().map(|(w, (n, k))| (w, n, k)).collect();
            let counted = |w: &&(i64, usize, usize)| w.1 >= min_per_week;
            let above = |w: &(i64, usize, usize)| w.2 as f64 / w.1 as f64 >= threshold;
            let crossed = weeks.iter().filter(counted).find(|w| above(w)).map(|w| w.0);
            let fell = crossed.and_then(|c| {
                weeks
                    .iter()
                    .filter(counted)
                    .find(|w| w.0 > c && !above(w))
                    .map(|w| w.0)
            });
            Curve {
                action_type: ty.to_string(),
                weeks,
                crossed,
                fell,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.total()
            .cmp(&a.total())
            .then(a.action_type.cmp(&b.action_type))
    });
    out
}

/// The chart: share approved unchanged (%) per week, one panel per action type (the [`DRAWN`]
/// most escalated), the threshold dashed in each, the crossing marked with a large dot.
pub fn png(curves: &[Curve], threshold: f64) -> Vec<u8> {
    register_font();
    let drawn = curves.len().clamp(1, DRAWN);
    let cols = drawn.min(3);
    let rows = drawn.div_ceil(cols);
    let (w, h) = (1280u32, (90 + rows as u32 * 210).max(720));
    let mut px = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut px, (w, h)).into_drawing_area();
        draw(&root, curves, threshold, (rows, cols)).expect("drawing into memory");
        root.present().expect("drawing into memory");
    }
    rgb_png(&px, w, h)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn draw(
    root: &Area<'_>,
    curves: &[Curve],
    threshold: f64,
    grid: (usize, usize),
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(90);
    let title = "Competence: share of decided escalations approved unchanged, week by week";
    header.draw(&Text::new(title, (20, 12), (FONT, 26).into_font()))?;
    let shown = if curves.len() > DRAWN {
        format!(
            "the {DRAWN} most escalated of {} action types (every type is in report.md); ",
            curves.len()
        )
    } else {
        format!("{} action type(s); ", curves.len())
    };
    let sub = format!(
        "{shown}dashed: the graduation threshold ({:.0}%); large dot: the week it was crossed",
        threshold * 100.0
    );
    header.draw(&Text::new(sub, (20, 54), (FONT, 17).into_font()))?;
    if curves.is_empty() {
        body.draw(&Text::new(
            "No decided escalations.",
            (40, 40),
            (FONT, 20).into_font(),
        ))?;
        return Ok(());
    }
    let last = curves
        .iter()
        .flat_map(|c| c.weeks.iter().map(|w| w.0))
        .max()
        .unwrap_or(0)
        + 1;
    for (i, (c, area)) in curves.iter().zip(body.split_evenly(grid)).enumerate() {
        let [r, g, b] = PALETTE[i % PALETTE.len()];
        panel(&area, c, threshold, last.max(2), RGBColor(r, g, b))?;
    }
    Ok(())
}

/// One action type's panel.
fn panel(
    area: &Area<'_>,
    c: &Curve,
    threshold: f64,
    last: i64,
    colour: RGBColor,
) -> Result<(), Box<dyn std::error::Error>> {
    let caption = format!("{} — {} decided; {}", c.action_type, c.total(), c.status());
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16).into_font())
        .margin(10)
        .x_label_area_size(34)
        .y_label_area_size(44)
        .build_cartesian_2d(1i64..last, 0f64..105f64)?;
    chart
        .configure_mesh()
        .x_desc("week")
        .y_desc("unchanged (%)")
        .x_labels(last.clamp(2, 12) as usize)
        .y_labels(6)
        .x_label_formatter(&|w| format!("{w}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    let t = threshold * 100.0;
    chart.draw_series(DashedLineSeries::new(
        [(1, t), (last, t)],
        8,
        6,
        RGBColor(120, 120, 120).stroke_width(2),
    ))?;
    let points: Vec<(i64, f64)> = c
        .weeks
        .iter()
        .map(|(w, n, k)| (w + 1, 100.0 * *k as f64 / *n as f64))
        .collect();
    chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(3)))?;
    // Every week's point, so a type seen in one week only still shows.
    chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, colour.filled())))?;
    if let Some(w) = c.crossed {
        let at = points.iter().find(|p| p.0 == w + 1).copied();
        chart.draw_series(at.map(|p| Circle::new(p, 7, colour.filled())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Level;

    fn case(ty: &str, week: i64, fate: Fate) -> Case {
        Case {
            action_id: format!("{ty}-{week}"),
            agent_id: "a".into(),
            action_type: ty.into(),
            confidence: Some(0.9),
            templated: Some(false),
            triggers: vec![],
            escalating: vec![],
            level: Level::AskFirst,
            decided_at_ms: week * WEEK_MS,
            fate,
            decide_ms: Some(1),
        }
    }

    #[test]
    fn a_type_that_crossed_and_fell_back_says_so() {
        let mut cases = Vec::new();
        // Week 1: 10 of 10; week 2: 5 of 10; week 3: 10 of 10.
        for (week, approved) in [(0, 10), (1, 5), (2, 10)] {
            for i in 0..10 {
                let fate = if i < approved {
                    Fate::Unchanged
                } else {
                    Fate::Rejected
                };
                cases.push(case("loan.approve", week, fate));
            }
        }
        let c = &curves(&cases, 0.9, 5)[0];
        assert_eq!((c.crossed, c.fell), (Some(0), Some(1)));
        assert_eq!(c.status(), "crossed in week 1, below again from week 2");
        let steady = &curves(&cases[..10], 0.9, 5)[0];
        assert_eq!(steady.status(), "crossed in week 1");
        let none = &curves(&cases[10..20], 0.9, 5)[0];
        assert_eq!(none.status(), "not yet");
    }
}
