//! The checkers' side of the report, read from `results.json`: verdicts,
//! counterexamples to linearizability, and terms with two leaders.
//!
//! `results.json` is read as plain JSON and each part is decoded with the
//! history crate's types where it fits, so that a field added or renamed by
//! a newer checker hides only that part, never the whole report. Anything
//! not recognised is still shown, as raw JSON.

use super::chart::{self, esc, seconds, TimeScale, LEFT};
use super::model::{self, compact};
use super::timeline;
use history::election::{Evidence, Regression, SplitBrain};
use history::linear::Counterexample;
use history::OpType;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write;

/// One checker's entry in `results.json`.
#[derive(Debug)]
pub struct Checker<'a> {
    pub name: String,
    /// `valid`, `invalid`, `unknown`, or whatever the checker wrote.
    pub verdict: String,
    pub value: &'a Value,
}

/// The checkers and their reports. `faultline test` writes a `checkers`
/// table of verdicts by name beside the reports (`linear`, `election`);
/// a table of reports, or reports at the top level, are read as well.
pub fn checkers(results: &Value) -> Vec<Checker<'_>> {
    let reports: Vec<(&String, &Value)> = results
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.get("verdict").is_some_and(Value::is_string))
        .collect();
    let Some(table) = results.get("checkers").and_then(Value::as_object) else {
        return reports
            .into_iter()
            .map(|(name, value)| Checker {
                name: name.clone(),
                verdict: value["verdict"].as_str().unwrap_or_default().to_string(),
                value,
            })
            .collect();
    };
    table
        .iter()
        .map(|(name, entry)| {
            let verdict = entry
                .as_str()
                .or_else(|| entry.get("verdict").and_then(Value::as_str))
                .unwrap_or("unknown");
            let value = if entry.is_object() {
                entry
            } else {
                report_for(name, &reports).unwrap_or(entry)
            };
            Checker {
                name: name.clone(),
                verdict: verdict.to_string(),
                value,
            }
        })
        .collect()
}

/// The report of the checker `name`: the entry of that name, else one whose
/// name starts the same way (`election` for `election-safety`).
fn report_for<'a>(name: &str, reports: &[(&String, &'a Value)]) -> Option<&'a Value> {
    let stem = name.split(['-', '_']).next().unwrap_or(name);
    let exact = reports.iter().find(|(k, _)| k.as_str() == name);
    exact
        .or_else(|| {
            reports
                .iter()
                .find(|(k, _)| name.starts_with(k.as_str()) || k.starts_with(stem))
        })
        .map(|(_, v)| *v)
}

