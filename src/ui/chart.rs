//! Charts people can read, drawn on the server as SVG: bars per day (stacked by series, with a
//! money or count axis, dates under the bars and a legend) and horizontal bars per category
//! (a channel, a status). Every bar has a `<title>` (the browser's tooltip) saying what it
//! is; with no data the chart is a sentence instead. Text is escaped here.
//!
//! Horizontal positions are percentages and vertical ones pixels, so an inline chart fills its
//! column at any width while its text keeps the page's size. Colours are presentation
//! attributes (the CSP forbids inline styles); text is `currentColor`, so dark mode works.

use std::fmt::Write;

use time::Date;

use super::i18n::{Lang, day as day_label};
use crate::pay::money::format_yuan;

/// What the values count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Money in fen, shown as yuan.
    Fen,
    /// A number of things.
    Count,
}

/// A series of a daily chart: one value per day.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// One value per day of [`Daily::days`], in [`Daily::unit`].
    pub values: Vec<i64>,
}

/// Bars per day, the series stacked.
#[derive(Debug, Clone)]
pub struct Daily<'a> {
    pub days: Vec<Date>,
    pub series: Vec<Series>,
    pub unit: Unit,
    /// The sentence shown while every value is 0.
    pub empty: &'a str,
    pub label: &'a str,
}

/// One bar of a horizontal bar chart.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub color: &'static str,
    pub value: i64,
    /// Added to the tooltip (e.g. how many payments make the amount).
    pub note: String,
}

/// Colours of categories, in order.
pub const PALETTE: &[&str] = &[
    "#c8102e", "#1677ff", "#07c160", "#f59e0b", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
];

/// The colour of a payment channel.
pub fn channel_color(channel: &str) -> &'static str {
    match channel {
        "wechat" => "#07c160",
        "alipay" => "#1677ff",
        _ => "#888888",
    }
}

/// The colour of a payment status.
pub fn status_color(status: &str) -> &'static str {
    match status {
        "paid" => "#0a7d3b",
        "pending" => "#f59e0b",
        "refunded" => "#7c3aed",
        _ => "#9ca3af",
    }
}

/// `text` safe inside SVG text and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `text`, with "…" when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

/// A value as its full text: `¥12.30` or `12`.
pub fn full_value(unit: Unit, value: i64) -> String {
    match unit {
        Unit::Fen => format!("¥{}", format_yuan(value)),
        Unit::Count => value.to_string(),
    }
}

/// A value as an axis label: short (`¥1.5万`, `¥1.5k`, `¥0.5`).
pub fn axis_value(lang: Lang, unit: Unit, value: i64) -> String {
    if unit == Unit::Count {
        return value.to_string();
    }
    let yuan = value as f64 / 100.0;
    let short = |x: f64| {
        let text = format!("{x:.1}");
        text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
    };
    match lang {
        Lang::Zh if yuan >= 10_000.0 => format!("¥{}万", short(yuan / 10_000.0)),
        Lang::En if yuan >= 1_000_000.0 => format!("¥{}M", short(yuan / 1_000_000.0)),
        Lang::En if yuan >= 1_000.0 => format!("¥{}k", short(yuan / 1_000.0)),
        _ if value % 100 == 0 => format!("¥{}", value / 100),
        _ => format!("¥{}", format_yuan(value).trim_end_matches('0')),
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ step at least `raw`.
fn nice_step(raw: i64) -> i64 {
    let mut magnitude = 1i64;
    while magnitude.saturating_mul(10) <= raw.max(1) {
        magnitude *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10 * magnitude)
}

const FONT: &str = "font-size=\"12\" fill=\"currentColor\"";
const PLOT_TOP: f64 = 12.0;
const PLOT_HEIGHT: f64 = 160.0;
const LEFT: f64 = 14.0;
const RIGHT: f64 = 99.0;

fn open_svg(out: &mut String, height: f64, label: &str, standalone: bool) {
    let size = if standalone {
        format!("xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" font-family=\"sans-serif\" height=\"{height}\"")
    } else {
        format!("width=\"100%\" height=\"{height}\"")
    };
    let _ = write!(
        out,
        "<svg {size} role=\"img\" aria-label=\"{}\" class=\"chart-svg\">",
        escape(label)
    );
}

/// The sentence shown instead of a chart without data.
fn empty(text: &str, standalone: bool) -> String {
    if !standalone {
        return format!("<p class=\"empty chart-empty\">{}</p>", escape(text));
    }
    // A document of its own cannot wrap text: cut it into lines.
    let per_line = if text.is_ascii() { 70 } else { 36 };
    let chars: Vec<char> = text.chars().collect();
    let lines: Vec<String> = chars.chunks(per_line).map(|c| c.iter().collect()).collect();
    let mut out = String::new();
    open_svg(&mut out, 24.0 * lines.len() as f64 + 24.0, text, true);
    for (i, line) in lines.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"50%\" y=\"{}\" text-anchor=\"middle\" {FONT}>{}</text>",
            28.0 + 24.0 * i as f64,
            escape(line)
        );
    }
    out.push_str("</svg>");
    out
}

