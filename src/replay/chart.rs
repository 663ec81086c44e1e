//! The drill's timeline as a PNG, drawn with `plotters`: a title (the scenario), a legend of the
//! line styles, and one panel per role — named in its colour — with escalations sent per minute
//! (solid), acknowledgements per minute (dashed, lighter) and missed deadlines (red crosses, at
//! the number missed that minute). Every panel has the same axes: minutes since the start of
//! the drill, and counts per minute on one scale, so the panels compare at a glance.
//!
//! Text is drawn with the DejaVu Sans font shipped in `src/replay/fonts` (its licence beside it),
//! so rendering needs no system fonts.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// Colours handed to roles in order (RGB); red is kept for missed deadlines.
pub const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [188, 189, 34],
    [23, 190, 207],
];

/// Colour names for the legend, same order.
pub const PALETTE_NAMES: [&str; 8] = [
    "blue", "orange", "green", "purple", "brown", "pink", "olive", "cyan",
];

/// The colour of missed deadlines.
pub const MISSED: [u8; 3] = [214, 39, 40];

/// What the chart shows.
#[derive(Debug, Clone, Copy)]
pub struct Timeline<'a> {
    /// Title: the scenario's name.
    pub title: &'a str,
    /// Roles, one panel each, coloured from [`PALETTE`] in this order.
    pub roles: &'a [String],
    /// Per role: (minute, escalations, acknowledgements).
    pub series: &'a BTreeMap<String, Vec<(u64, usize, usize)>>,
    /// Per role: (minute, deadlines missed).
    pub missed: &'a BTreeMap<String, Vec<(u64, usize)>>,
    /// Length of the drill in minutes: the x axis runs from 0 to it.
    pub minutes: u64,
}

const WIDTH: u32 = 1280;
const HEADER: u32 = 100;
const PANEL: u32 = 250;
pub(crate) const FONT: &str = "sans-serif";

/// Draws the chart; returns PNG bytes.
pub fn timeline_png(t: &Timeline<'_>) -> Vec<u8> {
    register_font();
    let cols = if t.roles.len() > 1 { 2 } else { 1 };
    let rows = t.roles.len().div_ceil(cols).max(1);
    let (w, h) = (WIDTH, HEADER + rows as u32 * PANEL);
    let mut px = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut px, (w, h)).into_drawing_area();
        draw(&root, t, rows, cols).expect("drawing into memory");
        root.present().expect("drawing into memory");
    }
    rgb_png(&px, w, h)
}

/// An RGB pixel buffer of `w` × `h` as PNG bytes.
pub(crate) fn rgb_png(px: &[u8], w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().expect("in-memory PNG header");
    writer.write_image_data(px).expect("in-memory PNG data");
    writer.finish().expect("in-memory PNG end");
    out
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;

pub(crate) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bytes = include_bytes!("fonts/DejaVuSans.ttf");
        if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_err() {
            panic!("the shipped font is a valid TrueType font");
        }
    });
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// `c` mixed with white: the acknowledgements' shade of a role's colour.
fn lighter(c: [u8; 3]) -> RGBColor {
    let mix = |x: u8| x + ((255 - x) as f64 * 0.45) as u8;
    RGBColor(mix(c[0]), mix(c[1]), mix(c[2]))
}

fn draw(root: &Area<'_>, t: &Timeline<'_>, rows: usize, cols: usize) -> Drawn {
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(HEADER);
    header.draw(&Text::new(
        t.title.to_string(),
        (24, 14),
        (FONT, 30).into_font().color(&BLACK),
    ))?;
    legend(&header)?;
    let top = top_value(t);
    let panels = body.split_evenly((rows, cols));
    if t.roles.is_empty() {
        panels[0].draw(&Text::new(
            "No escalations during the drill.",
            (60, 40),
            (FONT, 20).into_font().color(&BLACK),
        ))?;
    }
    for (i, (role, area)) in t.roles.iter().zip(&panels).enumerate() {
        panel(area, t, role, PALETTE[i % PALETTE.len()], top)?;
    }
    Ok(())
}

/// The line styles, under the title.
fn legend(header: &Area<'_>) -> Drawn {
    let text = (FONT, 17).into_font().color(&BLACK);
    let (y, grey) = (68, [90, 90, 90]);
    header.draw(&PathElement::new(
        [(24, y), (64, y)],
        rgb(grey).stroke_width(3),
    ))?;
    header.draw(&Text::new("escalations sent", (72, y - 10), text.clone()))?;
    header.draw(&DashedPathElement::new(
        [(260, y), (300, y)],
        7,
        5,
        lighter(grey).stroke_width(3),
    ))?;
    header.draw(&Text::new("acknowledgements", (308, y - 10), text.clone()))?;
    header.draw(&Cross::new((514, y), 6, rgb(MISSED).stroke_width(3)))?;
    header.draw(&Text::new("missed deadlines", (528, y - 10), text.clone()))?;
    header.draw(&Text::new(
        "each panel: one role, counts per minute on the same scale",
        (740, y - 10),
        (FONT, 15).into_font().color(&RGBColor(90, 90, 90)),
    ))?;
    Ok(())
}

