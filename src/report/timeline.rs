//! The timeline: each client's operations from invocation to completion,
//! one lane per client, with the faults above and shaded behind.
//!
//! Jepsen gives a client a new process number after an `info`, so lanes are
//! reused: a process takes the first lane whose previous process has
//! finished. Long runs are drawn as buckets per lane whose stacked colours
//! show the outcomes of the operations open in the bucket.

use super::chart::{self, esc, seconds, TimeScale, LEFT};
use super::model::{Family, Fault, Span};
use history::OpType;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

/// Up to this many operations are drawn one by one.
pub const DETAILED_SPANS: usize = 4000;
/// Buckets per lane when aggregating, with few lanes; many lanes share
/// [`BUCKET_BUDGET`] so that the page stays small.
const BUCKETS: usize = 300;
const BUCKET_BUDGET: usize = 12_000;
const ROW: f64 = 14.0;
pub(super) const BAR: f64 = 10.0;
const FAULT_ROW: f64 = 12.0;

/// Draws the timeline. `highlight` holds the invocation indices of the
/// operations to outline (the counterexample); they are always drawn.
pub fn render(
    spans: &[Span],
    faults: &[Fault],
    end: u64,
    highlight: &HashSet<u64>,
) -> String {
    let scale = TimeScale::run(end);
    let (lanes, lane_of) = assign_lanes(spans, end);
    let families: Vec<Family> = Family::ALL
        .into_iter()
        .filter(|f| faults.iter().any(|fault| fault.family == *f))
        .collect();

    let lanes_top = 8.0 + families.len() as f64 * FAULT_ROW + 6.0;
    let bottom = lanes_top + lanes.len().max(1) as f64 * ROW + 4.0;
    let mut svg = String::new();
    chart::open_time_svg(&mut svg, bottom + 22.0, "timeline of operations", scale);
    chart::time_axis(&mut svg, scale, 4.0, bottom);
    chart::shade_faults(&mut svg, scale, faults, lanes_top - 2.0, bottom);

    // The fault lanes: one per kind of fault, with each interval as a bar.
    for (row, family) in families.iter().enumerate() {
        let y = 8.0 + row as f64 * FAULT_ROW;
        let _ = write!(
            svg,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 8.0,
            family.name()
        );
        let own: Vec<Fault> = faults
            .iter()
            .filter(|f| f.family == *family)
            .cloned()
            .collect();
        svg.push_str("<g class=\"lane\">");
        chart::shade_faults(&mut svg, scale, &own, y, y + FAULT_ROW - 3.0);
        svg.push_str("</g>");
    }

    for (lane, label) in lanes.iter().enumerate() {
        let y = lanes_top + lane as f64 * ROW;
        let _ = write!(
            svg,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + BAR,
            esc(label)
        );
    }

    let detailed = spans.len() <= DETAILED_SPANS;
    if detailed {
        let last = last_span_of_each_lane(&lane_of);
        for (i, span) in spans.iter().enumerate() {
            let y = lanes_top + lane_of[i] as f64 * ROW + (ROW - BAR) / 2.0;
            let tail = span.kind == OpType::Info && last.contains(&i);
            let mark = if highlight.contains(&span.invoke_index) {
                " cx"
            } else {
                ""
            };
            draw_span(&mut svg, scale, span, y, mark, tail);
        }
    } else {
        draw_buckets(&mut svg, scale, spans, &lane_of, lanes.len(), lanes_top);
        for (i, span) in spans.iter().enumerate() {
            if highlight.contains(&span.invoke_index) {
                let y = lanes_top + lane_of[i] as f64 * ROW + (ROW - BAR) / 2.0;
                draw_span(&mut svg, scale, span, y, " cx", false);
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Gives each process a lane; returns the lane labels and each span's lane.
fn assign_lanes(spans: &[Span], end: u64) -> (Vec<String>, Vec<usize>) {
    let mut extent: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for span in spans {
        let finish = span.end.unwrap_or(end);
        let entry = extent.entry(span.process).or_insert((span.start, finish));
        entry.0 = entry.0.min(span.start);
        entry.1 = entry.1.max(finish);
    }
    let mut order: Vec<(u64, (u64, u64))> = extent.into_iter().collect();
    order.sort_by_key(|&(process, (first, _))| (first, process));

    let mut lane_end: Vec<u64> = Vec::new();
    let mut lane_processes: Vec<Vec<u64>> = Vec::new();
    let mut lane_of_process = BTreeMap::new();
    for (process, (first, last)) in order {
        let lane = match lane_end.iter().position(|&e| e <= first) {
            Some(lane) => lane,
            None => {
                lane_end.push(0);
                lane_processes.push(Vec::new());
                lane_end.len() - 1
            }
        };
        lane_end[lane] = last;
        lane_processes[lane].push(process);
        lane_of_process.insert(process, lane);
    }

    let labels = lane_processes
        .iter()
        .map(|ps| match ps.as_slice() {
            [one] => format!("p{one}"),
            [first, second] => format!("p{first}, p{second}"),
            [first, second, ..] => format!("p{first}, p{second}, …"),
            [] => String::new(),
        })
        .collect();
    let lane_of = spans.iter().map(|s| lane_of_process[&s.process]).collect();
    (labels, lane_of)
}

fn last_span_of_each_lane(lane_of: &[usize]) -> HashSet<usize> {
    let mut last = BTreeMap::new();
    for (i, lane) in lane_of.iter().enumerate() {
        last.insert(lane, i);
    }
    last.into_values().collect()
}

fn kind_class(kind: OpType) -> &'static str {
    match kind {
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        _ => "info",
    }
}

/// One operation as a bar; an `info` that is the last operation in its lane
/// gets a faint tail to the end, since it may take effect at any time.
pub(super) fn draw_span(
    svg: &mut String,
    scale: TimeScale,
    span: &Span,
    y: f64,
    mark: &str,
    tail: bool,
) {
    let x0 = scale.x(span.start);
    let finish = span.end.unwrap_or(scale.end);
    let x1 = scale.x(finish).max(x0 + 1.5);
    let latency = span
        .latency()
        .map(chart::duration)
        .unwrap_or_else(|| "never completed".into());
    let tip = format!(
        "#{} {}\n{} → {} ({latency}){}",
        span.invoke_index,
        span.describe(),
        seconds(span.start),
        span.end.map(seconds).unwrap_or_else(|| "?".into()),
        span.node
            .as_ref()
            .map(|n| format!("\nnode {n}"))
            .unwrap_or_default()
    );
    if tail && span.end.is_some() {
        let _ = write!(
            svg,
            r#"<line class="tail" x1="{x1:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/>"#,
            scale.x(scale.end),
            y + BAR / 2.0,
            y + BAR / 2.0
        );
    }
    let _ = write!(
        svg,
        "<rect class=\"op {}{mark}\" x=\"{x0:.1}\" y=\"{y:.1}\" \
            width=\"{:.1}\" height=\"{BAR}\" data-tip=\"{}\"/>",
        kind_class(span.kind),
        x1 - x0,
        esc(&tip)
    );
}

/// Per lane and bucket: how many ok, fail and info operations were open in
/// it, and how many of each started there.
#[derive(Clone, Copy, Default)]
struct Bucket {
    open: [u32; 3],
    started: [u32; 3],
}

impl Bucket {
    /// The bar's split in eighths: by the open operations' outcomes, with
    /// at least an eighth for any failure or unknown so that none is lost.
    fn shares(&self) -> [u64; 3] {
        let total: u32 = self.open.iter().sum();
        if total == 0 {
            return [0; 3];
        }
        let part = |n: u32| match n {
            0 => 0,
            n => ((n as u64 * 8 + total as u64 / 2) / total as u64).max(1),
        };
        let (fail, info) = (part(self.open[1]), part(self.open[2]));
        [8u64.saturating_sub(fail + info), fail, info]
    }
}

fn slot(kind: OpType) -> usize {
    match kind {
        OpType::Ok => 0,
        OpType::Fail => 1,
        _ => 2,
    }
}

fn draw_buckets(
    svg: &mut String,
    scale: TimeScale,
    spans: &[Span],
    lane_of: &[usize],
    lanes: usize,
    top: f64,
) {
    let count = (BUCKET_BUDGET / lanes.max(1)).clamp(50, BUCKETS);
    let width = scale.end.div_ceil(count as u64).max(1);
    let mut grid = vec![vec![Bucket::default(); count]; lanes];
    for (span, &lane) in spans.iter().zip(lane_of) {
        let finish = span.end.unwrap_or(scale.end).min(scale.end);
        let kind = slot(span.kind);
        let first = ((span.start / width) as usize).min(count - 1);
        let last = ((finish / width) as usize).clamp(first, count - 1);
        grid[lane][first].started[kind] += 1;
        for bucket in &mut grid[lane][first..=last] {
            bucket.open[kind] += 1;
        }
    }

    for (lane, buckets) in grid.iter().enumerate() {
        let y = top + lane as f64 * ROW + (ROW - BAR) / 2.0;
        // Shares in eighths, so that runs of similar buckets merge.
        let shares: Vec<[u64; 3]> = buckets.iter().map(Bucket::shares).collect();
        let mut start = 0;
        while start < count {
            let mut stop = start + 1;
            while stop < count && shares[stop] == shares[start] {
                stop += 1;
            }
            draw_run(
                svg,
                scale,
                &buckets[start..stop],
                shares[start],
                start,
                stop,
                width,
                y,
            );
            start = stop;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_run(
    svg: &mut String,
    scale: TimeScale,
    run: &[Bucket],
    share: [u64; 3],
    start: usize,
    stop: usize,
    width: u64,
    y: f64,
) {
    if share == [0, 0, 0] {
        return;
    }
    let started = run.iter().fold([0u32; 3], |sum, b| {
        [
            sum[0] + b.started[0],
            sum[1] + b.started[1],
            sum[2] + b.started[2],
        ]
    });
    let from = start as u64 * width;
    let to = stop as u64 * width;
    let tip = format!(
        "{} – {}\n{} ok, {} fail, {} info started",
        seconds(from),
        seconds(to.min(scale.end)),
        started[0],
        started[1],
        started[2]
    );
    let x0 = scale.x(from);
    let w = (scale.x(to) - x0).max(0.5);
    let _ = write!(svg, r#"<g data-tip="{}">"#, esc(&tip));
    let mut bottom = y + BAR;
    for (k, class) in ["ok", "fail", "info"].iter().enumerate() {
        let h = BAR * share[k].min(8) as f64 / 8.0;
        if h > 0.0 {
            bottom -= h;
            let _ = write!(
                svg,
                "<rect class=\"op {class}\" x=\"{x0:.1}\" y=\"{bottom:.1}\" \
                    width=\"{w:.1}\" height=\"{h:.2}\"/>"
            );
        }
    }
    svg.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_failure_among_many_oks_keeps_an_eighth_of_the_bar() {
        let bucket = Bucket {
            open: [200, 1, 0],
            started: [0; 3],
        };
        assert_eq!(bucket.shares(), [7, 1, 0]);
        assert_eq!(Bucket::default().shares(), [0, 0, 0]);
    }
}