/// Bars per day, stacked by series, with the value axis on the left, dates below and a
/// legend. `standalone` makes a document of its own (an `image/svg+xml` answer).
pub fn daily(lang: Lang, chart: &Daily<'_>, standalone: bool) -> String {
    let n = chart.days.len();
    let totals: Vec<i64> = (0..n)
        .map(|d| {
            chart
                .series
                .iter()
                .map(|s| s.values.get(d).copied().unwrap_or(0).max(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    if max == 0 || n == 0 {
        return empty(chart.empty, standalone);
    }
    let step = nice_step((max + 3) / 4);
    let top = step * ((max + step - 1) / step);
    let legend_rows = chart.series.len().div_ceil(2);
    let height = PLOT_TOP + PLOT_HEIGHT + 26.0 + 20.0 * legend_rows as f64;
    let base = PLOT_TOP + PLOT_HEIGHT;
    let y_of = |v: i64| base - v as f64 / top as f64 * PLOT_HEIGHT;
    let mut out = String::with_capacity(8192);
    open_svg(&mut out, height, chart.label, standalone);

    // The value axis: grid lines and their labels.
    let mut tick = 0;
    while tick <= top {
        let y = y_of(tick);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}%\" x2=\"{RIGHT}%\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"currentColor\" stroke-opacity=\"{}\"/>\
             <text x=\"{LEFT}%\" dx=\"-6\" y=\"{y:.1}\" dy=\"4\" text-anchor=\"end\" {FONT}>{}</text>",
            if tick == 0 { "0.5" } else { "0.12" },
            escape(&axis_value(lang, chart.unit, tick))
        );
        tick += step;
    }

    // The bars, each segment with its tooltip.
    let slot = (RIGHT - LEFT) / n as f64;
    for (d, date) in chart.days.iter().enumerate() {
        let x = LEFT + slot * d as f64 + slot * 0.15;
        let width = slot * 0.7;
        let label = day_label(lang, *date);
        let mut stacked = 0;
        for series in &chart.series {
            let value = series.values.get(d).copied().unwrap_or(0).max(0);
            if value == 0 {
                continue;
            }
            let (y0, y1) = (y_of(stacked), y_of(stacked + value));
            stacked += value;
            let _ = write!(
                out,
                "<rect x=\"{x:.2}%\" y=\"{y1:.1}\" width=\"{width:.2}%\" height=\"{h:.1}\" fill=\"{c}\">\
                 <title>{label} · {name} · {v}</title></rect>",
                h = (y0 - y1).max(1.0),
                c = series.color,
                name = escape(&series.name),
                v = full_value(chart.unit, value),
            );
        }
    }

    // Dates under the bars: every tenth day, counted back from the last (today), so that
    // they stay apart on a phone.
    for d in (0..n).rev().step_by(10) {
        let x = LEFT + slot * (d as f64 + 0.5);
        let anchor = if d + 1 == n { "end" } else { "middle" };
        let _ = write!(
            out,
            "<text x=\"{x:.2}%\" y=\"{y}\" text-anchor=\"{anchor}\" {FONT}>{}</text>",
            day_label(lang, chart.days[d]),
            y = base + 18.0,
        );
    }

    // The legend: two columns.
    for (i, series) in chart.series.iter().enumerate() {
        let x = LEFT + (i % 2) as f64 * 43.0;
        let y = base + 42.0 + 20.0 * (i / 2) as f64;
        let _ = write!(
            out,
            "<rect x=\"{x}%\" y=\"{ry}\" width=\"10\" height=\"10\" rx=\"2\" fill=\"{c}\"/>\
             <text x=\"{x}%\" dx=\"15\" y=\"{y}\" {FONT}>{name}<title>{full}</title></text>",
            ry = y - 9.0,
            c = series.color,
            name = escape(&clip(&series.name, 16)),
            full = escape(&series.name),
        );
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars, one per category, longest first as given, the value at the end of each.
pub fn bars(unit: Unit, bars: &[Bar], label: &str, empty_text: &str, standalone: bool) -> String {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0);
    if max <= 0 {
        return empty(empty_text, standalone);
    }
    const ROW: f64 = 34.0;
    const BAR_LEFT: f64 = 30.0;
    const BAR_MAX: f64 = 50.0;
    let mut out = String::with_capacity(2048);
    open_svg(&mut out, ROW * bars.len() as f64 + 8.0, label, standalone);
    for (i, bar) in bars.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let width = (bar.value.max(0) as f64 / max as f64 * BAR_MAX).max(if bar.value > 0 { 0.5 } else { 0.0 });
        let value = full_value(unit, bar.value);
        let tip = if bar.note.is_empty() {
            format!("{} · {value}", bar.label)
        } else {
            format!("{} · {value} · {}", bar.label, bar.note)
        };
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{ty}\" {FONT}>{name}</text>\
             <rect x=\"{BAR_LEFT}%\" y=\"{y:.1}\" width=\"{width:.2}%\" height=\"24\" rx=\"3\" fill=\"{c}\"><title>{tip}</title></rect>\
             <text x=\"{vx:.2}%\" dx=\"6\" y=\"{ty}\" {FONT}>{value}</text>",
            ty = y + 16.0,
            name = escape(&clip(&bar.label, 10)),
            c = bar.color,
            tip = escape(&tip),
            vx = BAR_LEFT + width,
            value = escape(&value),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn days(n: i64) -> Vec<Date> {
        (0..n)
            .map(|i| date!(2024 - 04 - 20) + time::Duration::days(i))
            .collect()
    }

    #[test]
    fn no_data_is_a_sentence_not_an_empty_box() {
        let chart = Daily {
            days: days(30),
            series: vec![Series {
                name: "a".into(),
                color: "#000",
                values: vec![0; 30],
            }],
            unit: Unit::Fen,
            empty: "还没有捐赠。",
            label: "x",
        };
        let inline = daily(Lang::Zh, &chart, false);
        assert_eq!(inline, "<p class=\"empty chart-empty\">还没有捐赠。</p>");
        let standalone = daily(Lang::Zh, &chart, true);
        assert!(standalone.starts_with("<svg xmlns=") && standalone.contains("还没有捐赠。"));
        assert!(bars(Unit::Count, &[], "x", "无", false).contains("无"));
    }

    #[test]
    fn a_daily_chart_has_axes_dates_tooltips_and_a_legend() {
        let mut values = vec![0; 30];
        values[29] = 12_345;
        values[3] = 500;
        let chart = Daily {
            days: days(30),
            series: vec![
                Series {
                    name: "<b>灾区</b>".into(),
                    color: "#c8102e",
                    values: values.clone(),
                },
                Series {
                    name: "a&b".into(),
                    color: "#1677ff",
                    values: vec![100; 30],
                },
            ],
            unit: Unit::Fen,
            empty: "",
            label: "近 30 天",
        };
        let svg = daily(Lang::Zh, &chart, false);
        assert!(svg.contains("&lt;b&gt;灾区&lt;/b&gt;") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("a&amp;b"));
        // The busiest day is 124.45 yuan: the axis goes to 150 in steps of 50.
        for tick in [">¥0<", ">¥50<", ">¥100<", ">¥150<"] {
            assert!(svg.contains(tick), "{tick} in {svg}");
        }
        assert!(
            svg.contains("<title>5月19日 · &lt;b&gt;灾区&lt;/b&gt; · ¥123.45</title>"),
            "{svg}"
        );
        assert!(svg.contains(">5月19日<"), "today's date is under the last bar");
        assert!(svg.contains(">5月9日<"), "ten days earlier too");
        assert_eq!(
            svg.matches("<rect").count(),
            2 + 30 + 2,
            "bars with a value, plus the legend"
        );
        let en = daily(Lang::En, &chart, false);
        assert!(en.contains(">May 19<") && en.contains("Apr 23 · &lt;b&gt;灾区&lt;/b&gt; · ¥5.00"));
    }

    #[test]
    fn horizontal_bars_scale_to_the_largest_and_say_their_value() {
        let svg = bars(
            Unit::Fen,
            &[
                Bar {
                    label: "微信支付".into(),
                    color: "#07c160",
                    value: 20_000,
                    note: "3 笔".into(),
                },
                Bar {
                    label: "支付宝".into(),
                    color: "#1677ff",
                    value: 5_000,
                    note: String::new(),
                },
            ],
            "渠道",
            "",
            false,
        );
        assert!(svg.contains("width=\"50.00%\""), "{svg}");
        assert!(svg.contains("width=\"12.50%\""), "{svg}");
        assert!(svg.contains("<title>微信支付 · ¥200.00 · 3 笔</title>"));
        assert!(svg.contains(">¥50.00<"));
    }

    #[test]
    fn axis_labels_are_short() {
        assert_eq!(axis_value(Lang::Zh, Unit::Fen, 150_000_000), "¥150万");
        assert_eq!(axis_value(Lang::Zh, Unit::Fen, 2_500_000), "¥2.5万");
        assert_eq!(axis_value(Lang::En, Unit::Fen, 2_500_000), "¥25k");
        assert_eq!(axis_value(Lang::En, Unit::Fen, 5_000), "¥50");
        assert_eq!(axis_value(Lang::En, Unit::Fen, 50), "¥0.5");
        assert_eq!(axis_value(Lang::En, Unit::Count, 7), "7");
        assert_eq!(nice_step(1), 1);
        assert_eq!(nice_step(3), 5);
        assert_eq!(nice_step(3_112), 5_000);
        assert_eq!(nice_step(20), 20);
    }
}
