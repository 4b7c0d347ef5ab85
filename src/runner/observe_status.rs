//! Role observations polled from a status endpoint that every node serves
//! over HTTP, such as etcd's `POST /v3/maintenance/status`.
//!
//! The target says where the node's own id, the id of the leader it knows
//! and the term are in the JSON answer, as JSON pointers (RFC 6901); ids
//! and terms may be numbers or strings (etcd sends 64-bit numbers as
//! strings). A node whose leader is itself is a leader; one that knows
//! another leader is a follower with that leader as hint, under its node
//! name once that node has been polled; one that knows no leader (field
//! absent, `0` or empty) reports nothing, since it may be a follower or a
//! candidate. Only changes are recorded, so a steady cluster adds nothing
//! to `observations.jsonl`.
//!
//! # Limits
//!
//! A poll sees the node at one instant: a leader that rises and falls
//! between two polls goes unseen, so this source can miss a violation of
//! election safety but not invent one, provided the endpoint's term is the
//! node's current term. etcd 3.4's `raftTerm` is not: it is the term of
//! the last applied entry, which trails a new leader's term until its first
//! entry commits, so a leader elected in term 5 and cut off at once is
//! reported as leading term 4. Use the log source for etcd's terms.

use super::observe::{Observer, Stamped};
use history::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use workloads::http::HttpConn;

/// The `[observations]` table of a target with `kind = "status"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    /// The path POSTed on each node's client address.
    pub path: String,
    /// The JSON body sent.
    #[serde(default = "empty_object")]
    pub body: String,
    /// Time between two polls of one node, in milliseconds.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// JSON pointer to the node's own id.
    pub self_id: String,
    /// JSON pointer to the id of the leader the node knows.
    pub leader: String,
    /// JSON pointer to the term.
    pub term: String,
}

fn empty_object() -> String {
    "{}".into()
}

fn default_interval() -> u64 {
    200
}

/// A status poller for all nodes of a run.
#[derive(Debug)]
pub struct StatusSource {
    config: StatusConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Node name by system id.
    names: HashMap<String, String>,
    /// The last observation of each node, to record only changes.
    last: HashMap<String, (u64, Role, Option<String>)>,
}

impl StatusSource {
    /// Checks the pointers; the error names the bad field.
    pub fn new(config: &StatusConfig) -> Result<StatusSource, String> {
        for (field, pointer) in [
            ("self_id", &config.self_id),
            ("leader", &config.leader),
            ("term", &config.term),
        ] {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(format!(
                    "observations.{field}: {pointer:?} is not a JSON pointer; expected \
                     one starting with `/`, such as \"/header/member_id\""
                ));
            }
        }
        if config.interval_ms == 0 {
            return Err("observations.interval_ms: 0, expected at least 1".into());
        }
        Ok(StatusSource {
            config: config.clone(),
            state: Mutex::new(State::default()),
        })
    }

    /// The observation in node `node`'s status answer, stamped `time`, or
    /// `None` if it reports no leader or nothing changed since last time.
    pub fn parse(&self, node: &str, answer: &Value, time: u64) -> Option<Stamped> {
        let own = text(answer.pointer(&self.config.self_id)?)?;
        let term = text(answer.pointer(&self.config.term)?)?
            .parse::<u64>()
            .ok()?;
        let leader = answer.pointer(&self.config.leader).and_then(text);

        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.names.insert(own.clone(), node.to_string());
        let (role, hint) = match leader {
            None => return None,
            Some(l) if l == own => (Role::Leader, None),
            Some(l) => (Role::Follower, state.names.get(&l).cloned()),
        };
        let now = (term, role, hint.clone());
        if state.last.get(node) == Some(&now) {
            return None;
        }
        state.last.insert(node.to_string(), now);
        Some(Stamped {
            time,
            node: node.to_string(),
            term,
            role,
            leader: hint,
            node_time: None,
            event: None,
        })
    }

    /// Polls `node` at `addr` until `stop` turns true, recording what
    /// changes. A poll that fails or outlasts the interval (a paused or
    /// dead node) is skipped.
    pub async fn poll_node(
        self: Arc<Self>,
        node: String,
        addr: SocketAddr,
        observer: Arc<Observer>,
        mut stop: watch::Receiver<bool>,
    ) {
        let interval = Duration::from_millis(self.config.interval_ms);
        let patience = interval.max(Duration::from_millis(500));
        let mut conn = HttpConn::new(addr);
        while !*stop.borrow() {
            let body = self.config.body.as_bytes();
            let answer =
                tokio::time::timeout(patience, conn.post(&self.config.path, body)).await;
            match answer {
                Ok(Ok(response)) if response.status == 200 => {
                    let json = serde_json::from_slice::<Value>(&response.body);
                    if let Some(obs) = json
                        .ok()
                        .and_then(|v| self.parse(&node, &v, observer.now()))
                    {
                        observer.record(&obs);
                    }
                }
                Ok(_) => {}
                // The connection may still carry the late answer: drop it.
                Err(_) => conn = HttpConn::new(addr),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// A JSON string or number as text; `None` for absent, zero or empty.
fn text(v: &Value) -> Option<String> {
    let t = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!t.is_empty() && t != "0").then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn etcd() -> StatusSource {
        StatusSource::new(&StatusConfig {
            path: "/v3/maintenance/status".into(),
            body: "{}".into(),
            interval_ms: 200,
            self_id: "/header/member_id".into(),
            leader: "/leader".into(),
            term: "/raftTerm".into(),
        })
        .unwrap()
    }

    /// An etcd 3.4.23 status answer, trimmed.
    fn status(member: &str, leader: Option<&str>, term: &str) -> Value {
        let mut v = json!({
            "header": {"cluster_id": "12724377422624490580", "member_id": member,
                       "revision": "2", "raft_term": term},
            "version": "3.4.23", "raftIndex": "9", "raftTerm": term,
        });
        if let Some(l) = leader {
            v["leader"] = json!(l);
        }
        v
    }

    #[test]
    fn leader_is_the_node_whose_leader_is_itself() {
        let source = etcd();
        let lead = source
            .parse("n1", &status("315", Some("315"), "2"), 7)
            .unwrap();
        assert_eq!((lead.term, lead.role, lead.time), (2, Role::Leader, 7));
        let follow = source
            .parse("n2", &status("772", Some("315"), "2"), 8)
            .unwrap();
        assert_eq!(
            (follow.role, follow.leader.as_deref()),
            (Role::Follower, Some("n1"))
        );
    }

    #[test]
    fn only_changes_are_reported() {
        let source = etcd();
        assert!(source
            .parse("n1", &status("315", Some("315"), "2"), 1)
            .is_some());
        assert!(source
            .parse("n1", &status("315", Some("315"), "2"), 2)
            .is_none());
        assert!(source
            .parse("n1", &status("315", Some("772"), "3"), 3)
            .is_some());
    }

    #[test]
    fn a_node_without_leader_reports_nothing() {
        let source = etcd();
        assert!(source.parse("n1", &status("315", None, "3"), 1).is_none());
        assert!(source
            .parse("n1", &status("315", Some("0"), "3"), 1)
            .is_none());
        assert!(source.parse("n1", &json!({"error": "x"}), 1).is_none());
    }

    #[test]
    fn bad_pointers_are_rejected() {
        let mut config = etcd().config;
        config.term = "raftTerm".into();
        let err = StatusSource::new(&config).unwrap_err();
        assert!(err.contains("observations.term"), "{err}");
    }
}
