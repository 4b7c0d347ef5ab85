//! The top of the page: the verdicts, the run's size, and how to
//! reproduce it.

use super::chart::{self, esc};
use super::evidence::Checker;
use super::load::Run;
use super::model::{self, clip, compact};
use history::OpType;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;

pub fn verdict_class(verdict: &str) -> &'static str {
    match verdict {
        "valid" => "valid",
        "invalid" => "invalid",
        "unknown" => "unknown",
        _ => "other",
    }
}

/// The title, the overall verdict, the size of the run and links to the
/// sections.
pub fn header(
    body: &mut String,
    run: &Run,
    verdict: &str,
    spans: &[model::Span],
    end: u64,
) {
    let count = |k: OpType| spans.iter().filter(|s| s.kind == k).count();
    let processes: BTreeSet<u64> = spans.iter().map(|s| s.process).collect();
    let nodes: BTreeSet<&str> =
        run.observations.iter().map(|o| o.node.as_str()).collect();
    let _ = write!(
        body,
        "<header><div><p class=\"kicker\">faultline run</p><h1>{}</h1><p class=\"path\">{}</p>\
         </div><div class=\"big v-{}\">{}</div></header><p class=\"stats\">\
         <b>{}</b> operations (<span class=\"c-ok\">{} ok</span>, <span class=\"c-fail\">{} fail\
         </span>, <span class=\"c-info\">{} info</span>) · <b>{}</b> · <b>{}</b> processes · \
         <b>{}</b> nodes · <b>{}</b> faults</p><nav><a href=\"#timeline\">Timeline</a>\
         <a href=\"#leadership\">Leadership</a><a href=\"#latency\">Latency</a>\
         <a href=\"#throughput\">Throughput</a><a href=\"#evidence\">Evidence</a></nav>",
        esc(&run.title()),
        esc(&run.dir.display().to_string()),
        verdict_class(verdict),
        esc(verdict),
        spans.len(),
        count(OpType::Ok),
        count(OpType::Fail),
        count(OpType::Info),
        chart::seconds(end),
        processes.len(),
        nodes.len(),
        model::faults(&run.history).len(),
    );
}

/// A card per checker with its verdict and the plain figures of its report.
pub fn verdicts(body: &mut String, checkers: &[Checker], results: &Value) {
    body.push_str("<section id=\"summary\"><div class=\"cards\">");
    if checkers.is_empty() {
        body.push_str(
            "<p class=\"note\">This run has no results.json: it was not checked.</p>",
        );
    }
    for checker in checkers {
        let class = verdict_class(&checker.verdict);
        let _ = write!(
            body,
            "<div class=\"card is-{class}\"><p class=\"name\">{}</p>\
             <p class=\"verdict c-{class}\">{}</p><ul>{}</ul>{}</div>",
            esc(&checker.name),
            esc(&checker.verdict),
            facts(checker.value),
            if class == "invalid" {
                "<a class=\"jump\" href=\"#evidence\">see the evidence ↓</a>"
            } else {
                ""
            }
        );
    }
    if let Some(figures) = results.get("figures").filter(|f| f.is_object()) {
        let _ = write!(
            body,
            "<div class=\"card\"><p class=\"name\">figures</p><ul>{}</ul></div>",
            facts(figures)
        );
    }
    body.push_str("</div>");
    let errors = results
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for error in errors {
        let _ = write!(body, "<p class=\"error\">{}</p>", esc(&compact(error)));
    }
    body.push_str("</section>");
}

/// The plain fields of a report as a list: durations by their `_ns`, `_ms`
/// or `_s` suffix, short lists joined, nested objects left out.
fn facts(value: &Value) -> String {
    let mut facts = String::new();
    let fields = value.as_object().into_iter().flatten();
    for (name, value) in fields.filter(|(n, _)| *n != "verdict").take(10) {
        let number = value.as_f64().unwrap_or(0.0);
        let shown = match value {
            Value::Number(_) if name.ends_with("_ns") => chart::duration(number as u64),
            Value::Number(_) if name.ends_with("_ms") => {
                chart::duration((number * 1e6) as u64)
            }
            Value::Number(_) if name.ends_with("_s") => {
                chart::duration((number * 1e9) as u64)
            }
            Value::Number(n) if n.is_f64() => format!("{number:.3}"),
            Value::Number(_) | Value::String(_) | Value::Bool(_) => compact(value),
            Value::Array(items) if items.is_empty() => "none".to_string(),
            Value::Array(items)
                if items.iter().all(|i| i.is_string() || i.is_number()) =>
            {
                items.iter().map(compact).collect::<Vec<_>>().join(", ")
            }
            Value::Array(items) => format!("{} entries", items.len()),
            _ => continue,
        };
        let label = ["_ns", "_ms", "_s"]
            .iter()
            .fold(name.as_str(), |n, suffix| {
                n.strip_suffix(suffix).unwrap_or(n)
            });
        let _ = write!(
            facts,
            "<li><span>{}</span> {}</li>",
            esc(&label.replace(['_', '-'], " ")),
            esc(&shown)
        );
    }
    facts
}

/// The command that reproduces the run, the seed, and every other option.
pub fn reproduce(body: &mut String, test: &Value) {
    body.push_str("<section id=\"options\"><h2>Reproduce</h2>");
    let command = ["command", "reproduce", "cmd"]
        .iter()
        .find_map(|k| test.get(*k))
        .map(|c| match c {
            Value::Array(args) => args
                .iter()
                .map(|a| shell_quote(&compact(a)))
                .collect::<Vec<_>>()
                .join(" "),
            other => clip(other, 2000),
        });
    match command {
        Some(command) => {
            let _ = write!(body, "<pre class=\"cmd\">{}</pre>", esc(&command));
        }
        None => body.push_str("<p class=\"note\">test.json records no command.</p>"),
    }
    if let Some(seed) = test.get("seed") {
        let _ = write!(
            body,
            "<p>Seed <code class=\"seed\">{}</code></p>",
            esc(&compact(seed))
        );
    }
    let Some(options) = test.as_object() else {
        body.push_str("</section>");
        return;
    };
    let mut rows = String::new();
    for (name, value) in options {
        if !["command", "reproduce", "cmd", "seed"].contains(&name.as_str()) {
            option_rows(&mut rows, name, value);
        }
    }
    let _ = write!(
        body,
        "<details><summary>Options ({})</summary><table class=\"options\"><tbody>{rows}\
         </tbody></table></details></section>",
        rows.matches("<tr>").count()
    );
}

/// One row per option; nested objects become `parent.child` rows and lists
/// of objects one line per item.
fn option_rows(body: &mut String, name: &str, value: &Value) {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (child, value) in fields {
                option_rows(body, &format!("{name}.{child}"), value);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            let lines: Vec<String> = items.iter().map(|i| esc(&clip(i, 300))).collect();
            let _ = write!(
                body,
                "<tr><th>{}</th><td><code>{}</code></td></tr>",
                esc(name),
                lines.join("<br>")
            );
        }
        _ => {
            let _ = write!(
                body,
                "<tr><th>{}</th><td><code>{}</code></td></tr>",
                esc(name),
                esc(&clip(value, 300))
            );
        }
    }
}

fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
