//! Pairing invocations with their completions.
//!
//! Checkers reason about operations as intervals: from the position of the
//! invocation to the position of the completion in the history. Positions,
//! not timestamps, give the real-time order, as in Jepsen.

use crate::op::{Op, OpType, Process};
use serde_json::Value;
use std::collections::HashMap;

/// A client operation with its invocation and completion joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub process: u64,
    pub f: String,
    pub key: Option<String>,
    /// Position of the invocation in the history.
    pub invoke: usize,
    /// Position of the completion; `None` when the outcome is unknown
    /// (`info`, or never completed), which makes the interval open-ended.
    pub complete: Option<usize>,
    /// `Ok`, `Fail` or `Info`.
    pub kind: OpType,
    /// The invocation's value: the argument.
    pub input: Value,
    /// The completion's value: the result (`null` when unknown).
    pub output: Value,
    /// Nanoseconds since the start, of the invocation and the completion.
    pub invoke_time: u64,
    pub complete_time: Option<u64>,
    /// The node the client talked to, if recorded.
    pub node: Option<String>,
}

/// A history that is well-formed op by op but whose invocations and
/// completions do not pair up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    #[error(
        "operation {index}: process {process} invokes again while its \
         invocation at operation {open} is still open; expected a completion first"
    )]
    DoubleInvoke { index: u64, process: u64, open: u64 },
    #[error(
        "operation {index}: `{kind}` for process {process} has no open \
         invocation; expected an `invoke` before it"
    )]
    Orphan {
        index: u64,
        process: u64,
        kind: OpType,
    },
    #[error(
        "operation {index}: process {process} completes `{found}` but invoked \
         `{expected}` at operation {open}"
    )]
    Mismatch {
        index: u64,
        process: u64,
        open: u64,
        expected: String,
        found: String,
    },
}

/// Joins each client invocation with its completion. Nemesis operations are
/// skipped. Invocations left open at the end become `info`. The result is in
/// invocation order.
pub fn pair(history: &[Op]) -> Result<Vec<Operation>, PairError> {
    let mut ops: Vec<Operation> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();

    for (pos, op) in history.iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        match op.kind {
            OpType::Invoke => {
                if let Some(&slot) = open.get(&process) {
                    return Err(PairError::DoubleInvoke {
                        index: op.index,
                        process,
                        open: history[ops[slot].invoke].index,
                    });
                }
                open.insert(process, ops.len());
                ops.push(Operation {
                    process,
                    f: op.f.clone(),
                    key: op.key.clone(),
                    invoke: pos,
                    complete: None,
                    kind: OpType::Info,
                    input: op.value.clone(),
                    output: Value::Null,
                    invoke_time: op.time,
                    complete_time: None,
                    node: op.node.clone(),
                });
            }
            kind => {
                let Some(slot) = open.remove(&process) else {
                    return Err(PairError::Orphan {
                        index: op.index,
                        process,
                        kind,
                    });
                };
                let operation = &mut ops[slot];
                if operation.f != op.f {
                    return Err(PairError::Mismatch {
                        index: op.index,
                        process,
                        open: history[operation.invoke].index,
                        expected: operation.f.clone(),
                        found: op.f.clone(),
                    });
                }
                operation.kind = kind;
                if kind != OpType::Info {
                    operation.complete = Some(pos);
                    operation.complete_time = Some(op.time);
                    operation.output = op.value.clone();
                }
            }
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(index: u64, process: u64, kind: OpType, f: &str, value: Value) -> Op {
        Op {
            index,
            time: index * 10,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn pairs_completions_with_their_process_invocation() {
        let h = vec![
            op(0, 1, OpType::Invoke, "write", json!(3)),
            op(1, 2, OpType::Invoke, "read", Value::Null),
            op(2, 2, OpType::Ok, "read", json!(3)),
            op(3, 1, OpType::Info, "write", json!(3)),
            op(4, 3, OpType::Invoke, "cas", json!([3, 4])),
        ];
        let ops = pair(&h).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!((ops[0].kind, ops[0].complete), (OpType::Info, None));
        assert_eq!((ops[1].kind, ops[1].complete), (OpType::Ok, Some(2)));
        assert_eq!(ops[1].output, json!(3));
        assert_eq!((ops[2].kind, ops[2].complete), (OpType::Info, None));
    }

    #[test]
    fn rejects_a_second_open_invocation() {
        let h = vec![
            op(0, 1, OpType::Invoke, "read", Value::Null),
            op(1, 1, OpType::Invoke, "read", Value::Null),
        ];
        let err = pair(&h).unwrap_err();
        assert_eq!(
            err,
            PairError::DoubleInvoke {
                index: 1,
                process: 1,
                open: 0
            }
        );
    }

    #[test]
    fn rejects_a_completion_without_invocation() {
        let h = vec![op(0, 1, OpType::Ok, "read", json!(1))];
        assert!(matches!(pair(&h), Err(PairError::Orphan { index: 0, .. })));
    }
}
