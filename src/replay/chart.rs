//! A PNG chart of a drill: escalations (solid) and acknowledgements (dotted) per minute, one
//! colour per role, on a light grid (one vertical line every 5 minutes, one horizontal line
//! every 10 events). The chart carries no text; the Markdown report gives the legend.

use std::collections::BTreeMap;

/// Colours handed to roles in order (RGB).
pub const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];

/// Colour names for the legend, same order.
pub const PALETTE_NAMES: [&str; 8] = [
    "blue", "orange", "green", "red", "purple", "brown", "pink", "grey",
];

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![255; w * h * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A line, `thick` pixels wide; with `dotted`, every other 4-pixel run is skipped.
    fn line(
        &mut self,
        (x0, y0): (i64, i64),
        (x1, y1): (i64, i64),
        c: [u8; 3],
        thick: i64,
        dotted: bool,
    ) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err, mut n) = (x0, y0, dx + dy, 0i64);
        loop {
            if !dotted || (n / 4) % 2 == 0 {
                for t in 0..thick {
                    self.set(x, y + t, c);
                    self.set(x + t, y, c);
                }
            }
            n += 1;
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
}

/// Draws the chart: `series` per role, (minute, escalations, acknowledgements), over
/// `minutes`; roles in the order given get [`PALETTE`] colours. Returns PNG bytes.
pub fn timeline_png(
    roles: &[String],
    series: &BTreeMap<String, Vec<(u64, usize, usize)>>,
    minutes: u64,
) -> Vec<u8> {
    let (w, h, m) = (960usize, 480usize, 40i64);
    let mut c = Canvas::new(w, h);
    let top = series
        .values()
        .flat_map(|s| s.iter().map(|(_, e, a)| (*e).max(*a)))
        .max()
        .unwrap_or(1)
        .max(1) as i64;
    let minutes = minutes.max(1) as i64;
    let (pw, ph) = (w as i64 - 2 * m, h as i64 - 2 * m);
    let at = |minute: i64, v: i64| (m + minute * pw / minutes, h as i64 - m - v * ph / top);
    let grid = [225, 225, 225];
    for minute in (0..=minutes).step_by(5) {
        c.line(at(minute, 0), at(minute, top), grid, 1, false);
    }
    for v in (0..=top).step_by(10) {
        c.line(at(0, v), at(minutes, v), grid, 1, false);
    }
    c.line(at(0, 0), at(minutes, 0), [0, 0, 0], 2, false);
    c.line(at(0, 0), at(0, top), [0, 0, 0], 2, false);
    for (i, role) in roles.iter().enumerate() {
        let Some(s) = series.get(role) else { continue };
        let colour = PALETTE[i % PALETTE.len()];
        for (pick, dotted) in [(true, false), (false, true)] {
            let value = |minute: i64| {
                s.iter()
                    .find(|(x, _, _)| *x as i64 == minute)
                    .map_or(0, |(_, e, a)| if pick { *e } else { *a }) as i64
            };
            for minute in 0..minutes {
                c.line(
                    at(minute, value(minute)),
                    at(minute + 1, value(minute + 1)),
                    colour,
                    2,
                    dotted,
                );
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().expect("in-memory PNG header");
        writer.write_image_data(&c.px).expect("in-memory PNG data");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_a_png_of_the_given_size_with_each_roles_colour() {
        let roles = vec!["trader".to_string(), "compliance".to_string()];
        let series = BTreeMap::from([
            ("trader".to_string(), vec![(1, 30, 5), (2, 10, 20)]),
            ("compliance".to_string(), vec![(1, 20, 0)]),
        ]);
        let bytes = timeline_png(&roles, &series, 10);
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (960, 480));
        let has = |c: [u8; 3]| buf.chunks(3).any(|p| p == c);
        assert!(has(PALETTE[0]) && has(PALETTE[1]));
        assert!(!has(PALETTE[2]), "no third role drawn");
    }
}
