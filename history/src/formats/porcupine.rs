//! Readers for the two history formats of Porcupine's test corpus: the
//! etcd logs (`INFO  jepsen.util - 3 :invoke :cas [1 2]`) and the key/value
//! files (`{:process 2, :type :ok, :f :get, :key "0", :value "x 0 0 y"}`).
//!
//! Neither has timestamps: line order is real-time order, so an operation's
//! `index` and `time` are both its position among the operations. An etcd
//! `:timed-out` value becomes `null` with the error `timed-out`; `nil`
//! becomes `null`; a cas value `[1 2]` becomes the array `[1, 2]`.
//! Both readers return the history and, for each operation, its 1-based
//! line.

use super::FormatError;
use crate::op::{History, Op, OpType, Process};
use serde_json::Value;

/// Reads an etcd log (`jepsen/etcd_NNN.log`).
pub fn read_etcd(text: &str) -> Result<(History, Vec<usize>), FormatError> {
    read_lines(text, etcd_line)
}

/// Reads a key/value history (`kv/cNN-ok.txt`): one EDN map per line.
pub fn read_kv(text: &str) -> Result<(History, Vec<usize>), FormatError> {
    read_lines(text, kv_line)
}

fn read_lines(
    text: &str,
    parse: fn(&str, u64) -> Result<Op, String>,
) -> Result<(History, Vec<usize>), FormatError> {
    let mut history = Vec::new();
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let op =
            parse(line, history.len() as u64).map_err(|m| FormatError::at(n + 1, m))?;
        history.push(op);
        lines.push(n + 1);
    }
    Ok((history, lines))
}

fn op(index: u64, process: u64, kind: OpType, f: &str) -> Op {
    Op {
        index,
        time: index,
        process: Process::Client(process),
        kind,
        f: f.to_string(),
        key: None,
        value: Value::Null,
        node: None,
        error: None,
    }
}

fn etcd_line(line: &str, index: u64) -> Result<Op, String> {
    let mut rest = line.trim();
    let mut field = |what: &str| -> Result<&str, String> {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        rest = tail.trim_start();
        if word.is_empty() {
            Err(format!("expected {what}, found the end of the line"))
        } else {
            Ok(word)
        }
    };
    let prefix = [field("INFO")?, field("jepsen.util")?, field("-")?];
    if prefix != ["INFO", "jepsen.util", "-"] {
        return Err(format!(
            "expected a line starting `INFO  jepsen.util -`, found {:?}",
            prefix.join(" ")
        ));
    }
    let process = field("a process number")?;
    let process: u64 = process
        .parse()
        .map_err(|_| format!("expected a process number, found {process:?}"))?;
    let kind = match field("a type")? {
        ":invoke" => OpType::Invoke,
        ":ok" => OpType::Ok,
        ":fail" => OpType::Fail,
        ":info" => OpType::Info,
        other => {
            return Err(format!(
                "expected :invoke, :ok, :fail or :info, found {other:?}"
            ))
        }
    };
    let f = match field("a function")? {
        ":read" => "read",
        ":write" => "write",
        ":cas" => "cas",
        other => return Err(format!("expected :read, :write or :cas, found {other:?}")),
    };
    let mut op = op(index, process, kind, f);
    let value = rest.trim();
    match value {
        "nil" => {}
        ":timed-out" => op.error = Some("timed-out".into()),
        _ if value.starts_with('[') && value.ends_with(']') => {
            let parts: Vec<&str> = value[1..value.len() - 1].split_whitespace().collect();
            let numbers: Result<Vec<Value>, String> =
                parts.iter().map(|p| integer(p)).collect();
            match numbers {
                Ok(pair) if pair.len() == 2 => op.value = Value::Array(pair),
                _ => {
                    return Err(format!(
                        "expected a cas value [from to], found {value:?}"
                    ))
                }
            }
        }
        _ => op.value = integer(value)?,
    }
    Ok(op)
}

fn integer(text: &str) -> Result<Value, String> {
    text.parse::<i64>()
        .map(Value::from)
        .map_err(|_| format!("expected an integer, nil or :timed-out, found {text:?}"))
}

