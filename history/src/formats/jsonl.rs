//! The native history form: JSON Lines, one [`Op`] per line.
//!
//! The schema is described in [`crate::op`]. The reader checks each field
//! itself rather than leaving it to serde, so that an error says which field
//! was wrong, what it held and what was expected. Blank lines are skipped and
//! fields it does not know are ignored, so that newer writers can add some.
//!
//! Two leniencies, both documented in the contract: a missing `time` reads
//! as 0 (histories converted from formats without timestamps), and a `key`
//! given as an integer reads as its decimal text. `index` is required and
//! must grow strictly from line to line, as the harness writes it.
//!
//! A history streamed by a process that crashed may end in a line cut short.
//! A last line with no newline whose JSON ends early is therefore dropped:
//! what remains is a prefix of the history, which is a history too.

use super::FormatError;
use crate::op::{History, Op, OpType, Process};
use serde_json::{Map, Value};
use std::io::{self, Write};

/// Writes a whole history, one line per operation.
pub fn write_jsonl(w: &mut impl Write, history: &[Op]) -> io::Result<()> {
    for op in history {
        append_op(w, op)?;
    }
    Ok(())
}

/// Writes one operation as a line. The harness streams a history with this,
/// so that a crash loses at most the line being written.
pub fn append_op(w: &mut impl Write, op: &Op) -> io::Result<()> {
    let mut line = serde_json::to_vec(op).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)
}

/// Reads JSON Lines; returns the history and the line of each operation.
pub(crate) fn read(text: &str) -> Result<(History, Vec<usize>), FormatError> {
    let mut history = Vec::new();
    let mut lines = Vec::new();
    let last = text.lines().count();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(raw) {
            Ok(value) => value,
            Err(e) if cut_short(text, line == last, &e) => break,
            Err(e) => {
                let message = format!("expected an operation as a JSON object: {e}");
                let column = e.column().max(1);
                return Err(FormatError::at_column(
                    line,
                    column,
                    strip_position(&message),
                ));
            }
        };
        let Value::Object(object) = value else {
            return Err(FormatError::at(
                line,
                format!(
                    "expected an operation as a JSON object, found {}",
                    kind(&value)
                ),
            ));
        };
        let op = op_from_object(&object)
            .map_err(|m| FormatError::at(line, numbers_as_written(m, &object, raw)))?;
        if let Some(previous) = history.last().map(|p: &Op| p.index) {
            if op.index <= previous {
                return Err(FormatError::at(
                    line,
                    format!(
                        "expected \"index\" greater than {previous} (the line before), \
                         found {}",
                        op.index
                    ),
                ));
            }
        }
        history.push(op);
        lines.push(line);
    }
    Ok((history, lines))
}

/// serde_json reads an integer too large for 64 bits as a float and prints
/// it as `1e+23`; a message shows such numbers of `index`, `time` and
/// `process` as the line wrote them.
fn numbers_as_written(message: String, o: &Map<String, Value>, raw: &str) -> String {
    let mut message = message;
    for field in ["index", "time", "process"] {
        let Some(Value::Number(n)) = o.get(field) else {
            continue;
        };
        if n.is_f64() {
            if let Some(written) = raw_number(raw, field) {
                let shown = format!("found {n}");
                message = message.replace(&shown, &format!("found {written}"));
            }
        }
    }
    message
}

/// The text of the number after `"field":` in a line, if it is there.
fn raw_number<'a>(raw: &'a str, field: &str) -> Option<&'a str> {
    let at = raw.find(&format!("\"{field}\""))? + field.len() + 2;
    let rest = raw[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// The line of a last line cut short, which the readers drop, if the text
/// ends in one.
pub fn cut_short_line(text: &str) -> Option<usize> {
    let last = text.lines().count();
    let raw = text.lines().last()?;
    if raw.trim().is_empty() {
        return None;
    }
    let e = serde_json::from_str::<Value>(raw).err()?;
    cut_short(text, true, &e).then_some(last)
}

/// Whether a line that does not parse is the last one, written in part.
pub(crate) fn cut_short(text: &str, last: bool, e: &serde_json::Error) -> bool {
    last && e.is_eof() && !text.ends_with('\n')
}

/// Builds an operation from a JSON object, checking every field.
pub(crate) fn op_from_object(o: &Map<String, Value>) -> Result<Op, String> {
    let index = required(o, "index").and_then(|v| uint("index", v))?;
    let time = match o.get("time") {
        None | Some(Value::Null) => 0,
        Some(v) => uint("time", v)?,
    };
    let process = match required(o, "process")? {
        Value::String(s) if s == "nemesis" => Process::Nemesis,
        other => other.as_u64().map(Process::Client).ok_or_else(|| {
            format!(
                "expected \"process\" to be a non-negative integer or \"nemesis\", \
                 found {}",
                short(other)
            )
        })?,
    };
    let kind = match required(o, "type")? {
        Value::String(s) => op_type(s),
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "expected \"type\" to be one of invoke, ok, fail, info, found {}",
            short(&o["type"])
        )
    })?;
    let f = match required(o, "f")? {
        Value::String(s) if !s.is_empty() => s.clone(),
        other => {
            return Err(format!(
                "expected \"f\" to be a function name such as \"read\", found {}",
                short(other)
            ))
        }
    };
    let key = match o.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Some(other) => {
            return Err(format!(
                "expected \"key\" to be a string, found {}",
                short(other)
            ))
        }
    };
    Ok(Op {
        index,
        time,
        process,
        kind,
        f,
        key,
        value: o.get("value").cloned().unwrap_or(Value::Null),
        node: optional_string(o, "node")?,
        error: optional_string(o, "error")?,
    })
}

pub(crate) fn op_type(s: &str) -> Option<OpType> {
    match s {
        "invoke" => Some(OpType::Invoke),
        "ok" => Some(OpType::Ok),
        "fail" => Some(OpType::Fail),
        "info" => Some(OpType::Info),
        _ => None,
    }
}

fn required<'a>(o: &'a Map<String, Value>, field: &str) -> Result<&'a Value, String> {
    let article = if field.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    o.get(field)
        .ok_or_else(|| format!("expected {article} \"{field}\" field, found none"))
}

fn uint(field: &str, v: &Value) -> Result<u64, String> {
    v.as_u64().ok_or_else(|| {
        format!(
            "expected \"{field}\" to be a non-negative integer, found {}",
            short(v)
        )
    })
}

fn optional_string(
    o: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, String> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "expected \"{field}\" to be a string, found {}",
            short(other)
        )),
    }
}

/// A value as it appears in a message: the JSON text, cut when long.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(37).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json appends " at line L column C"; the caller reports the place.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
