//! The replicated state machine: string keys, integer values, and the
//! operations and replies clients exchange with the cluster.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// One client operation on the key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum KvOp {
    /// Read the value of `key`.
    Read {
        /// The key to read.
        key: String,
    },
    /// Set `key` to `value`.
    Write {
        /// The key to write.
        key: String,
        /// The new value.
        value: i64,
    },
    /// Set `key` to `to` if it currently holds `from`.
    Cas {
        /// The key to compare and set.
        key: String,
        /// The value the key must hold.
        from: i64,
        /// The value to set.
        to: i64,
    },
}

impl KvOp {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Read { key } | KvOp::Write { key, .. } | KvOp::Cas { key, .. } => key,
        }
    }
}

/// Why an operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The key did not hold the expected value; nothing changed.
    CasMismatch,
    /// This node cannot serve the request; `leader` names who might.
    NotLeader,
    /// Leadership changed while the operation was in flight.
    LeaderChanged,
    /// No answer within the deadline.
    Timeout,
    /// The request could not be parsed.
    BadRequest,
}

/// The answer to one client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// A read succeeded; `None` means the key was never written.
    Value(Option<i64>),
    /// A write or a successful cas took effect.
    Done,
    /// The operation failed.
    Failed(Failure),
}

/// A failed operation, saying whether it may still take effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong.
    pub error: ErrorKind,
    /// True when the operation did not and will not take effect.
    pub definite: bool,
    /// The leader this node knows of, for `NotLeader`.
    pub leader: Option<NodeId>,
    /// The current value, for `CasMismatch`.
    pub value: Option<i64>,
}

impl Reply {
    /// A failure that carries neither leader nor value.
    pub fn failed(error: ErrorKind, definite: bool) -> Reply {
        Reply::Failed(Failure {
            error,
            definite,
            leader: None,
            value: None,
        })
    }

    /// A definite "not leader" failure naming the leader if known.
    pub fn not_leader(leader: Option<NodeId>) -> Reply {
        Reply::Failed(Failure {
            error: ErrorKind::NotLeader,
            definite: true,
            leader,
            value: None,
        })
    }
}

/// The key-value state machine every node applies committed entries to.
#[derive(Clone, Debug, Default)]
pub struct Kv {
    values: HashMap<String, i64>,
}

impl Kv {
    /// The value of `key`, if it was ever written.
    pub fn get(&self, key: &str) -> Option<i64> {
        self.values.get(key).copied()
    }

    /// Applies one operation and returns what the client should hear.
    pub fn apply(&mut self, op: &KvOp) -> Reply {
        match op {
            KvOp::Read { key } => Reply::Value(self.get(key)),
            KvOp::Write { key, value } => {
                self.values.insert(key.clone(), *value);
                Reply::Done
            }
            KvOp::Cas { key, from, to } => {
                let current = self.get(key);
                if current == Some(*from) {
                    self.values.insert(key.clone(), *to);
                    Reply::Done
                } else {
                    Reply::Failed(Failure {
                        error: ErrorKind::CasMismatch,
                        definite: true,
                        leader: None,
                        value: current,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_changes_only_a_matching_value() {
        let mut kv = Kv::default();
        let write = KvOp::Write {
            key: "k".into(),
            value: 3,
        };
        assert_eq!(kv.apply(&write), Reply::Done);
        let bad = KvOp::Cas {
            key: "k".into(),
            from: 4,
            to: 5,
        };
        assert!(matches!(kv.apply(&bad), Reply::Failed(f) if f.value == Some(3)));
        let good = KvOp::Cas {
            key: "k".into(),
            from: 3,
            to: 5,
        };
        assert_eq!(kv.apply(&good), Reply::Done);
        assert_eq!(kv.get("k"), Some(5));
    }
}
