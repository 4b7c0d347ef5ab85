//! Role observations: read from the nodes, stamped with the harness's
//! clock, streamed to `observations.jsonl`, and kept as a live view of who
//! leads for the nemesis and the readiness wait.
//!
//! A node's own `time` may come from a skewed clock, so the harness stamps
//! each observation with its receive time (nanoseconds since the test
//! started) and keeps the node's as `node_time`.

use history::Role;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// An observation line as a node writes it.
#[derive(Debug, Deserialize)]
struct NodeLine {
    observation: String,
    #[serde(default)]
    time: Option<u64>,
    node: String,
    term: u64,
    role: Role,
    #[serde(default)]
    leader: Option<String>,
}

/// An observation as stored: [`history::Observation`] plus `node_time`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    pub time: u64,
    pub node: String,
    pub term: u64,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_time: Option<u64>,
    /// Set when the harness wrote the line itself: `killed` marks a node
    /// the nemesis killed, `stopped` one stopped at the end of the run;
    /// either way it acts in no role any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// Parses a role observation from a raft-kv stderr line; `None` for any
/// other line.
pub fn parse_role_line(line: &str, time: u64) -> Option<Stamped> {
    if !line.starts_with("{\"observation\":") {
        return None;
    }
    let parsed: NodeLine = serde_json::from_str(line).ok()?;
    if parsed.observation != "role" {
        return None;
    }
    Some(Stamped {
        time,
        node: parsed.node,
        term: parsed.term,
        role: parsed.role,
        leader: parsed.leader,
        node_time: parsed.time,
        event: None,
    })
}

/// The observation log and the live view of roles.
pub struct Observer {
    start: Instant,
    ids: Vec<String>,
    state: Mutex<State>,
}

struct State {
    out: File,
    /// The latest (term, role) of each node; `None` when down or unknown.
    roles: Vec<Option<(u64, Role)>>,
}

impl Observer {
    /// Creates `observations.jsonl` at `path`; `ids` are the node names.
    pub fn create(path: &Path, ids: Vec<String>, start: Instant) -> io::Result<Observer> {
        let out = File::create(path)?;
        let roles = vec![None; ids.len()];
        Ok(Observer {
            start,
            ids,
            state: Mutex::new(State { out, roles }),
        })
    }

    /// Nanoseconds since the test started.
    pub fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records an observation and updates the view.
    pub fn record(&self, obs: &Stamped) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(mut line) = serde_json::to_vec(obs) {
            line.push(b'\n');
            if let Err(e) = state.out.write_all(&line) {
                tracing::warn!(error = %e, "cannot write observations.jsonl");
            }
        }
        if let Some(i) = self.ids.iter().position(|id| *id == obs.node) {
            state.roles[i] = Some((obs.term, obs.role));
        }
    }

    /// Forgets what a node said about itself when it is killed, and
    /// records that it stopped leading: a dead node says nothing more, and
    /// would otherwise count as leader until its next words.
    pub fn node_down(&self, node: usize, event: &str) {
        let last = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.roles.get_mut(node).and_then(Option::take)
        };
        if let (Some((term, _)), Some(id)) = (last, self.ids.get(node)) {
            self.record(&Stamped {
                time: self.now(),
                node: id.clone(),
                term,
                role: Role::Follower,
                leader: None,
                node_time: None,
                event: Some(event.into()),
            });
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.roles[node] = None;
        }
    }

    /// The node that last said it leads in the highest term, if any.
    pub fn leader(&self) -> Option<usize> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .roles
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.filter(|(_, role)| *role == Role::Leader)
                    .map(|(t, _)| (t, i))
            })
            .max()
            .map(|(_, i)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_role_lines_and_keeps_the_node_time() {
        let line = r#"{"observation":"role","time":17,"node":"n2","term":3,"role":"follower","leader":"n1"}"#;
        let obs = parse_role_line(line, 99).unwrap();
        assert_eq!((obs.time, obs.node_time, obs.term), (99, Some(17), 3));
        assert_eq!(obs.leader.as_deref(), Some("n1"));
        let stored = serde_json::to_string(&obs).unwrap();
        let back: history::Observation = serde_json::from_str(&stored).unwrap();
        assert_eq!((back.time, back.role), (99, Role::Follower));
    }

    #[test]
    fn ignores_logs_and_other_observations() {
        assert!(parse_role_line("2026-12-04 INFO started", 0).is_none());
        let apply = r#"{"observation":"apply","time":1,"node":"n1","index":3,"term":1,"digest":"ab"}"#;
        assert!(parse_role_line(apply, 0).is_none());
    }

    #[test]
    fn leader_is_the_one_in_the_highest_term_and_down_nodes_do_not_lead() {
        let dir = tempfile::tempdir().unwrap();
        let ids = vec!["n1".to_string(), "n2".to_string()];
        let obs =
            Observer::create(&dir.path().join("o.jsonl"), ids, Instant::now()).unwrap();
        let say = |node: &str, term, role| Stamped {
            time: 0,
            node: node.into(),
            term,
            role,
            leader: None,
            node_time: None,
            event: None,
        };
        obs.record(&say("n1", 1, Role::Leader));
        obs.record(&say("n2", 2, Role::Leader));
        assert_eq!(obs.leader(), Some(1));
        obs.node_down(1, "killed");
        assert_eq!(obs.leader(), Some(0));
    }
}
