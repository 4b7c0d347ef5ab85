//! The page: sections in reading order, the stylesheet and the script.

use super::chart::esc;
use super::evidence;
use super::load::Run;
use super::model::{self, Family};
use super::{leadership, metrics, summary, timeline};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;

/// Counterexamples shown open; the rest are folded away.
const SHOWN_COUNTEREXAMPLES: usize = 3;
/// Raw `results.json` beyond this many bytes is cut in the page.
const RAW_LIMIT: usize = 200_000;

/// Renders the whole page.
pub fn render(run: &Run) -> String {
    let spans = model::spans(&run.history);
    let faults = model::faults(&run.history);
    let end = model::run_end(&run.history, &run.observations);
    let checkers = evidence::checkers(&run.results);
    let verdict = evidence::overall(&run.results, &checkers);
    let cxs = evidence::counterexamples(&run.results);
    let splits = evidence::split_brains(&run.results);
    let highlight = evidence::highlighted(&cxs);

    let mut body = String::new();
    summary::header(&mut body, run, &verdict, &spans, end);
    summary::verdicts(&mut body, &checkers, &run.results);
    summary::reproduce(&mut body, &run.test);

    let families: BTreeSet<Family> = faults.iter().map(|f| f.family).collect();
    let fault_legend: String = families
        .iter()
        .map(|f| swatch(&format!("sw-{}", f.css()), f.name()))
        .collect();

    let mut timeline_legend =
        [("ok", "ok"), ("fail", "fail"), ("info", "info (unknown)")]
            .map(|(c, l)| swatch(&format!("sw-{c}"), l))
            .concat();
    if !highlight.is_empty() {
        timeline_legend.push_str(&swatch("sw-cx", "counterexample"));
    }
    let aggregated = if spans.len() > timeline::DETAILED_SPANS {
        format!(
            "<p class=\"note\">{} operations, so each lane shows buckets split by the \
             outcomes of the operations open in them; the counterexample's operations are \
             drawn one by one.</p>",
            spans.len()
        )
    } else {
        String::new()
    };
    section(
        &mut body,
        "timeline",
        "Timeline",
        "Each client's operations from invocation to completion; faults shaded behind.",
        &format!("{timeline_legend}{fault_legend}"),
        &format!(
            "{aggregated}{}",
            timeline::render(&spans, &faults, end, &highlight)
        ),
    );

    let split_terms = evidence::split_terms(&splits);
    let role_legend = [
        ("sw-leader", "leader"),
        ("sw-candidate", "candidate"),
        ("sw-follower", "follower"),
        ("sw-leaderless", "no leader"),
        ("sw-split", "two leaders in one term"),
        ("sw-down", "killed or paused"),
    ]
    .map(|(c, l)| swatch(c, l))
    .concat();
    section(
        &mut body,
        "leadership",
        "Leadership",
        "Each node's role over time, labelled with its term.",
        &format!("{role_legend}{fault_legend}"),
        &leadership::render(&run.observations, &faults, end, &split_terms),
    );

    let kinds = [("ok", "ok"), ("fail", "fail"), ("info", "info")]
        .map(|(c, l)| swatch(&format!("sw-{c}"), l))
        .concat();
    section(
        &mut body,
        "latency",
        "Latency",
        "Latency of each completed operation by invocation time (log scale); \
         quantiles are of ok operations.",
        &format!("{kinds}{fault_legend}"),
        &format!(
            "{}{}",
            metrics::latency_plot(&spans, &faults, end),
            metrics::quantile_table(&spans)
        ),
    );
    section(
        &mut body,
        "throughput",
        "Throughput",
        "Completed operations per second, stacked by outcome.",
        &format!("{kinds}{fault_legend}"),
        &metrics::throughput_plot(&spans, &faults, end),
    );

    let mut proof = String::new();
    for (i, (key, cx)) in cxs.iter().enumerate() {
        if i == SHOWN_COUNTEREXAMPLES {
            let _ = write!(
                proof,
                "<details><summary>{} more keys not linearizable</summary>",
                cxs.len() - i
            );
        }
        proof.push_str(&evidence::render_counterexample(key, cx));
    }
    if cxs.len() > SHOWN_COUNTEREXAMPLES {
        proof.push_str("</details>");
    }
    for split in &splits {
        proof.push_str(&evidence::render_split_brain(split));
    }
    for regression in evidence::regressions(&run.results) {
        proof.push_str(&evidence::render_regression(&regression));
    }
    for (key, reason) in evidence::undecided(&run.results) {
        let _ = write!(
            proof,
            "<p class=\"note\">Key <code>{}</code> is undecided: {}</p>",
            esc(&key),
            esc(&reason)
        );
    }
    if proof.is_empty() {
        proof.push_str("<p class=\"note\">No checker reported a violation.</p>");
    }
    section(
        &mut body,
        "evidence",
        "Evidence",
        "What makes the run invalid.",
        "",
        &proof,
    );
    raw_results(&mut body, &run.results);

    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — {} — faultline</title><style>{STYLE}</style>\
         <script>{GUARD}</script></head><body><main>{body}\
         <pre id=\"script-errors\" hidden></pre></main><div id=\"tip\" hidden></div>\
         <script>{SCRIPT}</script></body></html>",
        esc(&run.title()),
        esc(&verdict),
    )
}

fn swatch(class: &str, label: &str) -> String {
    format!("<span><i class=\"sw {class}\"></i>{}</span>", esc(label))
}

fn section(
    body: &mut String,
    id: &str,
    title: &str,
    about: &str,
    legend: &str,
    inner: &str,
) {
    let legend = if legend.is_empty() {
        String::new()
    } else {
        format!("<div class=\"legend\">{legend}</div>")
    };
    let _ = write!(
        body,
        "<section id=\"{id}\"><div class=\"head\"><h2>{title}</h2><p class=\"about\">{about}</p>\
         </div>{legend}{inner}</section>"
    );
}

fn raw_results(body: &mut String, results: &Value) {
    if results.is_null() {
        return;
    }
    let mut text = serde_json::to_string_pretty(results).unwrap_or_default();
    if text.len() > RAW_LIMIT {
        let mut cut = RAW_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… (cut; see results.json)");
    }
    let _ = write!(
        body,
        "<section id=\"raw\"><details><summary>results.json</summary><pre>{}</pre></details></section>",
        esc(&text)
    );
}

/// Collects script errors from the first moment, for tests and readers.
const GUARD: &str = "window.__errors=[];window.addEventListener('error',function(e){\
window.__errors.push(String(e.message||e));var el=document.getElementById('script-errors');\
if(el){el.textContent=window.__errors.join('\\n');el.hidden=false;}});";

const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");
