//! Jepsen's EDN histories, read and written.
//!
//! A history is a vector or a list of operation maps, or the maps one after
//! another at the top level (Porcupine's key/value files are of this kind).
//! Tagged records such as `#jepsen.history.Op{...}` read as their map.
//! Each map needs `:process` (an integer or `:nemesis`), `:type` (`:invoke`,
//! `:ok`, `:fail` or `:info`) and `:f`; `:value`, `:time`, `:index`, `:key`,
//! `:node` and `:error` are optional and other entries are ignored. A
//! missing `:time` reads as 0 and a missing `:index` as the position.
//!
//! Values become JSON: keywords and symbols become their name as a string
//! (`:timed-out` is `"timed-out"`), lists and sets become arrays, map keys
//! become strings. `:error` keeps its EDN text unless it is a string.
//!
//! # Multi-key histories
//!
//! Jepsen's independent checker runs one register per key and records
//! `:value [key value]`. A file is read that way when **no** map has a
//! `:key` entry, every client operation's value is a 2-element vector, and
//! not all of them are compare-and-sets whose second element is a plain
//! value (a single-register history of only `cas [from to]` looks the same
//! and is left alone). Each operation then gets `key` from the first
//! element and `value` from the second. [`write_edn`] writes `:key nil` on
//! operations without a key whenever its output would otherwise be read
//! back this way, so that writing and reading give back the same history.

use super::FormatError;
use crate::op::{History, Op, Process};
use serde_json::{Map, Number, Value};
use std::io::{self, Write};

mod reader;

pub use reader::{read_all, Edn, Node};

/// Reads an EDN history; returns it and the line of each operation.
pub(crate) fn read(text: &str) -> Result<(History, Vec<usize>), FormatError> {
    let nodes = reader::read_all(text)?;
    let items: Vec<&Node> = match nodes.as_slice() {
        [Node {
            value: Edn::Vector(items) | Edn::List(items),
            ..
        }] => items.iter().collect(),
        nodes => nodes.iter().collect(),
    };

    let mut history = Vec::with_capacity(items.len());
    let mut lines = Vec::with_capacity(items.len());
    let mut any_key = false;
    for node in items {
        let at = |m: String| FormatError::at_column(node.line, node.column, m);
        let entries = match &node.value {
            Edn::Map(entries) => entries,
            Edn::Tagged(_, inner) => match &inner.value {
                Edn::Map(entries) => entries,
                _ => {
                    return Err(at(format!(
                        "expected a map after the tag, found {}",
                        inner.describe(text)
                    )))
                }
            },
            _ => {
                return Err(at(format!(
                    "expected an operation map such as {{:process 0, :type :invoke, \
                     :f :read}}, found {}",
                    node.describe(text)
                )))
            }
        };
        any_key |= entries
            .iter()
            .any(|(k, _)| k.value == Edn::Keyword("key".into()));
        let op = op_from_map(entries, history.len() as u64, text).map_err(at)?;
        if let Some(previous) = history.last().map(|p: &Op| p.index) {
            if op.index <= previous {
                return Err(at(format!(
                    "expected :index greater than {previous} (the operation before), \
                     found {}",
                    op.index
                )));
            }
        }
        history.push(op);
        lines.push(node.line);
    }

    if !any_key && looks_independent(&history) {
        for op in history
            .iter_mut()
            .filter(|op| op.process != Process::Nemesis)
        {
            if let Value::Array(pair) = std::mem::take(&mut op.value) {
                let [key, value]: [Value; 2] = pair.try_into().unwrap_or_default();
                op.key = Some(match key {
                    Value::String(s) => s,
                    other => other.to_string(),
                });
                op.value = value;
            }
        }
    }
    Ok((history, lines))
}

/// The multi-key rule of the module documentation, without the `:key` part.
fn looks_independent(history: &[Op]) -> bool {
    let clients: Vec<&Op> = history
        .iter()
        .filter(|op| op.process != Process::Nemesis)
        .collect();
    let pairs = |op: &&Op| matches!(&op.value, Value::Array(a) if a.len() == 2);
    let plain_cas = |op: &&Op| op.f == "cas" && !matches!(&op.value[1], Value::Array(_));
    !clients.is_empty() && clients.iter().all(pairs) && !clients.iter().all(plain_cas)
}

