//! Latency and throughput: a scatter of each operation's latency over time,
//! quantiles per function, and completions per second, all with the faults
//! shaded.
//!
//! The scatter keeps one dot per cell of [`CELL`] units and kind, so a run of
//! any length gives a plot of bounded size that looks the same.

use super::chart::{self, esc, seconds, TimeScale, LEFT, RIGHT, WIDTH};
use super::model::{Fault, Span};
use history::OpType;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

const CELL: f64 = 2.0;
const PLOT_TOP: f64 = 10.0;
const PLOT_BOTTOM: f64 = 250.0;

/// The latency scatter, on a logarithmic axis.
pub fn latency_plot(spans: &[Span], faults: &[Fault], end: u64) -> String {
    let scale = TimeScale::run(end);
    let latencies: Vec<u64> = spans.iter().filter_map(Span::latency).collect();
    let lo = latencies.iter().copied().min().unwrap_or(1_000).max(1_000) as f64;
    let hi = (latencies.iter().copied().max().unwrap_or(1_000_000) as f64).max(lo * 10.0);
    let (lo, hi) = (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil()),
    );
    let y = |ns: f64| {
        let share = (ns.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10());
        PLOT_BOTTOM - share * (PLOT_BOTTOM - PLOT_TOP)
    };

    let mut svg = String::new();
    let label = "latency of each operation over time";
    chart::open_time_svg(&mut svg, PLOT_BOTTOM + 24.0, label, scale);
    chart::time_axis(&mut svg, scale, PLOT_TOP, PLOT_BOTTOM);
    chart::shade_faults(&mut svg, scale, faults, PLOT_TOP, PLOT_BOTTOM);
    let mut decade = lo;
    while decade <= hi * 1.001 {
        let yy = y(decade);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" \
                y2=\"{yy:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" \
                text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            chart::duration(decade as u64)
        );
        decade *= 10.0;
    }

    for (kind, class) in [
        (OpType::Ok, "ok"),
        (OpType::Fail, "fail"),
        (OpType::Info, "info"),
    ] {
        let mut seen = HashSet::new();
        let mut path = String::new();
        for span in spans.iter().filter(|s| s.kind == kind) {
            let Some(latency) = span.latency() else {
                continue;
            };
            let (px, py) = (scale.x(span.start), y(latency as f64));
            let cell = ((px / CELL) as i64, (py / CELL) as i64);
            if seen.insert(cell) {
                let _ = write!(path, "M{px:.1} {py:.1}h0");
            }
        }
        if !path.is_empty() {
            let _ = write!(svg, r#"<path class="dots {class}" d="{path}"/>"#);
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Completions per second, stacked by kind.
pub fn throughput_plot(spans: &[Span], faults: &[Fault], end: u64) -> String {
    let scale = TimeScale::run(end);
    let step = ((chart::nice_step(end as f64 / 1e9, 150.0) * 1e9) as u64).max(1_000);
    let buckets = end.div_ceil(step) as usize + 1;
    let mut counts = vec![[0u32; 3]; buckets];
    for span in spans {
        let Some(done) = span.end else { continue };
        let k = match span.kind {
            OpType::Ok => 0,
            OpType::Fail => 1,
            _ => 2,
        };
        counts[(done / step) as usize][k] += 1;
    }
    let per_second = 1e9 / step as f64;
    let peak = counts
        .iter()
        .map(|c| c.iter().sum::<u32>() as f64 * per_second)
        .fold(1.0, f64::max);
    let top_rate =
        chart::nice_step(peak, 4.0) * (peak / chart::nice_step(peak, 4.0)).ceil();
    let bottom = 170.0;
    let y = |rate: f64| bottom - rate / top_rate * (bottom - PLOT_TOP);

    let mut svg = String::new();
    chart::open_time_svg(
        &mut svg,
        bottom + 24.0,
        "completed operations per second",
        scale,
    );
    chart::time_axis(&mut svg, scale, PLOT_TOP, bottom);
    chart::shade_faults(&mut svg, scale, faults, PLOT_TOP, bottom);
    let tick = chart::nice_step(top_rate, 4.0);
    let mut rate = 0.0;
    while rate <= top_rate + 1e-9 {
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" \
                y2=\"{:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" \
                text-anchor=\"end\">{rate:.0}/s</text>",
            WIDTH - RIGHT,
            y(rate),
            y(rate),
            LEFT - 6.0,
            y(rate) + 4.0
        );
        rate += tick;
    }

    // Stacked areas: each kind sits on top of the ones before it.
    let mut below = vec![0.0f64; buckets];
    for (k, class) in ["ok", "fail", "info"].iter().enumerate() {
        let mut upper = String::new();
        let mut lower = String::new();
        for (b, count) in counts.iter().enumerate() {
            let x = scale.x(b as u64 * step + step / 2);
            let top = below[b] + count[k] as f64 * per_second;
            let _ = write!(
                upper,
                "{}{x:.1} {:.1}",
                if b == 0 { "M" } else { "L" },
                y(top)
            );
            lower.insert_str(0, &format!("L{x:.1} {:.1}", y(below[b])));
            below[b] = top;
        }
        let _ = write!(svg, r#"<path class="area {class}" d="{upper}{lower}Z"/>"#);
    }
    for (b, count) in counts.iter().enumerate() {
        let x0 = scale.x(b as u64 * step);
        let tip = format!(
            "{} – {}\n{} ok, {} fail, {} info",
            seconds(b as u64 * step),
            seconds((b as u64 + 1) * step),
            count[0],
            count[1],
            count[2]
        );
        let _ = write!(
            svg,
            "<rect class=\"hit\" x=\"{x0:.1}\" y=\"{PLOT_TOP}\" width=\"{:.1}\" \
                height=\"{:.1}\" data-tip=\"{}\"/>",
            (scale.x((b as u64 + 1) * step) - x0).max(0.5),
            bottom - PLOT_TOP,
            esc(&tip)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Quantiles of ok latencies and outcome counts per function, as a table.
pub fn quantile_table(spans: &[Span]) -> String {
    let mut by_f: BTreeMap<&str, (Vec<u64>, [usize; 3])> = BTreeMap::new();
    for span in spans {
        let entry = by_f.entry(span.f.as_str()).or_default();
        match span.kind {
            OpType::Ok => {
                entry.1[0] += 1;
                entry.0.extend(span.latency());
            }
            OpType::Fail => entry.1[1] += 1,
            _ => entry.1[2] += 1,
        }
    }
    let mut html = String::from(
        "<table class=\"num\"><thead><tr><th>f</th><th>ok</th><th>fail</th><th>info</th>\
         <th>p50</th><th>p95</th><th>p99</th><th>max</th></tr></thead><tbody>",
    );
    for (f, (mut latencies, counts)) in by_f {
        latencies.sort_unstable();
        let q = |p: f64| {
            if latencies.is_empty() {
                return "–".to_string();
            }
            let rank =
                ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len());
            chart::duration(latencies[rank - 1])
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(f),
            counts[0],
            counts[1],
            counts[2],
            q(0.5),
            q(0.95),
            q(0.99),
            q(1.0)
        );
    }
    html.push_str("</tbody></table>");
    html
}
