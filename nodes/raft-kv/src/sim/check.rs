//! Safety checks over a simulated run: election safety, state-machine
//! safety and log matching as the run goes, and a linearizability check of
//! the client history against the final committed log at the end.

use std::collections::HashMap;

use crate::core::{Entry, Role};
use crate::kv::{KvOp, Reply};
use crate::NodeId;

/// A broken safety property, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which property: `election-safety`, `state-machine-safety`,
    /// `log-matching`, `lost-write`, `stale-read`, `phantom-read`.
    pub property: &'static str,
    /// What was seen.
    pub detail: String,
}

/// One client operation of the simulated history.
#[derive(Clone, Debug)]
pub struct ClientOp {
    /// The node the client asked.
    pub node: usize,
    /// The operation.
    pub op: KvOp,
    /// Simulated time of the invocation, in ms.
    pub invoked: u64,
    /// Simulated time and content of the answer, if one came.
    pub completed: Option<(u64, Reply)>,
}

/// Collects evidence while a simulation runs.
#[derive(Default)]
pub struct Checker {
    leaders: HashMap<u64, NodeId>,
    applied: HashMap<u64, (u64, String)>,
    /// The first violation seen.
    pub violation: Option<Violation>,
}

impl Checker {
    fn fail(&mut self, property: &'static str, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation { property, detail });
        }
    }

    /// At most one leader per term.
    pub fn saw_role(&mut self, node: &NodeId, term: u64, role: Role) {
        if role != Role::Leader {
            return;
        }
        match self.leaders.get(&term) {
            Some(other) if other != node => {
                let detail = format!("term {term} has two leaders: {other} and {node}");
                self.fail("election-safety", detail);
            }
            _ => {
                self.leaders.insert(term, node.clone());
            }
        }
    }

    /// Every node applies the same entry at each index.
    pub fn saw_apply(&mut self, node: &NodeId, index: u64, term: u64, digest: &str) {
        match self.applied.get(&index) {
            Some((t, d)) if (*t, d.as_str()) != (term, digest) => {
                let detail = format!(
                    "{node} applied term {term} digest {digest} at index {index}, \
                     another node applied term {t} digest {d}"
                );
                self.fail("state-machine-safety", detail);
            }
            _ => {
                self.applied.insert(index, (term, digest.to_string()));
            }
        }
    }

    /// If two logs hold an entry with the same index and term, they are
    /// identical up to it.
    pub fn check_logs(&mut self, logs: &[(NodeId, &[Entry])]) {
        for (i, (a, log_a)) in logs.iter().enumerate() {
            for (b, log_b) in &logs[i + 1..] {
                let common = log_a.len().min(log_b.len());
                let Some(last_match) =
                    (0..common).rev().find(|&k| log_a[k].term == log_b[k].term)
                else {
                    continue;
                };
                if let Some(k) = (0..=last_match).find(|&k| log_a[k] != log_b[k]) {
                    let detail = format!(
                        "{a} and {b} agree on the term at index {} but differ at {}",
                        last_match + 1,
                        k + 1
                    );
                    self.fail("log-matching", detail);
                    return;
                }
            }
        }
    }

    /// Checks the history against `committed`, the final committed log:
    /// every acknowledged write is in it, and no read returns a value older
    /// than a write acknowledged before the read began, or a value never
    /// committed. Values written are unique, so a value names its write.
    pub fn check_history(&mut self, history: &[ClientOp], committed: &[Entry]) {
        let mut position: HashMap<(&str, i64), u64> = HashMap::new();
        for entry in committed {
            match &entry.op {
                Some(KvOp::Write { key, value }) => {
                    position.insert((key, *value), entry.index);
                }
                Some(KvOp::Cas { key, to, .. }) => {
                    position.insert((key, *to), entry.index);
                }
                _ => {}
            }
        }
        fn written(op: &ClientOp) -> Option<(&String, i64, u64)> {
            match (&op.op, &op.completed) {
                (KvOp::Write { key, value }, Some((t, Reply::Done))) => {
                    Some((key, *value, *t))
                }
                (KvOp::Cas { key, to, .. }, Some((t, Reply::Done))) => {
                    Some((key, *to, *t))
                }
                _ => None,
            }
        }
        for op in history {
            if let Some((key, value, _)) = written(op) {
                if !position.contains_key(&(key.as_str(), value)) {
                    let detail =
                        format!("{key}={value} was acknowledged but is not committed");
                    self.fail("lost-write", detail);
                    return;
                }
            }
        }
        for read in history {
            let (KvOp::Read { key }, Some((_, Reply::Value(value)))) =
                (&read.op, &read.completed)
            else {
                continue;
            };
            let seen = match value {
                None => 0,
                Some(v) => match position.get(&(key.as_str(), *v)) {
                    Some(p) => *p,
                    None => {
                        let detail = format!("read {key}={v}, a value never committed");
                        self.fail("phantom-read", detail);
                        return;
                    }
                },
            };
            for write in history {
                let Some((wkey, wvalue, acked)) = written(write) else {
                    continue;
                };
                let newer = position.get(&(wkey.as_str(), wvalue)).copied().unwrap_or(0);
                if wkey == key && acked < read.invoked && newer > seen {
                    let detail = format!(
                        "read of {key} at {} ms returned {value:?}, but {key}={wvalue} \
                         was acknowledged at {acked} ms",
                        read.invoked
                    );
                    self.fail("stale-read", detail);
                    return;
                }
            }
        }
    }
}
