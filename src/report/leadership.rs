//! The leadership chart: each node's role over time with its term, so that
//! two leaders in one term, or a long wait without any leader, stand out.

use super::chart::{self, esc, seconds, TimeScale, LEFT};
use super::model::{Family, Fault};
use super::roles::{self, Band};
use history::{Observation, Role};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

const ROW: f64 = 20.0;
const BAR: f64 = 14.0;
const TOP: f64 = 26.0;

/// Draws the chart. `extra_terms` are terms a checker reported as having
/// two leaders, in addition to those seen in the observations.
pub fn render(
    observations: &[Observation],
    faults: &[Fault],
    end: u64,
    extra_terms: &BTreeSet<u64>,
) -> String {
    let scale = TimeScale::run(end);
    let bands = roles::bands(observations, end);
    let mut split = roles::split_brains(observations);
    for term in extra_terms {
        split.entry(*term).or_default();
    }

    let bottom = TOP + bands.len().max(1) as f64 * ROW + 4.0;
    let mut svg = String::new();
    chart::open_time_svg(
        &mut svg,
        bottom + 22.0,
        "role of each node over time",
        scale,
    );
    chart::time_axis(&mut svg, scale, 4.0, bottom);
    chart::shade_faults(&mut svg, scale, faults, TOP - 2.0, bottom);

    // The top lane: windows without any leader, and split-brain marks.
    let _ = write!(
        svg,
        r#"<text class="label" x="{:.1}" y="16" text-anchor="end">leader</text>"#,
        LEFT - 6.0
    );
    for (from, to) in roles::leaderless(&bands, end) {
        let x0 = scale.x(from);
        let _ = write!(
            svg,
            "<rect class=\"leaderless\" x=\"{x0:.1}\" y=\"6\" width=\"{:.1}\" \
                height=\"12\" data-tip=\"{}\"/>",
            (scale.x(to) - x0).max(1.0),
            esc(&format!(
                "no leader for {} ({} – {})",
                chart::duration(to - from),
                seconds(from),
                seconds(to)
            ))
        );
    }

    if bands.is_empty() {
        let _ = write!(
            svg,
            r#"<text class="empty" x="{:.1}" y="{:.1}">no observations recorded</text>"#,
            LEFT + 10.0,
            TOP + 14.0
        );
    }
    for (row, (node, node_bands)) in bands.iter().enumerate() {
        let y = TOP + row as f64 * ROW + (ROW - BAR) / 2.0;
        let _ = write!(
            svg,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + BAR - 3.0,
            esc(node)
        );
        for band in node_bands {
            draw_band(
                &mut svg,
                scale,
                node,
                band,
                y,
                split.contains_key(&band.term),
            );
        }
        for fault in faults.iter().filter(|f| f.nodes.contains(node)) {
            if matches!(fault.family, Family::Kill | Family::Pause) {
                let x0 = scale.x(fault.start);
                let x1 = scale.x(fault.end.unwrap_or(end)).max(x0 + 1.0);
                let _ = write!(
                    svg,
                    "<rect class=\"down {}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" \
                        height=\"{BAR}\" data-tip=\"{}\"/>",
                    fault.family.css(),
                    x1 - x0,
                    esc(&format!(
                        "{} ({} – {})",
                        fault.detail,
                        seconds(fault.start),
                        fault.end.map(seconds).unwrap_or_else(|| "end".into())
                    ))
                );
            }
        }
    }

    mark_split_brains(&mut svg, scale, &bands, &split, bottom);
    svg.push_str("</svg>");
    svg
}

fn draw_band(
    svg: &mut String,
    scale: TimeScale,
    node: &str,
    band: &Band,
    y: f64,
    split: bool,
) {
    let x0 = scale.x(band.start);
    let w = (scale.x(band.end) - x0).max(0.8);
    let role = match band.role {
        Role::Leader => "leader",
        Role::Candidate => "candidate",
        Role::Follower => "follower",
    };
    let hint = band
        .leader_hint
        .as_ref()
        .map(|l| format!(", follows {l}"))
        .unwrap_or_default();
    let tip = format!(
        "{node}: {role} in term {}{hint}\n{} – {}",
        band.term,
        seconds(band.start),
        seconds(band.end)
    );
    let class = if split && band.role == Role::Leader {
        format!("{role} split")
    } else {
        role.to_string()
    };
    let _ = write!(
        svg,
        "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" \
            height=\"{BAR}\" data-tip=\"{}\"/>",
        esc(&tip)
    );
    if w > 26.0 {
        let _ = write!(
            svg,
            r#"<text class="term on-{role}" x="{:.1}" y="{:.1}">t{}</text>"#,
            x0 + 3.0,
            y + BAR - 3.5,
            band.term
        );
    }
}

/// A red marker over the moment a second leader of the same term appears.
fn mark_split_brains(
    svg: &mut String,
    scale: TimeScale,
    bands: &BTreeMap<String, Vec<Band>>,
    split: &BTreeMap<u64, BTreeSet<String>>,
    bottom: f64,
) {
    for (term, nodes) in split {
        let mut starts: Vec<u64> = bands
            .values()
            .flatten()
            .filter(|b| b.term == *term && b.role == Role::Leader)
            .map(|b| b.start)
            .collect();
        starts.sort();
        let Some(&at) = starts.get(1).or(starts.first()) else {
            continue;
        };
        let x = scale.x(at);
        let names: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let _ = write!(
            svg,
            "<g class=\"splitmark\" data-tip=\"{}\"><path d=\"M{:.1} 4 l6 0 l-3 7 \
                z\"/><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"11\" y2=\"{:.1}\"/></g>",
            esc(&format!(
                "term {term}: {} leaders at once ({})",
                names.len(),
                names.join(", ")
            )),
            x - 3.0,
            bottom
        );
    }
}
