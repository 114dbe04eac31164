//! The 30-day donations chart (`GET /api/stats/chart.svg`) drawn as SVG: stacked bars per
//! day, one colour per category, and a legend. Pure; the rankings cache serves it.

use std::fmt::Write as _;

use crate::pay::money::format_yuan;

/// One bar segment: a category's amount on a day.
pub(super) struct ChartPoint {
    /// 0..=29, 29 = today.
    pub day_index: i32,
    pub category: i64,
    /// Fen.
    pub amount_fen: i64,
}

const PALETTE: &[&str] = &[
    "#c8102e", "#1677ff", "#07c160", "#f59e0b", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
];

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Stacked bars per day, one colour per category, with a legend.
pub(super) fn chart_svg(points: &[ChartPoint], names: &[(i64, String)]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 8.0;
    const TOP: f64 = 8.0;
    let mut per_day = [0i64; 30];
    for p in points {
        if let Some(slot) = usize::try_from(p.day_index).ok().and_then(|i| per_day.get_mut(i)) {
            *slot += p.amount_fen.max(0);
        }
    }
    let max = per_day.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar = (W - 2.0 * LEFT) / 30.0;
    let mut svg = String::with_capacity(4096);
    let legend_rows = names.len().div_ceil(3).max(1);
    let height = H + 20.0 + 18.0 * legend_rows as f64;
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {height}\" role=\"img\" \
         aria-label=\"近30天捐赠\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#999\" stroke-width=\"1\"/>",
        y = TOP + H,
        x2 = W - LEFT
    );
    let mut stacked = [0i64; 30];
    for p in points {
        let Some(day) = usize::try_from(p.day_index).ok().filter(|d| *d < 30) else {
            continue;
        };
        let colour = names
            .iter()
            .position(|(id, _)| *id == p.category)
            .map_or("#888", |i| PALETTE[i % PALETTE.len()]);
        let amount = p.amount_fen.max(0);
        let y0 = TOP + H - stacked[day] as f64 / max * H;
        let h = amount as f64 / max * H;
        stacked[day] += amount;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{yuan}</title></rect>",
            x = LEFT + day as f64 * bar + 1.0,
            y = y0 - h,
            w = bar - 2.0,
            yuan = format_yuan(amount),
        );
    }
    for (i, (_, name)) in names.iter().enumerate() {
        let (col, row) = (i % 3, i / 3);
        let x = LEFT + col as f64 * (W / 3.0);
        let y = TOP + H + 20.0 + row as f64 * 18.0;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{ry}\" width=\"10\" height=\"10\" fill=\"{c}\"/><text x=\"{tx}\" y=\"{y}\">{n}</text>",
            ry = y - 9.0,
            c = PALETTE[i % PALETTE.len()],
            tx = x + 14.0,
            n = xml_escape(name),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_escapes_category_names_and_scales_to_the_busiest_day() {
        let points = [
            ChartPoint {
                day_index: 29,
                category: 1,
                amount_fen: 1000,
            },
            ChartPoint {
                day_index: 28,
                category: 2,
                amount_fen: 500,
            },
        ];
        let svg = chart_svg(&points, &[(1, "<b>灾区</b>".into()), (2, "a&b".into())]);
        assert!(svg.contains("&lt;b&gt;灾区&lt;/b&gt;"), "{svg}");
        assert!(svg.contains("a&amp;b"));
        assert!(!svg.contains("<b>"));
        assert!(
            svg.contains("height=\"200.0\""),
            "the busiest day fills the chart: {svg}"
        );
        assert!(svg.contains("height=\"100.0\""));
    }
}