/// The highest count of any role in any minute, with room above it.
fn top_value(t: &Timeline<'_>) -> u64 {
    let lines = t
        .series
        .values()
        .flat_map(|s| s.iter().map(|(_, e, a)| (*e).max(*a)));
    let missed = t.missed.values().flat_map(|s| s.iter().map(|(_, n)| *n));
    let max = lines.chain(missed).max().unwrap_or(0) as u64;
    (max + max / 10 + 1).max(5)
}

fn panel(area: &Area<'_>, t: &Timeline<'_>, role: &str, colour: [u8; 3], top: u64) -> Drawn {
    let minutes = t.minutes.max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(role, (FONT, 21).into_font().color(&rgb(colour)))
        .margin_left(12)
        .margin_right(24)
        .margin_bottom(6)
        .x_label_area_size(46)
        .y_label_area_size(62)
        .build_cartesian_2d(0..minutes, 0..top)?;
    chart
        .configure_mesh()
        .x_desc("minutes since start")
        .y_desc("per minute")
        .x_labels(13)
        .y_labels(6)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 15))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(RGBColor(243, 243, 243))
        .y_max_light_lines(1)
        .draw()?;
    let series = t.series.get(role).map(Vec::as_slice).unwrap_or_default();
    let at = |m: u64| series.iter().find(|(x, _, _)| *x == m);
    let escalations = (0..=minutes).map(|m| (m, at(m).map_or(0, |x| x.1) as u64));
    let acks = (0..=minutes).map(|m| (m, at(m).map_or(0, |x| x.2) as u64));
    chart.draw_series(DashedLineSeries::new(
        acks,
        7,
        5,
        lighter(colour).stroke_width(3),
    ))?;
    chart.draw_series(LineSeries::new(escalations, rgb(colour).stroke_width(2)))?;
    let missed = t.missed.get(role).map(Vec::as_slice).unwrap_or_default();
    chart.draw_series(
        missed
            .iter()
            .map(|(m, n)| Cross::new((*m, *n as u64), 6, rgb(MISSED).stroke_width(3))),
    )?;
    // On a coarse scale, how many, above each cross of more than one.
    let label = (FONT, 14).into_font().color(&rgb(MISSED));
    let labelled = missed.iter().filter(|(_, n)| *n > 1 && top >= 30);
    chart.draw_series(labelled.map(|(m, n)| {
        EmptyElement::at((*m, *n as u64)) + Text::new(n.to_string(), (-4, -24), label.clone())
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        (info.width, info.height, buf)
    }

    #[test]
    fn the_chart_has_a_panel_per_role_in_its_colour_and_red_crosses_for_misses() {
        let roles = vec!["trader".to_string(), "compliance".to_string()];
        let series = BTreeMap::from([
            ("trader".to_string(), vec![(1, 30, 5), (2, 10, 20)]),
            ("compliance".to_string(), vec![(1, 20, 0)]),
        ]);
        let bytes = |missed: &BTreeMap<String, Vec<(u64, usize)>>| {
            timeline_png(&Timeline {
                title: "A drill",
                roles: &roles,
                series: &series,
                missed,
                minutes: 10,
            })
        };
        let (w, h, px) = decode(&bytes(&BTreeMap::from([(
            "compliance".to_string(),
            vec![(3, 2)],
        )])));
        assert_eq!((w, h), (WIDTH, HEADER + PANEL), "two panels side by side");
        let count = |c: [u8; 3]| px.chunks(3).filter(|p| *p == c).count();
        assert!(count(PALETTE[0]) > 100, "the first role's lines");
        assert!(count(PALETTE[1]) > 100, "the second role's lines");
        assert_eq!(count(PALETTE[2]), 0, "no third role drawn");
        let legend_only = {
            let (_, _, px) = decode(&bytes(&BTreeMap::new()));
            px.chunks(3).filter(|p| *p == MISSED).count()
        };
        assert!(legend_only > 0, "the legend shows the cross");
        assert!(
            count(MISSED) > legend_only,
            "the miss is marked in its panel"
        );
    }

    #[test]
    fn many_roles_stack_in_two_columns_and_no_roles_still_draws() {
        let roles: Vec<String> = (0..5).map(|i| format!("role{i}")).collect();
        let empty = BTreeMap::new();
        let t = Timeline {
            title: "Five",
            roles: &roles,
            series: &empty,
            missed: &BTreeMap::new(),
            minutes: 30,
        };
        let (w, h, _) = decode(&timeline_png(&t));
        assert_eq!((w, h), (WIDTH, HEADER + 3 * PANEL));
        let (w, h, _) = decode(&timeline_png(&Timeline { roles: &[], ..t }));
        assert_eq!((w, h), (WIDTH, HEADER + PANEL));
    }
}
