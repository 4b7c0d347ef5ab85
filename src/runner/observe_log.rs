//! Role observations read from a node's own log lines with regular
//! expressions, for systems that do not speak faultline's observation
//! format (etcd, most Raft libraries).
//!
//! A target lists patterns with named groups:
//!
//! - `term` (required): the term the line is about;
//! - `role`: `leader`, `follower` or `candidate`; other text (such as
//!   `pre-candidate`, which has not started a term) drops the line;
//! - `leader`: the id of the node the line says leads;
//! - `id`: the id of the node the line is about; a line about another node
//!   (a leader logging its peers, say) is dropped.
//!
//! A pattern may fix the role instead (`role = "leader"`). Without either,
//! a line with a `leader` group means *leader* when that id is the node's
//! own and *follower* otherwise.
//!
//! Systems name their nodes with ids of their own (etcd: 16 hex digits),
//! so a separate `self_id` pattern, whose `id` group is the node's own id,
//! teaches the source which id is which node; leader hints are reported
//! under node names once both ids are known, and left out before that.
//! The source is shared by every node of a run so that what one node's log
//! says about its id serves the others' hints. A line that repeats a node's
//! last observation adds nothing and is dropped.
//!
//! # Limits
//!
//! Lines are matched as they arrive; a node that logs its role before its
//! id gets no leader hints until its id line appears.

