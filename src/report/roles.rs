//! Each node's role over time, derived from the observations: bands of
//! one role in one term, terms with two leaders, and windows without any.

use history::{Observation, Role};
use std::collections::{BTreeMap, BTreeSet};

/// A node's role in one term over an interval.
#[derive(Debug, Clone)]
pub struct Band {
    pub term: u64,
    pub role: Role,
    pub start: u64,
    pub end: u64,
    pub leader_hint: Option<String>,
}

/// Each node's role over time: an observation holds until the node's next
/// one in another role or term, or until the run ends.
pub fn bands(observations: &[Observation], run_end: u64) -> BTreeMap<String, Vec<Band>> {
    let mut sorted: Vec<&Observation> = observations.iter().collect();
    sorted.sort_by_key(|o| o.time);
    let mut bands: BTreeMap<String, Vec<Band>> = BTreeMap::new();
    for o in sorted {
        let node = bands.entry(o.node.clone()).or_default();
        if let Some(last) = node.last_mut() {
            // A follower learning who leads stays in the same band.
            if last.term == o.term && last.role == o.role {
                if o.leader.is_some() {
                    last.leader_hint = o.leader.clone();
                }
                continue;
            }
            last.end = o.time;
        }
        node.push(Band {
            term: o.term,
            role: o.role,
            start: o.time,
            end: run_end.max(o.time),
            leader_hint: o.leader.clone(),
        });
    }
    bands
}

/// Terms in which more than one node said it was leader, with those nodes.
pub fn split_brains(observations: &[Observation]) -> BTreeMap<u64, BTreeSet<String>> {
    let mut leaders: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for o in observations.iter().filter(|o| o.role == Role::Leader) {
        leaders.entry(o.term).or_default().insert(o.node.clone());
    }
    leaders.retain(|_, nodes| nodes.len() > 1);
    leaders
}

/// Intervals, after the first leader appeared, in which no node believed
/// it was leader.
pub fn leaderless(bands: &BTreeMap<String, Vec<Band>>, run_end: u64) -> Vec<(u64, u64)> {
    let mut edges: Vec<(u64, i64)> = Vec::new();
    for band in bands.values().flatten().filter(|b| b.role == Role::Leader) {
        edges.push((band.start, 1));
        edges.push((band.end, -1));
    }
    edges.sort();
    let mut gaps = Vec::new();
    let mut leaders = 0i64;
    let mut gap_start: Option<u64> = None;
    for (time, delta) in edges {
        leaders += delta;
        if leaders == 0 && gap_start.is_none() {
            gap_start = Some(time);
        } else if leaders > 0 {
            if let Some(start) = gap_start.take() {
                if time > start {
                    gaps.push((start, time));
                }
            }
        }
    }
    if let Some(start) = gap_start {
        if run_end > start {
            gaps.push((start, run_end));
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(
        time: u64,
        node: &str,
        term: u64,
        role: Role,
        leader: Option<&str>,
    ) -> Observation {
        Observation {
            time,
            node: node.into(),
            term,
            role,
            leader: leader.map(String::from),
        }
    }

    #[test]
    fn a_follower_learning_its_leader_stays_in_one_band() {
        let seen = [
            obs(10, "n2", 3, Role::Follower, None),
            obs(20, "n2", 3, Role::Follower, Some("n1")),
            obs(30, "n2", 4, Role::Candidate, None),
        ];
        let bands = bands(&seen, 100);
        let n2 = &bands["n2"];
        assert_eq!(n2.len(), 2);
        assert_eq!(
            (n2[0].start, n2[0].end, n2[0].leader_hint.as_deref()),
            (10, 30, Some("n1"))
        );
        assert_eq!((n2[1].start, n2[1].end), (30, 100));
    }

    #[test]
    fn two_leaders_in_one_term_are_a_split_brain_and_gaps_are_leaderless() {
        let seen = [
            obs(10, "n1", 2, Role::Leader, None),
            obs(50, "n1", 3, Role::Follower, None),
            obs(70, "n3", 3, Role::Leader, None),
            obs(80, "n2", 3, Role::Leader, None),
        ];
        let split = split_brains(&seen);
        assert_eq!(split.keys().collect::<Vec<_>>(), [&3]);
        assert_eq!(split[&3].len(), 2);
        assert_eq!(leaderless(&bands(&seen, 100), 100), [(50, 70)]);
    }
}
