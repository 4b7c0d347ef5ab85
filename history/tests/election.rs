//! Election safety: at most one leader per term, terms never go back, and
//! the figures about elections.

use history::election::{check, parse_observations, ElectionReport};
use history::{Observation, Role, Verdict};

const SECOND: u64 = 1_000_000_000;

fn obs(time_s: u64, node: &str, term: u64, role: Role) -> Observation {
    Observation {
        time: time_s * SECOND,
        node: node.into(),
        term,
        role,
        leader: None,
    }
}

use Role::{Candidate, Follower, Leader};

#[test]
fn one_leader_per_term_is_valid() {
    let log = [
        obs(0, "n1", 1, Candidate),
        obs(1, "n1", 1, Leader),
        obs(1, "n2", 1, Follower),
        obs(5, "n2", 2, Candidate),
        obs(6, "n2", 2, Leader),
        obs(6, "n1", 2, Follower),
    ];
    let r = check(&log);
    assert_eq!(r.verdict, Verdict::Valid);
    assert!(r.violations.is_empty() && r.regressions.is_empty());
    assert_eq!(
        (r.nodes, r.terms, r.elections, r.observations),
        (2, 2, 2, 6)
    );
}

#[test]
fn two_leaders_in_one_term_is_a_split_brain_with_evidence() {
    let log = [
        obs(0, "n1", 3, Leader),
        obs(1, "n1", 3, Leader),
        obs(2, "n3", 3, Leader),
        obs(3, "n2", 4, Leader),
    ];
    let r = check(&log);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.violations.len(), 1);
    let v = &r.violations[0];
    assert_eq!(
        (v.term, v.leaders.clone()),
        (3, vec!["n1".to_string(), "n3".into()])
    );
    let lines: Vec<usize> = v.evidence.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 3]);
}

#[test]
fn a_follower_hint_is_not_evidence_of_leadership() {
    let mut hint = obs(1, "n2", 3, Follower);
    hint.leader = Some("n3".into());
    let r = check(&[obs(0, "n1", 3, Leader), hint]);
    assert_eq!(r.verdict, Verdict::Valid);
}

#[test]
fn a_term_going_backwards_is_a_regression() {
    let log = [
        obs(0, "n1", 5, Follower),
        obs(1, "n2", 6, Leader),
        obs(2, "n1", 4, Follower),
    ];
    let r = check(&log);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.regressions.len(), 1);
    let g = &r.regressions[0];
    assert_eq!((g.node.as_str(), g.before.line, g.after.line), ("n1", 1, 3));
}

#[test]
fn stepping_down_in_a_later_term_ends_leadership() {
    // n1 leads from 0 s to 10 s, when it is seen as follower of term 6;
    // n2 leads term 6 from 14 s: 4 s without a leader.
    let log = [
        obs(0, "n1", 5, Leader),
        obs(10, "n1", 6, Follower),
        obs(12, "n2", 6, Candidate),
        obs(14, "n2", 6, Leader),
        obs(20, "n3", 6, Follower),
    ];
    let r = check(&log);
    assert_eq!(r.longest_without_leader_ns, 4 * SECOND);
    assert_eq!(r.longest_without_leader_from_ns, Some(10 * SECOND));
}

#[test]
fn leaderless_windows_run_from_the_first_observation_to_the_last() {
    let log = [
        obs(0, "n1", 1, Candidate),
        obs(3, "n1", 1, Leader),
        obs(4, "n1", 2, Follower),
        obs(30, "n2", 2, Candidate),
    ];
    let r = check(&log);
    assert_eq!(r.longest_without_leader_ns, 26 * SECOND);
    assert_eq!(r.span_ns, 30 * SECOND);
}

#[test]
fn elections_per_minute_counts_distinct_term_leader_pairs() {
    let log = [
        obs(0, "n1", 1, Leader),
        obs(10, "n1", 1, Leader),
        obs(20, "n2", 2, Leader),
        obs(30, "n3", 3, Leader),
    ];
    let r = check(&log);
    assert_eq!(r.elections, 3);
    assert_eq!(r.elections_per_minute, Some(6.0));
    assert_eq!(r.longest_without_leader_ns, 0);
}

#[test]
fn no_observations_is_valid_and_says_nothing() {
    let r = check(&[]);
    assert_eq!(
        (r.verdict, r.elections, r.elections_per_minute),
        (Verdict::Valid, 0, None)
    );
}

