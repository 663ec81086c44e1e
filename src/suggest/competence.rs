//! The competence curve: per action type, the share of its decided escalations approved
//! unchanged, week by week, and the week it first crossed the graduation threshold — as numbers
//! for the report and as a PNG drawn with `plotters` (title, axes with their units, a line per
//! action type named in the legend, the threshold dashed).

use super::{Case, Fate};
use crate::replay::chart::{register_font, rgb_png, FONT, PALETTE};
use plotters::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;
/// Action types drawn, at most (the most escalated).
pub const DRAWN: usize = 8;

/// One action type's weeks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    /// The action type.
    pub action_type: String,
    /// (week number from the first week of the data, decided escalations, approved unchanged).
    pub weeks: Vec<(i64, usize, usize)>,
    /// The first week with at least `min_per_week` decided and the share at the threshold.
    pub crossed: Option<i64>,
}

impl Curve {
    /// Decided escalations in all weeks.
    pub fn total(&self) -> usize {
        self.weeks.iter().map(|w| w.1).sum()
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
            let crossed = weeks
                .iter()
                .find(|(_, n, k)| *n >= min_per_week && *k as f64 / *n as f64 >= threshold)
                .map(|w| w.0);
            Curve {
                action_type: ty.to_string(),
                weeks,
                crossed,
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

/// The chart: share approved unchanged (%) per week, one line per action type (the
/// [`DRAWN`] most escalated), the threshold dashed; crossings marked with a dot.
pub fn png(curves: &[Curve], threshold: f64) -> Vec<u8> {
    register_font();
    let (w, h) = (1280u32, 720u32);
    let mut px = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut px, (w, h)).into_drawing_area();
        draw(&root, curves, threshold).expect("drawing into memory");
        root.present().expect("drawing into memory");
    }
    rgb_png(&px, w, h)
}

fn draw(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    curves: &[Curve],
    threshold: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let last = curves
        .iter()
        .flat_map(|c| c.weeks.iter().map(|w| w.0))
        .max()
        .unwrap_or(0)
        + 1;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Competence: share of escalations approved unchanged, week by week",
            (FONT, 26).into_font(),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(1i64..last.max(2), 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("week (from the first week of the data)")
        .y_desc("approved unchanged (%)")
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    let t = threshold * 100.0;
    chart
        .draw_series(DashedLineSeries::new(
            [(1, t), (last.max(2), t)],
            8,
            6,
            RGBColor(120, 120, 120).stroke_width(2),
        ))?
        .label(format!("graduation threshold ({t:.0}%)"))
        .legend(|(x, y)| {
            PathElement::new(
                [(x, y), (x + 24, y)],
                RGBColor(120, 120, 120).stroke_width(2),
            )
        });
    for (i, c) in curves.iter().take(DRAWN).enumerate() {
        let [r, g, b] = PALETTE[i % PALETTE.len()];
        let colour = RGBColor(r, g, b);
        let points: Vec<(i64, f64)> = c
            .weeks
            .iter()
            .map(|(w, n, k)| (w + 1, 100.0 * *k as f64 / *n as f64))
            .collect();
        let name = match c.crossed {
            Some(w) => format!("{} (crossed in week {})", c.action_type, w + 1),
            None => c.action_type.clone(),
        };
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(3)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3)));
        // Every week's point, so a type seen in one week only still shows.
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, colour.filled())))?;
        if let Some(w) = c.crossed {
            let at = points.iter().find(|p| p.0 == w + 1).copied();
            chart.draw_series(at.map(|p| Circle::new(p, 7, colour.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
