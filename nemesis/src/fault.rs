//! The fault vocabulary, each fault with its undo.

use crate::grudge::Grudge;
use crate::node_name;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Value};

/// One nemesis operation. Nodes are 0-based indexes; in the history they
/// appear by name (`n1`, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Drop packets as the grudge says (replaces any earlier partition).
    Partition {
        /// Who drops whose packets.
        grudge: Grudge,
    },
    /// Drop nothing any more.
    Heal,
    /// SIGKILL these nodes.
    Kill {
        /// The nodes.
        nodes: Vec<usize>,
    },
    /// Start these (killed) nodes again on their data directories.
    Restart {
        /// The nodes.
        nodes: Vec<usize>,
    },
    /// SIGSTOP these nodes.
    Pause {
        /// The nodes.
        nodes: Vec<usize>,
    },
    /// SIGCONT these nodes.
    Resume {
        /// The nodes.
        nodes: Vec<usize>,
    },
    /// Set a node's clock offset from real time and its rate.
    SkewClock {
        /// The node.
        node: usize,
        /// Offset from real time in milliseconds, either sign.
        offset_ms: i64,
        /// How fast its clock runs: 1.0 is real time.
        rate: f64,
    },
    /// Put these nodes' clocks back to real time.
    ResetClock {
        /// The nodes.
        nodes: Vec<usize>,
    },
}

impl Fault {
    /// The history's `f` for this operation: `partition`, `heal`, `kill`,
    /// `restart`, `pause`, `resume`, `skew-clock`, `reset-clock`.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Heal => "heal",
            Fault::Kill { .. } => "kill",
            Fault::Restart { .. } => "restart",
            Fault::Pause { .. } => "pause",
            Fault::Resume { .. } => "resume",
            Fault::SkewClock { .. } => "skew-clock",
            Fault::ResetClock { .. } => "reset-clock",
        }
    }

    /// The history's `value` for this operation: the grudge for a partition
    /// (see [`Grudge`]'s serialization), `null` for heal, node names for the
    /// process faults, `{"node", "offset_ms", "rate"}` for a clock skew.
    pub fn value(&self) -> Value {
        let names = |nodes: &[usize]| -> Value {
            Value::from(nodes.iter().map(|&n| node_name(n)).collect::<Vec<_>>())
        };
        match self {
            Fault::Partition { grudge } => json!(grudge),
            Fault::Heal => Value::Null,
            Fault::Kill { nodes }
            | Fault::Restart { nodes }
            | Fault::Pause { nodes }
            | Fault::Resume { nodes }
            | Fault::ResetClock { nodes } => names(nodes),
            Fault::SkewClock {
                node,
                offset_ms,
                rate,
            } => json!({"node": node_name(*node), "offset_ms": offset_ms, "rate": rate}),
        }
    }

    /// The fault that undoes this one, or `None` when this is itself an undo.
    pub fn undo(&self) -> Option<Fault> {
        match self {
            Fault::Partition { .. } => Some(Fault::Heal),
            Fault::Kill { nodes } => Some(Fault::Restart {
                nodes: nodes.clone(),
            }),
            Fault::Pause { nodes } => Some(Fault::Resume {
                nodes: nodes.clone(),
            }),
            Fault::SkewClock { node, .. } => {
                Some(Fault::ResetClock { nodes: vec![*node] })
            }
            Fault::Heal | Fault::Restart { .. } | Fault::Resume { .. } => None,
            Fault::ResetClock { .. } => None,
        }
    }

    /// A one-line description for logs: `partition n1 | n2 n3`, `kill n2`.
    pub fn describe(&self) -> String {
        match self {
            Fault::Partition { grudge } => format!("partition {}", grudge.describe()),
            Fault::Heal => "heal".to_string(),
            Fault::SkewClock {
                node,
                offset_ms,
                rate,
            } => format!("skew-clock {} {offset_ms:+}ms x{rate}", node_name(*node)),
            Fault::Kill { nodes }
            | Fault::Restart { nodes }
            | Fault::Pause { nodes }
            | Fault::Resume { nodes }
            | Fault::ResetClock { nodes } => {
                let names: Vec<String> = nodes.iter().map(|&n| node_name(n)).collect();
                format!("{} {}", self.name(), names.join(" "))
            }
        }
    }
}

/// Serialized as `{"f": name, "value": value}`.
impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("f", self.name())?;
        map.serialize_entry("value", &self.value())?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_an_undo_and_undos_have_none() {
        let faults = [
            Fault::Partition {
                grudge: Grudge::isolate(3, 0),
            },
            Fault::Kill { nodes: vec![1] },
            Fault::Pause { nodes: vec![0, 2] },
            Fault::SkewClock {
                node: 2,
                offset_ms: -250,
                rate: 1.5,
            },
        ];
        let undos: Vec<Fault> = faults.iter().map(|f| f.undo().unwrap()).collect();
        assert_eq!(
            undos.iter().map(Fault::name).collect::<Vec<_>>(),
            ["heal", "restart", "resume", "reset-clock"]
        );
        assert_eq!(undos[1], Fault::Restart { nodes: vec![1] });
        assert_eq!(undos[3], Fault::ResetClock { nodes: vec![2] });
        assert!(undos.iter().all(|u| u.undo().is_none()));
    }

    #[test]
    fn history_values_name_nodes_from_n1() {
        let kill = Fault::Kill { nodes: vec![0, 2] };
        assert_eq!(
            serde_json::to_string(&kill).unwrap(),
            r#"{"f":"kill","value":["n1","n3"]}"#
        );
        let skew = Fault::SkewClock {
            node: 1,
            offset_ms: -250,
            rate: 1.5,
        };
        assert_eq!(
            skew.value(),
            json!({"node": "n2", "offset_ms": -250, "rate": 1.5})
        );
        assert_eq!(skew.describe(), "skew-clock n2 -250ms x1.5");
        assert_eq!(Fault::Heal.value(), Value::Null);
        let partition = Fault::Partition {
            grudge: Grudge::isolate(2, 0),
        };
        assert_eq!(partition.value(), json!({"n1": ["n2"], "n2": ["n1"]}));
        assert_eq!(partition.describe(), "partition n1 | n2");
    }
}
