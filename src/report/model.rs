//! What the charts draw, derived from the history: client operations as
//! spans and faults as intervals.
//!
//! Pairing here is lenient on purpose: a report must draw even a history
//! that the checkers reject as malformed, so an orphan completion is
//! skipped rather than refused.

use history::{Observation, Op, OpType, Process};
use serde_json::Value;
use std::collections::HashMap;

/// A client operation from its invocation to its completion.
#[derive(Debug, Clone)]
pub struct Span {
    pub process: u64,
    pub f: String,
    pub key: Option<String>,
    /// `Ok`, `Fail` or `Info`.
    pub kind: OpType,
    pub start: u64,
    /// Completion time; `None` when the invocation never completed.
    pub end: Option<u64>,
    pub input: Value,
    pub output: Value,
    pub node: Option<String>,
    pub error: Option<String>,
    /// History index of the invocation and of the completion.
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
}

impl Span {
    pub fn latency(&self) -> Option<u64> {
        self.end.map(|end| end.saturating_sub(self.start))
    }

    /// One line for a tooltip or a table.
    pub fn describe(&self) -> String {
        let mut text = format!("p{} {} ", self.process, self.f);
        if let Some(key) = &self.key {
            text.push_str(&format!("{key} "));
        }
        if !self.input.is_null() {
            text.push_str(&format!("{} ", compact(&self.input)));
        }
        text.push_str(&format!("→ {}", self.kind));
        if !self.output.is_null() && self.kind == OpType::Ok {
            text.push_str(&format!(" {}", compact(&self.output)));
        }
        if let Some(error) = &self.error {
            text.push_str(&format!(" ({error})"));
        }
        text
    }
}

/// JSON on one line, cut short after 80 characters.
pub fn compact(value: &Value) -> String {
    clip(value, 80)
}

/// JSON on one line (strings without quotes), cut short after `max`
/// characters.
pub fn clip(value: &Value, max: usize) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > max {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Joins invocations with completions, in invocation order.
pub fn spans(history: &[Op]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    for op in history {
        let Process::Client(process) = op.process else {
            continue;
        };
        if op.kind == OpType::Invoke {
            open.insert(process, spans.len());
            spans.push(Span {
                process,
                f: op.f.clone(),
                key: op.key.clone(),
                kind: OpType::Info,
                start: op.time,
                end: None,
                input: op.value.clone(),
                output: Value::Null,
                node: op.node.clone(),
                error: None,
                invoke_index: op.index,
                complete_index: None,
            });
        } else if let Some(slot) = open.remove(&process) {
            let span = &mut spans[slot];
            span.kind = op.kind;
            span.end = Some(op.time.max(span.start));
            span.output = op.value.clone();
            span.error = op.error.clone();
            span.complete_index = Some(op.index);
            if span.node.is_none() {
                span.node = op.node.clone();
            }
        }
    }
    spans
}

/// A kind of fault, with the operation that starts it and the one that
/// undoes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Partition,
    Kill,
    Pause,
    Clock,
    Other,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::Partition,
        Family::Kill,
        Family::Pause,
        Family::Clock,
        Family::Other,
    ];

    /// The family of a nemesis `f`, and whether it starts (true) or ends it.
    fn of(f: &str) -> (Family, bool) {
        match f {
            "partition" | "start-partition" => (Family::Partition, true),
            "heal" | "stop-partition" => (Family::Partition, false),
            "kill" | "crash" => (Family::Kill, true),
            "restart" | "start" => (Family::Kill, false),
            "pause" => (Family::Pause, true),
            "resume" => (Family::Pause, false),
            "skew-clock" | "skew" | "bump-clock" | "strobe-clock" => {
                (Family::Clock, true)
            }
            "reset-clock" => (Family::Clock, false),
            _ => (Family::Other, true),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Partition => "partition",
            Family::Kill => "kill",
            Family::Pause => "pause",
            Family::Clock => "clock skew",
            Family::Other => "other fault",
        }
    }

    pub fn css(self) -> &'static str {
        match self {
            Family::Partition => "f-part",
            Family::Kill => "f-kill",
            Family::Pause => "f-pause",
            Family::Clock => "f-clock",
            Family::Other => "f-other",
        }
    }
}

/// A fault from the moment it was injected until it was undone.
#[derive(Debug, Clone)]
pub struct Fault {
    pub family: Family,
    /// The nodes it was aimed at; empty for the whole cluster.
    pub nodes: Vec<String>,
    pub start: u64,
    /// `None` when the run ended before the fault was undone.
    pub end: Option<u64>,
    pub detail: String,
}

