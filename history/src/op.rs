//! Operations as Jepsen records them, and the history they form.
//!
//! A history is a sequence of [`Op`]s in real-time order. A client process
//! records an `invoke` when it sends a request and then exactly one
//! completion: `ok` (it took effect), `fail` (it definitely did not take
//! effect and never will) or `info` (unknown: it may take effect at any time
//! after its invocation, or never). An invocation that never completes is
//! treated as `info`. The nemesis records its faults as operations of the
//! process `nemesis`.
//!
//! The native form is JSON Lines, one operation per line, and is a public
//! contract:
//!
//! ```json
//! {"index": 0, "time": 1200, "process": 3, "type": "invoke", "f": "cas", "key": "k1", "value": [1, 2]}
//! ```
//!
//! `key`, `node` and `error` are optional; `process` is an integer or
//! `"nemesis"`; `time` is nanoseconds since the test started.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Who performed an operation: a client process or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A single-threaded logical client; it has at most one operation open.
    Client(u64),
    /// The fault injector.
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or \"nemesis\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom(format!("process {v} is negative")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Process, E> {
                if v == "nemesis" {
                    Ok(Process::Nemesis)
                } else {
                    Err(E::custom(format!(
                        "expected a process number or \"nemesis\", found {v:?}"
                    )))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The four kinds of history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        })
    }
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history, from 0.
    pub index: u64,
    /// Nanoseconds since the test started.
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: OpType,
    /// The function: `read`, `write`, `cas`, `get`, `put`, `append`, or a
    /// nemesis fault such as `partition`.
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The argument on `invoke`, the result on `ok`. `null` when absent.
    #[serde(default)]
    pub value: Value,
    /// The node a client talked to, or that a fault was aimed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why an operation failed or is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A whole history in real-time order.
pub type History = Vec<Op>;
