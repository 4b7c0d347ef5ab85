//! SVG building blocks shared by the charts: escaping, the time axis and
//! the shading of faults.
//!
//! Every chart is drawn in a coordinate system [`WIDTH`] units wide and
//! scales to the page's width. Elements that show a tooltip carry it in a
//! `data-tip` attribute, which the page's script reads as text (never as
//! HTML).

use super::model::Fault;
use std::fmt::Write;

/// Width of every chart in SVG units.
pub const WIDTH: f64 = 1200.0;
/// Room on the left for row labels.
pub const LEFT: f64 = 110.0;
/// Room on the right.
pub const RIGHT: f64 = 16.0;

/// Escapes text for HTML content and attribute values alike.
pub fn esc(text: &str) -> String {
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

/// Maps run time (nanoseconds) in `start..end` to x.
#[derive(Debug, Clone, Copy)]
pub struct TimeScale {
    pub start: u64,
    pub end: u64,
}

impl TimeScale {
    /// The whole run, from its start.
    pub fn run(end: u64) -> TimeScale {
        TimeScale {
            start: 0,
            end: end.max(1),
        }
    }

    pub fn x(&self, time: u64) -> f64 {
        let span = WIDTH - LEFT - RIGHT;
        let range = self.end.saturating_sub(self.start).max(1) as f64;
        let at = time.clamp(self.start, self.end) - self.start;
        LEFT + span * (at as f64 / range)
    }
}

/// Seconds, with as many decimals as a run of this length needs.
pub fn seconds(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s >= 100.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.3} s")
    }
}

/// A duration in the unit that reads best.
pub fn duration(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// A step of 1, 2 or 5 times a power of ten that splits `range` into about
/// `count` parts.
pub fn nice_step(range: f64, count: f64) -> f64 {
    let raw = (range / count).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    let unit = raw / power;
    let nice = if unit <= 1.0 {
        1.0
    } else if unit <= 2.0 {
        2.0
    } else if unit <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Vertical grid lines with second labels below `bottom`.
pub fn time_axis(svg: &mut String, scale: TimeScale, top: f64, bottom: f64) {
    let (from, to) = (scale.start as f64 / 1e9, scale.end as f64 / 1e9);
    let step = nice_step(to - from, 10.0);
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let mut n = (from / step).ceil();
    while n * step <= to + step * 1e-6 {
        let tick = n * step;
        let x = scale.x((tick * 1e9).round() as u64);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" \
                y2=\"{bottom:.1}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" \
                text-anchor=\"middle\">{tick:.decimals$}s</text>",
            bottom + 14.0
        );
        n += 1.0;
    }
}

/// Shades each fault's interval between `top` and `bottom`.
pub fn shade_faults(
    svg: &mut String,
    scale: TimeScale,
    faults: &[Fault],
    top: f64,
    bottom: f64,
) {
    for fault in faults {
        let x0 = scale.x(fault.start);
        let x1 = scale.x(fault.end.unwrap_or(scale.end)).max(x0 + 1.5);
        let until = fault.end.map(seconds).unwrap_or_else(|| "the end".into());
        let _ = write!(
            svg,
            "<rect class=\"fault {}\" x=\"{x0:.1}\" y=\"{top:.1}\" width=\"{:.1}\" \
                height=\"{:.1}\" data-tip=\"{}\"/>",
            fault.family.css(),
            x1 - x0,
            bottom - top,
            esc(&format!(
                "{} from {} to {until}",
                fault.detail,
                seconds(fault.start)
            )),
        );
    }
}

/// Opens an SVG element whose x axis is `scale`. The page's script reads
/// the scale from the attributes to draw a time cursor shared by every
/// chart that shows that moment.
pub fn open_time_svg(svg: &mut String, height: f64, label: &str, scale: TimeScale) {
    let _ = write!(
        svg,
        "<svg class=\"chart time\" viewBox=\"0 0 {WIDTH} {height:.0}\" \
            role=\"img\" aria-label=\"{}\" data-start=\"{}\" data-end=\"{}\" \
            data-x0=\"{LEFT}\" data-x1=\"{}\" \
            xmlns=\"http://www.w3.org/2000/svg\">",
        esc(label),
        scale.start,
        scale.end,
        WIDTH - RIGHT
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        let text = esc(r#"<script>alert("x")</script> & 'y'"#);
        assert!(!text.contains('<') && !text.contains('"') && !text.contains('\''));
        assert!(text.starts_with("&lt;script&gt;"));
    }

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(10.0, 10.0), 1.0);
        assert_eq!(nice_step(37.0, 10.0), 5.0);
        assert!((nice_step(0.3, 10.0) - 0.05).abs() < 1e-12);
    }
}
