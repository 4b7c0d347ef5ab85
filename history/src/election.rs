//! Raft's election safety: at most one leader per term.
//!
//! The input is what nodes said about themselves ([`Observation`]s, see
//! [`crate::observation`]). A node acted as leader of a term when it
//! reported the role `leader` in that term; a follower's `leader` hint is
//! not evidence. The checker reports, with the observations as evidence:
//!
//! * **split brain**: a term in which two different nodes acted as leader;
//! * **term regressions**: a node whose term went backwards. Raft persists
//!   `currentTerm` before answering anyone, so even a restarted node must
//!   never report a lower term. Both make the verdict invalid.
//!
//! It also measures the elections: the terms seen, the elections (distinct
//! term and leader pairs), elections per minute, and the longest time with
//! no leader at all. A node counts as leader from its `leader` observation
//! until its next observation in another role or term; the windows run
//! from the first observation to the last.
//!
//! # Limits
//!
//! A leader that is killed reports nothing more, so it counts as leader
//! until the end of the log unless the harness records a later observation
//! for it; the longest leaderless window is then an underestimate.

use crate::formats::{jsonl, FormatError};
use crate::observation::{Observation, Role};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Shortest span of observations for which a rate of elections is given.
const RATE_SPAN_NS: u64 = 10_000_000_000;

/// The election checker's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElectionReport {
    pub verdict: Verdict,
    /// Terms with more than one leader.
    pub violations: Vec<SplitBrain>,
    /// Nodes whose term went backwards.
    pub regressions: Vec<Regression>,
    pub observations: usize,
    pub nodes: usize,
    /// Distinct terms in any observation.
    pub terms: usize,
    /// Distinct (term, leader) pairs.
    pub elections: usize,
    /// Nanoseconds from the first observation to the last.
    pub span_ns: u64,
    /// `None` when the observations span less than 10 s, too short for a
    /// rate to mean anything.
    pub elections_per_minute: Option<f64>,
    /// The longest stretch in which no node was leader.
    pub longest_without_leader_ns: u64,
    /// When that stretch began, in nanoseconds since the test started.
    pub longest_without_leader_from_ns: Option<u64>,
}

/// Two or more nodes that acted as leader in the same term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitBrain {
    pub term: u64,
    pub leaders: Vec<String>,
    /// The first `leader` observation of each of those nodes in the term.
    pub evidence: Vec<Evidence>,
}

/// A node that reported a term lower than one it reported before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    pub node: String,
    pub before: Evidence,
    pub after: Evidence,
}

/// An observation and where it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// 1-based line in the observations file (the position in the input
    /// when no lines were given).
    pub line: usize,
    pub observation: Observation,
}

/// Reads observations, JSON Lines; blank lines are skipped.
pub fn read_observations(path: &Path) -> Result<Vec<Observation>, FormatError> {
    read_observations_numbered(path).map(|(obs, _)| obs)
}

/// Reads observations with the line of each, for [`check_numbered`].
pub fn read_observations_numbered(
    path: &Path,
) -> Result<(Vec<Observation>, Vec<usize>), FormatError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        FormatError::whole(format!("cannot read the observations: {e}")).in_file(&origin)
    })?;
    parse_observations(&text).map_err(|e| e.in_file(origin))
}

/// Parses observations from JSON Lines text. As for histories, a last line
/// cut short by a crash (no newline, JSON ending early) is dropped. A line
/// whose `"observation"` field is there and is not `"role"` (raft-kv also
/// reports `"apply"`) is about something else and skipped.
pub fn parse_observations(
    text: &str,
) -> Result<(Vec<Observation>, Vec<usize>), FormatError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut obs = Vec::new();
    let mut lines = Vec::new();
    let last = text.lines().count();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) if jsonl::cut_short(text, line == last, &e) => break,
            Err(e) => {
                let message = e.to_string();
                let message = message.rsplit_once(" at line ").map_or(&*message, |m| m.0);
                return Err(FormatError::at_column(
                    line,
                    e.column().max(1),
                    format!("expected an observation as a JSON object: {message}"),
                ));
            }
        };
        let Value::Object(o) = value else {
            return Err(FormatError::at(line, format!("{EXPECTED}, found {value}")));
        };
        match o.get("observation") {
            None => {}
            Some(Value::String(s)) if s == "role" => {}
            Some(_) => continue,
        }
        obs.push(observation(&o).map_err(|m| FormatError::at(line, m))?);
        lines.push(line);
    }
    Ok((obs, lines))
}

/// What an observation line looks like, for error messages.
const EXPECTED: &str = "expected an observation such as {\"time\": 0, \"node\": \"n1\", \
                        \"term\": 1, \"role\": \"leader\"}";