/// The nodes a nemesis operation names: its `node`, else its value when
/// that is a list of node names or an object with a `node`.
fn fault_nodes(op: &Op) -> Vec<String> {
    if let Some(node) = &op.node {
        return vec![node.clone()];
    }
    match &op.value {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Value::Object(map) => map
            .get("node")
            .and_then(Value::as_str)
            .into_iter()
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// Pairs nemesis operations into fault intervals. A fault aimed at nodes is
/// ended by an undo aimed at any of them; an undo that names no node (such
/// as `heal`) ends every open fault of its family.
pub fn faults(history: &[Op]) -> Vec<Fault> {
    let mut faults: Vec<Fault> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut last_invoke: HashMap<String, u64> = HashMap::new();
    for op in history.iter().filter(|op| op.process == Process::Nemesis) {
        // A fault starts when it is invoked and ends when its undo completes.
        if op.kind == OpType::Invoke {
            last_invoke.insert(op.f.clone(), op.time);
            continue;
        }
        let (family, starts) = Family::of(&op.f);
        let invoked = last_invoke.remove(&op.f).unwrap_or(op.time);
        let nodes = fault_nodes(op);
        if starts {
            let mut detail = op.f.clone();
            if op.value.is_array() || op.value.is_null() {
                if !nodes.is_empty() {
                    detail.push_str(&format!(" {}", nodes.join(" ")));
                }
            } else {
                detail.push_str(&format!(" {}", compact(&op.value)));
            }
            if let Some(error) = &op.error {
                detail.push_str(&format!(" (failed: {error})"));
            }
            open.push(faults.len());
            faults.push(Fault {
                family,
                nodes,
                start: invoked,
                end: (family == Family::Other).then_some(op.time),
                detail,
            });
            continue;
        }
        open.retain(|&slot| {
            let fault = &mut faults[slot];
            let aimed = nodes.is_empty() || fault.nodes.iter().any(|n| nodes.contains(n));
            let ends = fault.family == family && fault.end.is_none() && aimed;
            if ends {
                fault.end = Some(op.time);
            }
            !ends
        });
    }
    faults
}

/// The last moment anything happened, in nanoseconds; at least 1.
pub fn run_end(history: &[Op], observations: &[Observation]) -> u64 {
    let ops = history.iter().map(|op| op.time);
    let seen = observations.iter().map(|o| o.time);
    ops.chain(seen).max().unwrap_or(0).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(index: u64, time: u64, process: Process, kind: OpType, f: &str) -> Op {
        Op {
            index,
            time,
            process,
            kind,
            f: f.into(),
            key: None,
            value: Value::Null,
            node: None,
            error: None,
        }
    }

    #[test]
    fn heal_ends_every_open_partition() {
        let n = Process::Nemesis;
        let history = vec![
            op(0, 10, n, OpType::Invoke, "partition"),
            op(1, 12, n, OpType::Info, "partition"),
            op(2, 50, n, OpType::Invoke, "heal"),
            op(3, 55, n, OpType::Info, "heal"),
        ];
        let faults = faults(&history);
        assert_eq!(faults.len(), 1);
        assert_eq!((faults[0].start, faults[0].end), (10, Some(55)));
    }

    #[test]
    fn restart_ends_the_kill_of_the_nodes_it_names() {
        let n = Process::Nemesis;
        let mut kill = op(0, 10, n, OpType::Info, "kill");
        kill.value = serde_json::json!(["n1", "n3"]);
        let mut other = op(1, 20, n, OpType::Info, "kill");
        other.value = serde_json::json!(["n2"]);
        let mut restart = op(2, 30, n, OpType::Info, "restart");
        restart.value = serde_json::json!(["n3", "n1"]);
        let faults = faults(&[kill, other, restart]);
        assert_eq!(faults[0].nodes, ["n1", "n3"]);
        assert_eq!((faults[0].end, faults[1].end), (Some(30), None));
    }

    #[test]
    fn orphan_completions_are_skipped_and_open_invocations_stay_info() {
        let history = vec![
            op(0, 1, Process::Client(1), OpType::Ok, "read"),
            op(1, 2, Process::Client(2), OpType::Invoke, "write"),
        ];
        let spans = spans(&history);
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].kind, spans[0].end), (OpType::Info, None));
    }
}