fn kv_line(line: &str, index: u64) -> Result<Op, String> {
    let line = line.trim();
    let Some(body) = line.strip_prefix('{').and_then(|l| l.strip_suffix('}')) else {
        return Err(format!("expected a map {{:process ..}}, found {line:?}"));
    };
    let mut fields: Vec<(&str, Value)> = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let Some(named) = rest.strip_prefix(':') else {
            return Err(format!("expected a :keyword, found {rest:?}"));
        };
        let end = named.find(char::is_whitespace).unwrap_or(named.len());
        let (name, tail) = named.split_at(end);
        let (value, tail) = edn_value(tail.trim_start())?;
        fields.push((name, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    let get = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let keyword = |name: &str| match get(name) {
        Some(Value::String(s)) if s.starts_with(':') => Ok(s[1..].to_string()),
        other => Err(format!("expected :{name} to be a keyword, found {other:?}")),
    };
    let process = get("process").and_then(Value::as_u64).ok_or_else(|| {
        format!(
            "expected :process to be a number, found {:?}",
            get("process")
        )
    })?;
    let kind = match keyword("type")?.as_str() {
        "invoke" => OpType::Invoke,
        "ok" => OpType::Ok,
        "fail" => OpType::Fail,
        "info" => OpType::Info,
        other => {
            return Err(format!(
                "expected :invoke, :ok, :fail or :info, found :{other}"
            ))
        }
    };
    let mut op = op(index, process, kind, &keyword("f")?);
    op.key = match get("key") {
        Some(Value::String(k)) => Some(k.trim_start_matches('"').to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    op.value = match get("value") {
        Some(Value::String(s)) => Value::String(s.trim_start_matches('"').to_string()),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    Ok(op)
}

/// One EDN value and the rest of the text. Strings keep a leading `"` and
/// keywords a leading `:` so the caller can tell them apart.
fn edn_value(text: &str) -> Result<(Value, &str), String> {
    if let Some(quoted) = text.strip_prefix('"') {
        let end = quoted
            .find('"')
            .ok_or_else(|| format!("expected a closing quote in {text:?}"))?;
        return Ok((
            Value::String(format!("\"{}", &quoted[..end])),
            &quoted[end + 1..],
        ));
    }
    let end = text.find([',', ' ', '\t']).unwrap_or(text.len());
    let (word, rest) = text.split_at(end);
    let value = match word {
        "nil" => Value::Null,
        _ if word.starts_with(':') => Value::String(word.to_string()),
        _ => word.parse::<i64>().map(Value::from).map_err(|_| {
            format!("expected nil, a number, a string or a keyword, found {word:?}")
        })?,
    };
    Ok((value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_etcd_lines_with_tabs_or_spaces() {
        let text = "INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]\n\
                    INFO  jepsen.util - 3   :ok     :cas    [1 2]\n\
                    INFO  jepsen.util - 8\t:info\t:write\t:timed-out\n";
        let (h, lines) = read_etcd(text).unwrap();
        assert_eq!(lines, vec![1, 2, 3]);
        assert_eq!((h[0].kind, h[0].f.as_str()), (OpType::Invoke, "cas"));
        assert_eq!(h[1].value, json!([1, 2]));
        assert_eq!(
            (h[2].kind, h[2].error.as_deref()),
            (OpType::Info, Some("timed-out"))
        );
    }

    #[test]
    fn reads_kv_maps() {
        let text = "{:process 2, :type :ok, :f :get, :key \"0\", :value \"x 0 0 y\"}\n\
                    {:process 1, :type :invoke, :f :get, :key \"1\", :value nil}\n";
        let (h, _) = read_kv(text).unwrap();
        assert_eq!(h[0].key.as_deref(), Some("0"));
        assert_eq!(h[0].value, json!("x 0 0 y"));
        assert_eq!(
            (h[1].process, h[1].value.clone()),
            (Process::Client(1), Value::Null)
        );
    }

    #[test]
    fn bad_lines_name_their_line_and_what_was_expected() {
        let err = read_etcd("INFO  jepsen.util - 3\t:invoke\t:cas\t[1 x]\n\nfoo\n")
            .unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(
            err.message.contains("expected a cas value"),
            "{}",
            err.message
        );
        let err = read_kv("{:process 1, :type :bogus, :f :get}\n").unwrap_err();
        assert!(err.message.contains("found :bogus"), "{}", err.message);
    }
}