/// An observation from a JSON object, checking every field.
fn observation(o: &Map<String, Value>) -> Result<Observation, String> {
    let field = |name: &str| {
        o.get(name)
            .ok_or_else(|| format!("{EXPECTED}; found no \"{name}\" field"))
    };
    let uint = |name: &str| {
        let v = field(name)?;
        v.as_u64().ok_or_else(|| {
            format!("expected \"{name}\" to be a non-negative integer, found {v}")
        })
    };
    let string = |name: &str, v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("expected \"{name}\" to be a string, found {other}")),
    };
    let role = match field("role")?.as_str() {
        Some("leader") => Role::Leader,
        Some("follower") => Role::Follower,
        Some("candidate") => Role::Candidate,
        _ => {
            return Err(format!(
                "expected \"role\" to be one of leader, follower, candidate, found {}",
                o["role"]
            ))
        }
    };
    Ok(Observation {
        time: uint("time")?,
        node: string("node", field("node")?)?,
        term: uint("term")?,
        role,
        leader: match o.get("leader") {
            None | Some(Value::Null) => None,
            Some(v) => Some(string("leader", v)?),
        },
    })
}

/// Checks election safety; evidence lines are positions in `obs`, from 1.
pub fn check(obs: &[Observation]) -> ElectionReport {
    let lines: Vec<usize> = (1..=obs.len()).collect();
    check_numbered(obs, &lines)
}

/// Checks election safety; `lines[i]` is the line of `obs[i]`.
pub fn check_numbered(obs: &[Observation], lines: &[usize]) -> ElectionReport {
    let evidence = |i: usize| Evidence {
        line: lines.get(i).copied().unwrap_or(i + 1),
        observation: obs[i].clone(),
    };
    // Time order; ties keep the order of the input.
    let mut order: Vec<usize> = (0..obs.len()).collect();
    order.sort_by_key(|&i| obs[i].time);

    // Split brain: the first leader observation of each node, per term.
    let mut leaders: BTreeMap<u64, BTreeMap<&str, usize>> = BTreeMap::new();
    for &i in &order {
        if obs[i].role == Role::Leader {
            leaders
                .entry(obs[i].term)
                .or_default()
                .entry(obs[i].node.as_str())
                .or_insert(i);
        }
    }
    let violations: Vec<SplitBrain> = leaders
        .iter()
        .filter(|(_, by_node)| by_node.len() > 1)
        .map(|(&term, by_node)| {
            let mut evidence: Vec<Evidence> =
                by_node.values().map(|&i| evidence(i)).collect();
            evidence.sort_by_key(|e| (e.observation.time, e.line));
            SplitBrain {
                term,
                leaders: by_node.keys().map(|n| n.to_string()).collect(),
                evidence,
            }
        })
        .collect();

    // Term regressions: each node's term must never go down.
    let mut last: HashMap<&str, usize> = HashMap::new();
    let mut regressions = Vec::new();
    for &i in &order {
        if let Some(&before) = last.get(obs[i].node.as_str()) {
            if obs[i].term < obs[before].term {
                regressions.push(Regression {
                    node: obs[i].node.clone(),
                    before: evidence(before),
                    after: evidence(i),
                });
            }
        }
        last.insert(&obs[i].node, i);
    }

    let (gap, gap_from) = longest_leaderless(obs, &order);
    let span_ns = match (order.first(), order.last()) {
        (Some(&a), Some(&b)) => obs[b].time - obs[a].time,
        _ => 0,
    };
    let elections: usize = leaders.values().map(|by_node| by_node.len()).sum();
    let verdict = if violations.is_empty() && regressions.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    ElectionReport {
        verdict,
        violations,
        regressions,
        observations: obs.len(),
        nodes: obs.iter().map(|o| &o.node).collect::<BTreeSet<_>>().len(),
        terms: obs.iter().map(|o| o.term).collect::<BTreeSet<_>>().len(),
        elections,
        span_ns,
        elections_per_minute: (span_ns >= RATE_SPAN_NS)
            .then(|| elections as f64 / (span_ns as f64 / 60e9)),
        longest_without_leader_ns: gap,
        longest_without_leader_from_ns: gap_from,
    }
}

/// The longest window in which no node was leader, and when it began.
/// Each node's latest observation says whether it is leader now.
fn longest_leaderless(obs: &[Observation], order: &[usize]) -> (u64, Option<u64>) {
    let Some(&first) = order.first() else {
        return (0, None);
    };
    let mut leading: BTreeSet<&str> = BTreeSet::new();
    let mut since = Some(obs[first].time);
    let mut best: (u64, Option<u64>) = (0, None);
    let close = |start: u64, end: u64, best: &mut (u64, Option<u64>)| {
        if end - start > best.0 {
            *best = (end - start, Some(start));
        }
    };
    for &i in order {
        let o = &obs[i];
        if o.role == Role::Leader {
            leading.insert(&o.node);
        } else {
            leading.remove(o.node.as_str());
        }
        match (since, leading.is_empty()) {
            (Some(start), false) => {
                close(start, o.time, &mut best);
                since = None;
            }
            (None, true) => since = Some(o.time),
            _ => {}
        }
    }
    if let (Some(start), Some(&end)) = (since, order.last()) {
        close(start, obs[end].time, &mut best);
    }
    best
}