/// Every object in `results` that may be a checker's report.
fn reports(results: &Value) -> Vec<&Value> {
    let top = results.as_object().into_iter().flatten().map(|(_, v)| v);
    let nested = results
        .get("checkers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(_, v)| v);
    top.chain(nested).filter(|v| v.is_object()).collect()
}

/// The run's verdict: the one written at the top, else the worst checker.
pub fn overall(results: &Value, checkers: &[Checker]) -> String {
    if let Some(verdict) = results.get("verdict").and_then(Value::as_str) {
        return verdict.to_string();
    }
    let worst = ["invalid", "unknown", "valid"]
        .into_iter()
        .find(|v| checkers.iter().any(|c| c.verdict == *v));
    match worst {
        Some(v) => v.to_string(),
        None if checkers.is_empty() => "not checked".to_string(),
        None => checkers[0].verdict.clone(),
    }
}

/// Every counterexample in `results`, with the key it is about.
pub fn counterexamples(results: &Value) -> Vec<(String, Counterexample)> {
    let mut found = Vec::new();
    for report in reports(results) {
        let Some(keys) = report.get("keys").and_then(Value::as_array) else {
            continue;
        };
        for key in keys {
            let Some(cx) = key.get("counterexample").filter(|v| !v.is_null()) else {
                continue;
            };
            if let Ok(cx) = serde_json::from_value::<Counterexample>(cx.clone()) {
                let name = key.get("key").map(compact).unwrap_or_default();
                found.push((name, cx));
            }
        }
    }
    found
}

/// Every term in which a checker saw two leaders.
pub fn split_brains(results: &Value) -> Vec<SplitBrain> {
    reports(results)
        .into_iter()
        .filter_map(|r| r.get("violations").and_then(Value::as_array))
        .flatten()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect()
}

/// Every node whose term went backwards.
pub fn regressions(results: &Value) -> Vec<Regression> {
    reports(results)
        .into_iter()
        .filter_map(|r| r.get("regressions").and_then(Value::as_array))
        .flatten()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect()
}

/// Keys a checker could not decide, with its reason.
pub fn undecided(results: &Value) -> Vec<(String, String)> {
    let keys = reports(results)
        .into_iter()
        .filter_map(|r| r.get("keys").and_then(Value::as_array))
        .flatten();
    keys.filter(|k| k.get("verdict").and_then(Value::as_str) == Some("unknown"))
        .map(|k| {
            let key = k.get("key").map(compact).unwrap_or_default();
            let reason = k.get("reason").map(compact).unwrap_or_default();
            (key, reason)
        })
        .collect()
}

/// Invocation indices of every counterexample operation.
pub fn highlighted(cxs: &[(String, Counterexample)]) -> HashSet<u64> {
    cxs.iter()
        .flat_map(|(_, cx)| model::spans(&cx.ops))
        .map(|s| s.invoke_index)
        .collect()
}

pub fn split_terms(splits: &[SplitBrain]) -> BTreeSet<u64> {
    splits.iter().map(|s| s.term).collect()
}

/// Longest context (history entries) drawn with a counterexample.
const CONTEXT_DRAWN: usize = 40;

/// A counterexample: its explanation, its operations on a zoomed timeline
/// with the stuck one marked, and the states the model could be in.
pub fn render_counterexample(key: &str, cx: &Counterexample) -> String {
    // The context (operations taken as unknown) is drawn lighter, when it
    // is short enough to read.
    let mut entries = cx.ops.clone();
    if cx.context.len() <= CONTEXT_DRAWN {
        entries.extend(cx.context.iter().cloned());
        entries.sort_by_key(|op| op.index);
    }
    let context: HashSet<u64> = cx.context.iter().map(|op| op.index).collect();
    let spans = model::spans(&entries);
    let stuck: HashSet<u64> = cx.stuck.iter().copied().collect();
    let mut html = String::new();
    let _ = write!(
        html,
        "<div class=\"cx-card\"><h3>Key <code>{}</code>: not linearizable</h3>\
            <p class=\"explain\">{}</p><p class=\"note\">Times are since the \
            first invocation shown, at {}.</p>",
        esc(if key.is_empty() {
            "(single register)"
        } else {
            key
        }),
        esc(&cx.explanation),
        seconds(spans.iter().map(|s| s.start).min().unwrap_or(0))
    );

    // The zoomed timeline: one row per operation, in invocation order.
    let first = spans.iter().map(|s| s.start).min().unwrap_or(0);
    let last = spans
        .iter()
        .filter_map(|s| s.end)
        .chain([first + 1])
        .max()
        .unwrap_or(1);
    // Room on the right for the descriptions of the last operations.
    let margin = (last - first) / 8 + 1;
    let scale = TimeScale {
        start: first.saturating_sub(margin),
        end: last + 3 * margin,
    };
    let row = 24.0;
    let bottom = 6.0 + spans.len() as f64 * row;
    let mut svg = String::new();
    chart::open_time_svg(
        &mut svg,
        bottom + 22.0,
        "operations of the counterexample",
        scale,
    );
    if !cx.context.is_empty() {
        let _ = write!(
            html,
            "<p class=\"note\">{} operations are taken as of unknown outcome \
                (they may or may not have taken effect){}.</p>",
            cx.context
                .iter()
                .filter(|op| op.kind == OpType::Invoke)
                .count(),
            if cx.context.len() <= CONTEXT_DRAWN {
                "; they are drawn lighter"
            } else {
                "; they are listed in results.json"
            }
        );
    }
    relative_axis(&mut svg, scale, first, 2.0, bottom);
    for (i, span) in spans.iter().enumerate() {
        let y = 6.0 + i as f64 * row + 2.0;
        let is_stuck = stuck.contains(&span.invoke_index);
        let _ = write!(
            svg,
            r#"<text class="label{}" x="{:.1}" y="{:.1}" text-anchor="end">{}p{}</text>"#,
            if is_stuck { " stuck" } else { "" },
            LEFT - 6.0,
            y + timeline::BAR,
            if is_stuck { "stuck → " } else { "" },
            span.process
        );
        let in_context = context.contains(&span.invoke_index);
        let mark = match (is_stuck, in_context) {
            (true, _) => " cx stuck",
            (false, true) => " cx ctx",
            (false, false) => " cx",
        };
        timeline::draw_span(&mut svg, scale, span, y, mark, false);
        // The description goes right of the bar, else left of it, else inside.
        let text = span.describe();
        let width = 12.0 + 6.5 * text.chars().count() as f64;
        let (x_start, x_end) =
            (scale.x(span.start), scale.x(span.end.unwrap_or(scale.end)));
        let (x, anchor, inside) = if x_end + width <= chart::WIDTH {
            (x_end + 6.0, "start", "")
        } else if x_start - width >= LEFT {
            (x_start - 6.0, "end", "")
        } else {
            (x_start + 4.0, "start", " inside")
        };
        let _ = write!(
            svg,
            "<text class=\"oplabel{}{inside}\" x=\"{x:.1}\" y=\"{:.1}\" \
                text-anchor=\"{anchor}\">{}</text>",
            mark.trim_start_matches(" cx"),
            y + timeline::BAR - 1.0,
            esc(&text)
        );
    }
    svg.push_str("</svg>");
    html.push_str(&svg);

    let states: Vec<String> = cx.states.iter().map(|s| esc(&compact(s))).collect();
    let _ = write!(
        html,
        "<p class=\"states\"><b>States before the stuck operation:</b> {}<br>\
            <b>After it:</b> none — no state allows it</p>",
        if states.is_empty() {
            "none".to_string()
        } else {
            states
                .iter()
                .map(|s| format!("<code>{s}</code>"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    );

    html.push_str(
        "<table><thead><tr><th>#</th><th>process</th><th>f</th><th>value</th>\
         <th>result</th><th>invoked</th><th>completed</th></tr></thead><tbody>",
    );
    for span in &spans {
        let class = if stuck.contains(&span.invoke_index) {
            " class=\"stuck\""
        } else if context.contains(&span.invoke_index) {
            " class=\"ctx\""
        } else {
            ""
        };
        let _ = write!(
            html,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}{}</td><td>{}</td><td>{}</td></tr>",
            span.invoke_index,
            span.process,
            esc(&span.f),
            if span.input.is_null() {
                String::new()
            } else {
                esc(&compact(&span.input))
            },
            span.kind,
            if span.output.is_null() {
                String::new()
            } else {
                format!(" <code>{}</code>", esc(&compact(&span.output)))
            },
            seconds(span.start),
            span.end.map(seconds).unwrap_or_else(|| "never".into())
        );
    }
    html.push_str("</tbody></table></div>");
    html
}

/// Grid lines labelled with the time since `origin`, for a zoomed view.
fn relative_axis(svg: &mut String, scale: TimeScale, origin: u64, top: f64, bottom: f64) {
    let step = (chart::nice_step((scale.end - scale.start) as f64, 8.0) as u64).max(1);
    // Ticks fall on round offsets from the origin.
    let mut tick = origin - (origin - scale.start.min(origin)) / step * step;
    while tick <= scale.end {
        let x = scale.x(tick);
        let label = if tick == origin {
            "0".to_string()
        } else if tick > origin {
            format!("+{}", chart::duration(tick - origin))
        } else {
            format!("−{}", chart::duration(origin - tick))
        };
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" \
                y2=\"{bottom:.1}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" \
                text-anchor=\"middle\">{label}</text>",
            bottom + 14.0
        );
        tick += step;
    }
}

/// A term with two leaders and the observations that show it.
pub fn render_split_brain(split: &SplitBrain) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<div class=\"cx-card\"><h3>Term {}: {} leaders at once ({})</h3>\
            <table><thead><tr><th>time</th><th>node</th><th>term</th><th>role</th>\
            <th>observations line</th></tr></thead><tbody>",
        split.term,
        split.leaders.len(),
        esc(&split.leaders.join(", "))
    );
    for e in &split.evidence {
        observation_row(&mut html, e);
    }
    html.push_str("</tbody></table></div>");
    html
}

/// A node that reported a lower term than before, with both observations.
pub fn render_regression(regression: &Regression) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<div class=\"cx-card\"><h3>{}: term went back from {} to {}</h3><table>\
         <thead><tr><th>time</th><th>node</th><th>term</th><th>role</th>\
         <th>observations line</th></tr></thead><tbody>",
        esc(&regression.node),
        regression.before.observation.term,
        regression.after.observation.term
    );
    observation_row(&mut html, &regression.before);
    observation_row(&mut html, &regression.after);
    html.push_str("</tbody></table></div>");
    html
}

fn observation_row(html: &mut String, e: &Evidence) {
    let o = &e.observation;
    let _ = write!(
        html,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        seconds(o.time),
        esc(&o.node),
        o.term,
        format!("{:?}", o.role).to_lowercase(),
        e.line
    );
}