#[test]
fn observations_file_errors_name_the_line() {
    let text = "{\"time\": 1, \"node\": \"n1\", \"term\": 1, \"role\": \"leader\"}\n\n\
                {\"time\": 2, \"node\": \"n2\", \"term\": 1, \"role\": \"boss\"}\n";
    let err = parse_observations(text).unwrap_err();
    assert_eq!(err.line, Some(3));
    assert!(err.message.contains("boss"), "{err}");
}

#[test]
fn observations_cut_short_by_a_crash_lose_only_the_last_line() {
    let text = "{\"time\": 1, \"node\": \"n1\", \"term\": 1, \"role\": \"leader\"}\n\
                {\"time\": 2, \"node\": \"n2\", \"te";
    let (obs, lines) = parse_observations(text).unwrap();
    assert_eq!((obs.len(), lines), (1, vec![1]));
}

#[test]
fn report_survives_json() {
    let r = check(&[obs(0, "n1", 1, Leader), obs(1, "n2", 1, Leader)]);
    let text = serde_json::to_string(&r).unwrap();
    let back: ElectionReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Logs in which each term has at most one leader, terms never go back
    /// per node, and times grow: a node, a term step and a role per entry.
    fn safe_log() -> impl Strategy<Value = Vec<Observation>> {
        prop::collection::vec((0usize..4, 0u64..2, 0u8..3, 1u64..5), 0..40).prop_map(
            |steps| {
                let mut terms = [1u64; 4];
                let mut leader_of: std::collections::HashMap<u64, usize> =
                    Default::default();
                let mut time = 0;
                let mut log = Vec::new();
                for (node, bump, role, gap) in steps {
                    terms[node] += bump;
                    time += gap;
                    let term = terms[node];
                    let mut role = [Leader, Follower, Candidate][role as usize];
                    if role == Leader && *leader_of.entry(term).or_insert(node) != node {
                        role = Follower;
                    }
                    log.push(obs(time, &format!("n{node}"), term, role));
                }
                log
            },
        )
    }

    proptest! {
        #[test]
        fn safe_logs_are_valid_and_gaps_fit_in_the_span(log in safe_log()) {
            let r = check(&log);
            prop_assert_eq!(r.verdict, Verdict::Valid);
            prop_assert!(r.longest_without_leader_ns <= r.span_ns);
            prop_assert!(r.elections <= r.terms);
        }

        #[test]
        fn a_second_leader_in_a_term_is_always_caught(
            log in safe_log(),
            pick in any::<prop::sample::Index>(),
        ) {
            let leaders: Vec<&Observation> = log.iter().filter(|o| o.role == Leader).collect();
            prop_assume!(!leaders.is_empty());
            let first = leaders[pick.index(leaders.len())].clone();
            let mut log = log.clone();
            let intruder = Observation { node: "intruder".into(), ..first.clone() };
            log.push(intruder);
            let r = check(&log);
            prop_assert_eq!(r.verdict, Verdict::Invalid);
            prop_assert!(r.violations.iter().any(|v| v.term == first.term
                && v.leaders.contains(&"intruder".to_string())));
        }

        #[test]
        fn random_bytes_never_panic_the_observation_reader(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let _ = parse_observations(&String::from_utf8_lossy(&bytes));
        }
    }
}

#[test]
fn elections_per_minute_is_left_out_for_spans_under_ten_seconds() {
    let log = [
        Observation {
            time: 0,
            ..obs(0, "n1", 1, Leader)
        },
        Observation {
            time: 1_000,
            ..obs(0, "n2", 2, Leader)
        },
    ];
    let r = check(&log);
    assert_eq!((r.elections, r.elections_per_minute), (2, None));
}

#[test]
fn observations_skip_lines_about_something_other_than_roles() {
    let text =
        "{\"observation\":\"role\",\"time\":1,\"node\":\"n1\",\"term\":1,\"role\":\"leader\"}\n\
                {\"observation\":\"apply\",\"time\":2,\"node\":\"n1\",\"index\":3,\"term\":1}\n";
    let (obs, lines) = parse_observations(text).unwrap();
    assert_eq!((obs.len(), lines), (1, vec![1]));
}

#[test]
fn observation_errors_say_what_was_expected_without_serde_positions() {
    let err =
        parse_observations("{\"time\": 1, \"node\": \"n1\", \"role\": \"leader\"}\n")
            .unwrap_err();
    assert_eq!(err.line, Some(1));
    assert!(err.message.ends_with("found no \"term\" field"), "{err}");
    let err = parse_observations("{\"time\": -1}\n").unwrap_err();
    assert!(!err.message.contains(" at line "), "{err}");
    let err = parse_observations("{\"time\": 1,,}\n").unwrap_err();
    assert!(!err.message.contains(" at line "), "{err}");
}