fn op_from_map(
    entries: &[(Node, Node)],
    position: u64,
    text: &str,
) -> Result<Op, String> {
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Edn::Keyword(n) if n == name))
            .map(|(_, v)| v)
    };
    let required = |name: &str| {
        get(name).ok_or_else(|| format!("expected a :{name} entry, found none"))
    };

    let process = match &required("process")?.value {
        Edn::Int(p) if *p >= 0 && *p <= u64::MAX as i128 => Process::Client(*p as u64),
        Edn::Keyword(n) if n == "nemesis" => Process::Nemesis,
        _ => {
            return Err(format!(
                "expected :process to be a non-negative integer or :nemesis, found {}",
                required("process")?.describe(text)
            ))
        }
    };
    let kind_node = required("type")?;
    let kind = match &kind_node.value {
        Edn::Keyword(n) | Edn::Str(n) => super::jsonl::op_type(n),
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "expected :type to be one of :invoke, :ok, :fail, :info, found {}",
            kind_node.describe(text)
        )
    })?;
    let f_node = required("f")?;
    let f = match &f_node.value {
        Edn::Keyword(n) | Edn::Str(n) | Edn::Symbol(n) if !n.is_empty() => n.clone(),
        _ => {
            return Err(format!(
                "expected :f to be a keyword such as :read, found {}",
                f_node.describe(text)
            ))
        }
    };
    let uint = |name: &str, default: u64| match get(name) {
        None
        | Some(Node {
            value: Edn::Nil, ..
        }) => Ok(default),
        Some(Node {
            value: Edn::Int(i), ..
        }) if *i >= 0 && *i <= u64::MAX as i128 => Ok(*i as u64),
        Some(other) => Err(format!(
            "expected :{name} to be a non-negative integer, found {}",
            other.describe(text)
        )),
    };
    Ok(Op {
        index: uint("index", position)?,
        time: uint("time", 0)?,
        process,
        kind,
        f,
        key: get("key").and_then(|n| name_of(n, text)),
        value: match get("value") {
            Some(v) => to_json(v, text)?,
            None => Value::Null,
        },
        node: get("node").and_then(|n| name_of(n, text)),
        error: get("error").and_then(|n| match &n.value {
            Edn::Nil => None,
            Edn::Str(s) => Some(s.clone()),
            _ => text.get(n.span.clone()).map(str::to_string),
        }),
    })
}

/// A key or node name: strings as they are, keywords and symbols by name,
/// anything else as its EDN text. `nil` is no name.
fn name_of(node: &Node, text: &str) -> Option<String> {
    match &node.value {
        Edn::Nil => None,
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Some(s.clone()),
        _ => text.get(node.span.clone()).map(str::to_string),
    }
}

/// Converts an EDN value to JSON as the module documentation describes.
pub fn to_json(node: &Node, text: &str) -> Result<Value, String> {
    let seq = |items: &[Node]| -> Result<Value, String> {
        items
            .iter()
            .map(|n| to_json(n, text))
            .collect::<Result<_, _>>()
            .map(Value::Array)
    };
    Ok(match &node.value {
        Edn::Nil => Value::Null,
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Int(i) => {
            if let Ok(i) = i64::try_from(*i) {
                Value::from(i)
            } else if let Ok(u) = u64::try_from(*i) {
                Value::from(u)
            } else {
                return Err(format!("expected an integer of at most 64 bits, found {i}"));
            }
        }
        Edn::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("expected a finite number, found {f}"))?,
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
        Edn::Char(c) => Value::String(c.to_string()),
        Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => seq(items)?,
        Edn::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = name_of(k, text).unwrap_or_else(|| "nil".into());
                map.insert(key, to_json(v, text)?);
            }
            Value::Object(map)
        }
        Edn::Tagged(_, inner) => to_json(inner, text)?,
    })
}

/// Writes a history as a Jepsen EDN vector, one operation map per line.
pub fn write_edn(w: &mut impl Write, history: &[Op]) -> io::Result<()> {
    let keyless = history.iter().all(|op| op.key.is_none());
    let mark_keys = keyless && looks_independent(history);
    if history.is_empty() {
        return w.write_all(b"[]\n");
    }
    for (i, op) in history.iter().enumerate() {
        let mut line = String::from(if i == 0 { "[{" } else { " {" });
        line += &format!(":index {}, :time {}, :process ", op.index, op.time);
        match op.process {
            Process::Client(p) => line += &p.to_string(),
            Process::Nemesis => line += ":nemesis",
        }
        line += &format!(", :type :{}, :f {}", op.kind, keyword_or_string(&op.f));
        match &op.key {
            Some(key) => line += &format!(", :key {}", edn_string(key)),
            None if mark_keys => line += ", :key nil",
            None => {}
        }
        line += ", :value ";
        write_value(&mut line, &op.value);
        if let Some(node) = &op.node {
            line += &format!(", :node {}", edn_string(node));
        }
        if let Some(error) = &op.error {
            line += &format!(", :error {}", edn_string(error));
        }
        line += if i + 1 == history.len() {
            "}]\n"
        } else {
            "}\n"
        };
        w.write_all(line.as_bytes())?;
    }
    Ok(())
}

fn keyword_or_string(name: &str) -> String {
    let first_ok =
        name.starts_with(|c: char| c.is_alphabetic() || "*+!-_?<>=".contains(c));
    let rest_ok = name
        .chars()
        .all(|c| c.is_alphanumeric() || "*+!-_?<>=./".contains(c));
    let numeric_like = name.starts_with(['+', '-'])
        && name[1..].starts_with(|c: char| c.is_ascii_digit());
    if first_ok && rest_ok && !numeric_like {
        format!(":{name}")
    } else {
        edn_string(name)
    }
}

fn edn_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            '\n' => out += "\\n",
            '\t' => out += "\\t",
            '\r' => out += "\\r",
            c if (c as u32) < 0x20 => out += &format!("\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => *out += "nil",
        Value::Bool(b) => *out += if *b { "true" } else { "false" },
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            let text = format!("{f:?}");
            *out += &text;
        }
        Value::Number(n) => *out += &n.to_string(),
        Value::String(s) => *out += &edn_string(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    *out += ", ";
                }
                *out += &edn_string(k);
                out.push(' ');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}