use super::observe::{parse_role_line, Stamped};
use history::Role;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The `[observations]` table of a target with `kind = "log-regex"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRegexConfig {
    /// A pattern whose `id` group is the node's own id, as its log says it.
    #[serde(default)]
    pub self_id: Option<String>,
    /// Role patterns, tried in order; the first that matches wins.
    pub patterns: Vec<PatternConfig>,
}

/// One role pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    pub regex: String,
    /// The role every match means, when the regex has no `role` group.
    #[serde(default)]
    pub role: Option<Role>,
}

/// Compiled patterns and the ids learned so far.
#[derive(Debug)]
pub struct LogSource {
    self_id: Option<Regex>,
    patterns: Vec<(Regex, Option<Role>)>,
    ids: Mutex<Ids>,
}

#[derive(Debug, Default)]
struct Ids {
    /// Node name by system id.
    names: HashMap<String, String>,
    /// System id by node name.
    own: HashMap<String, String>,
    /// The last observation of each node since it last logged its id, so
    /// that two lines saying the same thing (etcd's `became leader` and
    /// `elected leader` itself) give one observation.
    last: HashMap<String, (u64, Role, Option<String>)>,
}

impl LogSource {
    /// Compiles the patterns; the error names the bad one and says why.
    pub fn new(config: &LogRegexConfig) -> Result<LogSource, String> {
        let self_id = match &config.self_id {
            Some(text) => {
                let re = compile(text, "observations.self_id")?;
                if !re.capture_names().any(|n| n == Some("id")) {
                    return Err(format!(
                        "observations.self_id: {text:?} has no (?P<id>...) group"
                    ));
                }
                Some(re)
            }
            None => None,
        };
        if config.patterns.is_empty() {
            return Err("observations.patterns: none given, expected at least one".into());
        }
        let mut patterns = Vec::new();
        for (i, p) in config.patterns.iter().enumerate() {
            let place = format!("observations.patterns[{i}]");
            let re = compile(&p.regex, &place)?;
            let has = |g: &str| re.capture_names().any(|n| n == Some(g));
            if !has("term") {
                return Err(format!("{place}: {:?} has no (?P<term>...) group", p.regex));
            }
            if p.role.is_none() && !has("role") && !has("leader") {
                return Err(format!(
                    "{place}: {:?} has no role group, no leader group and no fixed \
                     role; expected one of them",
                    p.regex
                ));
            }
            patterns.push((re, p.role));
        }
        Ok(LogSource {
            self_id,
            patterns,
            ids: Mutex::new(Ids::default()),
        })
    }

    /// The observation in one log line of node `node`, stamped `time`, or
    /// `None` when the line reports no role. Lines naming the node's own id
    /// are remembered.
    pub fn parse_line(&self, node: &str, line: &str, time: u64) -> Option<Stamped> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(caps) = self.self_id.as_ref().and_then(|re| re.captures(line)) {
            let id = caps["id"].to_string();
            ids.names.insert(id.clone(), node.to_string());
            ids.own.insert(node.to_string(), id);
            ids.last.remove(node);
            return None;
        }

        let (caps, fixed) = self
            .patterns
            .iter()
            .find_map(|(re, fixed)| re.captures(line).map(|c| (c, *fixed)))?;
        let term: u64 = caps.name("term")?.as_str().parse().ok()?;
        let own = ids.own.get(node);
        if let (Some(subject), Some(own)) = (caps.name("id"), own) {
            if subject.as_str() != own {
                return None;
            }
        }
        let leader_id = caps.name("leader").map(|m| m.as_str());
        let role = match (fixed, caps.name("role")) {
            (Some(role), _) => role,
            (None, Some(text)) => parse_role(text.as_str())?,
            (None, None) => match (leader_id, own) {
                (Some(l), Some(own)) if l == own => Role::Leader,
                (Some(_), Some(_)) => Role::Follower,
                // Without its own id the node's hint cannot be placed.
                _ => return None,
            },
        };
        let leader = match role {
            Role::Leader => None,
            _ => leader_id.and_then(|l| ids.names.get(l).cloned()),
        };
        let now = (term, role, leader.clone());
        if ids.last.get(node) == Some(&now) {
            return None;
        }
        ids.last.insert(node.to_string(), now);
        Some(Stamped {
            time,
            node: node.to_string(),
            term,
            role,
            leader,
            node_time: None,
            event: None,
        })
    }
}

/// How one node's stderr lines become observations.
#[derive(Debug, Clone)]
pub enum LineParser {
    /// faultline's own observation lines, as raft-kv writes them.
    Json,
    /// A target's patterns, for the node named.
    Regex {
        source: Arc<LogSource>,
        node: String,
    },
}

impl LineParser {
    /// The observation in `line`, stamped `time`, if it holds one.
    pub fn parse(&self, line: &str, time: u64) -> Option<Stamped> {
        match self {
            LineParser::Json => parse_role_line(line, time),
            LineParser::Regex { source, node } => source.parse_line(node, line, time),
        }
    }
}

fn compile(text: &str, place: &str) -> Result<Regex, String> {
    Regex::new(text).map_err(|e| format!("{place}: bad regular expression {text:?}: {e}"))
}

fn parse_role(text: &str) -> Option<Role> {
    match text.to_ascii_lowercase().as_str() {
        "leader" => Some(Role::Leader),
        "follower" => Some(Role::Follower),
        "candidate" => Some(Role::Candidate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Observations;

    /// The patterns of `examples/targets/etcd.toml`, over etcd 3.4's zap
    /// JSON log lines as etcd 3.4.23 writes them.
    fn etcd() -> LogSource {
        let target = crate::target::Target::load("etcd").unwrap();
        match &target.observations {
            Observations::LogRegex(config) => LogSource::new(config).unwrap(),
            other => panic!("etcd target observes {other:?}, expected log-regex"),
        }
    }

    const START: &str = r#"{"level":"info","ts":"2026-12-04T16:01:11.108Z","caller":"etcdserver/raft.go:536","msg":"starting local member","local-member-id":"2bd0915e30aa6e35","cluster-id":"b09611d967888454"}"#;
    const RESTART: &str = r#"{"level":"info","ts":"2026-12-04T16:02:11.108Z","caller":"etcdserver/raft.go:536","msg":"restarting local member","cluster-id":"b09611d967888454","local-member-id":"6b30724d1e391b44","commit-index":9}"#;
    const LEADER: &str = r#"{"level":"info","ts":"2026-12-04T16:01:12.132Z","caller":"raft/raft.go:771","msg":"2bd0915e30aa6e35 became leader at term 2"}"#;
    const FOLLOWER: &str = r#"{"level":"info","ts":"2026-12-04T16:01:12.131Z","caller":"raft/raft.go:706","msg":"6b30724d1e391b44 became follower at term 2"}"#;
    const ELECTED: &str = r#"{"level":"info","ts":"2026-12-04T16:01:12.132Z","caller":"raft/node.go:327","msg":"raft.node: 6b30724d1e391b44 elected leader 2bd0915e30aa6e35 at term 2"}"#;
    const PRE: &str = r#"{"level":"info","ts":"x","caller":"raft/raft.go:731","msg":"6b30724d1e391b44 became pre-candidate at term 4"}"#;

    #[test]
    fn etcd_role_lines_become_observations_with_node_names() {
        let source = etcd();
        assert!(source.parse_line("n1", START, 1).is_none());
        assert!(source.parse_line("n3", RESTART, 2).is_none());

        let lead = source.parse_line("n1", LEADER, 3).unwrap();
        assert_eq!(
            (lead.node.as_str(), lead.term, lead.role),
            ("n1", 2, Role::Leader)
        );
        let follow = source.parse_line("n3", FOLLOWER, 4).unwrap();
        assert_eq!(
            (follow.term, follow.role, follow.leader),
            (2, Role::Follower, None)
        );
        let hint = source.parse_line("n3", ELECTED, 5).unwrap();
        assert_eq!(
            (hint.role, hint.leader.as_deref()),
            (Role::Follower, Some("n1"))
        );
        assert_eq!(hint.time, 5);
    }

    #[test]
    fn a_leader_hint_naming_the_node_itself_means_leader() {
        let source = etcd();
        source.parse_line("n1", START, 0);
        let own = ELECTED.replace("6b30724d1e391b44 elected", "2bd0915e30aa6e35 elected");
        let obs = source.parse_line("n1", &own, 0).unwrap();
        assert_eq!((obs.role, obs.leader), (Role::Leader, None));
    }

    #[test]
    fn a_repeated_observation_is_reported_once_per_start() {
        let source = etcd();
        source.parse_line("n1", START, 0);
        let own = ELECTED.replace("6b30724d1e391b44 elected", "2bd0915e30aa6e35 elected");
        assert!(source.parse_line("n1", LEADER, 1).is_some());
        assert!(source.parse_line("n1", &own, 2).is_none());
        // After a restart the same role in the same term is news again.
        source.parse_line("n1", START, 3);
        assert!(source.parse_line("n1", LEADER, 4).is_some());
    }

    #[test]
    fn pre_candidates_and_other_lines_report_nothing() {
        let source = etcd();
        assert!(source.parse_line("n2", PRE, 0).is_none());
        let other =
            r#"{"level":"info","msg":"peer became active","peer-id":"6b30724d1e391b44"}"#;
        assert!(source.parse_line("n2", other, 0).is_none());
        assert!(source.parse_line("n2", "", 0).is_none());
    }

    #[test]
    fn lines_about_another_node_are_dropped() {
        let source = etcd();
        source.parse_line("n1", START, 0);
        let foreign =
            LEADER.replace("2bd0915e30aa6e35 became", "6b30724d1e391b44 became");
        assert!(source.parse_line("n1", &foreign, 0).is_none());
    }

    #[test]
    fn patterns_without_a_term_or_role_are_rejected() {
        let config = |regex: &str, role| LogRegexConfig {
            self_id: None,
            patterns: vec![PatternConfig {
                regex: regex.into(),
                role,
            }],
        };
        let err =
            LogSource::new(&config("became leader", Some(Role::Leader))).unwrap_err();
        assert!(err.contains("term"), "{err}");
        let err = LogSource::new(&config(r"term (?P<term>\d+)", None)).unwrap_err();
        assert!(err.contains("no role group"), "{err}");
        let err = LogSource::new(&config(r"(?P<term>\d+", None)).unwrap_err();
        assert!(
            err.starts_with("observations.patterns[0]: bad regular expression"),
            "{err}"
        );
        let fixed =
            LogSource::new(&config(r"leads term (?P<term>\d+)", Some(Role::Leader)));
        let obs = fixed
            .unwrap()
            .parse_line("n2", "now leads term 7", 9)
            .unwrap();
        assert_eq!((obs.term, obs.role), (7, Role::Leader));
    }
}
