//! The human summary of `faultline check`: a verdict line per input, a line
//! per key, and for a violation its evidence as a small table.

use super::Checked;
use history::election::{ElectionReport, Evidence};
use history::linear::{Counterexample, KeyReport, LinearReport};
use history::{Op, Role, Verdict};
use std::fmt::Write;
use std::io::Write as _;

/// Keys listed one by one; past this only the keys that are not valid are.
const KEYS_SHOWN: usize = 20;
/// Widest cell of the evidence table; longer values are cut short with `…`.
const CELL_WIDTH: usize = 40;
/// Most history entries of a counterexample's context shown.
const CONTEXT_SHOWN: usize = 20;

/// Writes `text` to stdout. A reader that went away (`| head`) is not an
/// error: the output stops and the verdict's exit code stands.
pub fn to_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

pub fn checked(out: &mut String, checked: &Checked) {
    match checked {
        Checked::History {
            path,
            format,
            report,
        } => history(out, path, format, report),
        Checked::Observations { path, report } => observations(out, path, report),
        // The error goes to stderr, naming the file.
        Checked::Error { .. } => {}
    }
}

fn history(out: &mut String, path: &str, format: &str, r: &LinearReport) {
    let _ = writeln!(
        out,
        "{path}: {} ({format}, model {}, {}, {}, {:.1} ms)",
        r.verdict,
        r.model,
        count(r.operations, "operation"),
        count(r.keys.len(), "key"),
        r.elapsed_ms
    );
    let all = r.keys.len() <= KEYS_SHOWN;
    let mut hidden = 0;
    for key in &r.keys {
        if all || key.verdict != Verdict::Valid {
            key_report(out, key);
        } else {
            hidden += 1;
        }
    }
    if hidden > 0 {
        let _ = writeln!(out, "  ... and {hidden} valid keys");
    }
}

fn key_report(out: &mut String, k: &KeyReport) {
    let name = k
        .key
        .as_deref()
        .map_or("(no key)".to_string(), |k| format!("key {k}"));
    let _ = writeln!(
        out,
        "  {name}: {}, {}, {:.1} ms",
        k.verdict,
        count(k.operations, "operation"),
        k.elapsed_ms
    );
    if let Some(reason) = &k.reason {
        let _ = writeln!(out, "    {reason}");
    }
    if let Some(c) = &k.counterexample {
        counterexample(out, c);
    }
}

fn counterexample(out: &mut String, c: &Counterexample) {
    let _ = writeln!(out, "    {}", c.explanation);
    let left_out = match c.omitted {
        0 => String::new(),
        1 => " (the key's 1 other operation left out)".to_string(),
        n => format!(" (the key's {n} other operations left out)"),
    };
    let with = if c.context.is_empty() {
        ""
    } else {
        ", with those below taken as unknown,"
    };
    let _ = writeln!(
        out,
        "    smallest set of operations that{with} is not linearizable{left_out}:"
    );
    table(out, &c.ops, &c.stuck);
    if !c.context.is_empty() {
        let _ = writeln!(
            out,
            "    taken as unknown (they may or may not have taken effect):"
        );
        table(out, &c.context[..c.context.len().min(CONTEXT_SHOWN)], &[]);
        if c.context.len() > CONTEXT_SHOWN {
            let more = c.context.len() - CONTEXT_SHOWN;
            let _ = writeln!(out, "      ... {more} more entries (see --json)");
        }
    }
    let stuck: Vec<String> = c.stuck.iter().map(u64::to_string).collect();
    if !stuck.is_empty() {
        let _ = writeln!(out, "    could not place: index {}", stuck.join(", "));
    }
    let states: Vec<String> = c.states.iter().map(|s| cut(&s.to_string())).collect();
    let _ = writeln!(out, "    possible states before it: {}", states.join(", "));
}

/// Operations as a table of process, type, f, key, value and index; the
/// operations that could not be placed are marked with `*`.
fn table(out: &mut String, ops: &[Op], stuck: &[u64]) {
    let header = ["process", "type", "f", "key", "value", "index"];
    let rows: Vec<[String; 6]> = ops
        .iter()
        .map(|op| {
            let mark = if stuck.contains(&op.index) { "*" } else { "" };
            [
                op.process.to_string(),
                op.kind.to_string(),
                op.f.clone(),
                op.key.clone().unwrap_or_else(|| "-".into()),
                op.value.to_string(),
                format!("{}{mark}", op.index),
            ]
            .map(|cell| cut(&cell))
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: [&str; 6]| {
        let mut text = String::from("     ");
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(text, " {cell:<w$}");
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, header);
    for row in &rows {
        line(out, row.each_ref().map(String::as_str));
    }
}

/// A cell of at most [`CELL_WIDTH`] characters, the end replaced by `…`
/// when it is longer.
fn cut(cell: &str) -> String {
    if cell.chars().count() <= CELL_WIDTH {
        return cell.to_string();
    }
    let mut short: String = cell.chars().take(CELL_WIDTH - 1).collect();
    short.push('…');
    short
}

fn observations(out: &mut String, path: &str, r: &ElectionReport) {
    let per_minute = r
        .elections_per_minute
        .map_or(String::new(), |m| format!(" ({m:.1} per minute)"));
    let _ = writeln!(
        out,
        "{path}: {} (election safety, {}, {}, {}, {}{per_minute}, \
         longest without a leader {})",
        r.verdict,
        count(r.observations, "observation"),
        count(r.nodes, "node"),
        count(r.terms, "term"),
        count(r.elections, "election"),
        seconds(r.longest_without_leader_ns),
    );
    for v in &r.violations {
        let _ = writeln!(
            out,
            "  split brain in term {}: leaders {}",
            v.term,
            v.leaders.join(", ")
        );
        for e in &v.evidence {
            evidence(out, e);
        }
    }
    for g in &r.regressions {
        let _ = writeln!(
            out,
            "  term went backwards on {}: {} -> {}",
            g.node, g.before.observation.term, g.after.observation.term
        );
        evidence(out, &g.before);
        evidence(out, &g.after);
    }
}

fn evidence(out: &mut String, e: &Evidence) {
    let o = &e.observation;
    let _ = writeln!(
        out,
        "    line {:<5} at {:>10}  {} {} of term {}",
        e.line,
        seconds(o.time),
        o.node,
        match o.role {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
        },
        o.term
    );
}

fn seconds(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// "1 term", "2 terms".
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
