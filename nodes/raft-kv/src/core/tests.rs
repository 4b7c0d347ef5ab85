//! Unit tests of single protocol steps of the core.

use super::*;

fn config(id: &str, peers: &[&str]) -> Config {
    Config {
        id: id.into(),
        peers: peers.iter().map(|p| p.to_string()).collect(),
        election_ticks: (10, 20),
        heartbeat_ticks: 3,
        bugs: Bugs::none(),
        seed: 1,
    }
}

fn entry(index: u64, term: u64) -> Entry {
    let op = KvOp::Write {
        key: "k".into(),
        value: index as i64,
    };
    Entry {
        term,
        index,
        op: Some(op),
    }
}

fn msg(from: &str, to: &str, term: u64, body: Body) -> Message {
    Message {
        from: from.into(),
        to: to.into(),
        term,
        body,
    }
}

fn sent(out: &[Output]) -> Vec<&Body> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(&m.body),
            _ => None,
        })
        .collect()
}

#[test]
fn follower_truncates_a_conflicting_suffix_but_not_on_a_replayed_append() {
    let state = HardState {
        term: 2,
        vote: None,
    };
    let log = vec![entry(1, 1), entry(2, 1), entry(3, 2)];
    let mut core = Core::new(config("n1", &["n2", "n3"]), state, log);
    let append = Body::Append {
        prev_index: 1,
        prev_term: 1,
        entries: vec![entry(2, 3)],
        commit: 0,
        seq: 1,
    };
    core.step(msg("n2", "n1", 3, append.clone()));
    let out = core.take_output();
    assert!(out.contains(&Output::Persist(Persist::Truncate { from: 2 })));
    assert_eq!(core.log().entries(), &[entry(1, 1), entry(2, 3)]);

    // A duplicate or reordered copy must not cut entries that match.
    core.step(msg("n2", "n1", 3, append));
    let out = core.take_output();
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::Persist(Persist::Truncate { .. }))));
    assert_eq!(core.log().last_index(), 2);
}

#[test]
fn a_vote_is_granted_once_per_term_and_persisted_before_the_answer() {
    let mut core = Core::new(config("n1", &["n2", "n3"]), HardState::default(), vec![]);
    let vote = Body::Vote {
        last_index: 0,
        last_term: 0,
    };
    core.step(msg("n2", "n1", 1, vote.clone()));
    let out = core.take_output();
    let persisted = out.iter().position(
        |o| matches!(o, Output::Persist(Persist::HardState(h)) if h.vote.as_deref() == Some("n2")),
    );
    let answered = out.iter().position(|o| matches!(o, Output::Send(_)));
    assert!(persisted.unwrap() < answered.unwrap());
    assert_eq!(sent(&out), vec![&Body::VoteResp { granted: true }]);

    core.step(msg("n3", "n1", 1, vote));
    assert_eq!(
        sent(&core.take_output()),
        vec![&Body::VoteResp { granted: false }]
    );
}

#[test]
fn a_vote_is_refused_to_a_candidate_with_a_shorter_log() {
    let state = HardState {
        term: 1,
        vote: None,
    };
    let mut core = Core::new(config("n1", &["n2", "n3"]), state, vec![entry(1, 1)]);
    core.step(msg(
        "n2",
        "n1",
        2,
        Body::Vote {
            last_index: 0,
            last_term: 0,
        },
    ));
    assert_eq!(
        sent(&core.take_output()),
        vec![&Body::VoteResp { granted: false }]
    );
    assert_eq!(core.term(), 2);
}

#[test]
fn a_pre_vote_changes_no_term_and_is_refused_while_a_leader_is_heard() {
    let mut core = Core::new(config("n1", &["n2", "n3"]), HardState::default(), vec![]);
    let heartbeat = Body::Append {
        prev_index: 0,
        prev_term: 0,
        entries: vec![],
        commit: 0,
        seq: 1,
    };
    core.step(msg("n2", "n1", 1, heartbeat));
    core.take_output();
    core.step(msg(
        "n3",
        "n1",
        2,
        Body::PreVote {
            last_index: 0,
            last_term: 0,
        },
    ));
    assert_eq!(
        sent(&core.take_output()),
        vec![&Body::PreVoteResp { granted: false }]
    );
    assert_eq!(core.term(), 1);
}

#[test]
fn a_leader_commits_an_earlier_term_entry_only_through_one_of_its_own() {
    // n1 leads a 3-node cluster; n2 holds the old entry but not the no-op.
    let state = HardState {
        term: 1,
        vote: None,
    };
    let mut core = Core::new(config("n1", &["n2", "n3"]), state, vec![entry(1, 1)]);
    while core.role() != Role::Leader {
        core.tick();
        let out = core.take_output();
        for body in sent(&out) {
            if matches!(body, Body::PreVote { .. }) {
                let grant = Body::PreVoteResp { granted: true };
                core.step(msg("n2", "n1", core.term() + 1, grant));
            } else if matches!(body, Body::Vote { .. }) {
                core.step(msg(
                    "n2",
                    "n1",
                    core.term(),
                    Body::VoteResp { granted: true },
                ));
            }
        }
    }
    core.take_output();
    let term = core.term();
    let ack = |index| Body::AppendResp {
        success: true,
        index,
        seq: 0,
    };
    core.step(msg("n2", "n1", term, ack(1)));
    assert_eq!(core.commit_index(), 0, "entry 1 is of an earlier term");
    core.step(msg("n2", "n1", term, ack(2)));
    assert_eq!(core.commit_index(), 2);
}

#[test]
fn a_leader_that_hears_a_higher_term_steps_down() {
    let mut core = Core::new(config("n1", &[]), HardState::default(), vec![]);
    for _ in 0..25 {
        core.tick();
    }
    assert_eq!(core.role(), Role::Leader);
    core.take_output();
    let term = core.term();
    core.step(msg(
        "n9",
        "n1",
        term + 1,
        Body::Vote {
            last_index: 0,
            last_term: 0,
        },
    ));
    assert_eq!(core.role(), Role::Follower);
    assert_eq!(core.term(), term + 1);
}

#[test]
fn an_isolated_node_does_not_raise_its_term() {
    // Pre-vote keeps a node that hears nobody from bumping its term, so it
    // cannot depose a healthy leader when the partition heals.
    let state = HardState {
        term: 4,
        vote: None,
    };
    let mut core = Core::new(config("n1", &["n2", "n3"]), state, vec![]);
    for _ in 0..500 {
        core.tick();
        core.take_output();
    }
    assert_eq!(core.term(), 4);
    assert_ne!(core.role(), Role::Leader);
}

#[test]
fn minority_quorum_lets_an_isolated_node_of_three_lead_alone() {
    let mut config = config("n1", &["n2", "n3"]);
    config.bugs = Bugs::of(&[Bug::MinorityQuorum]);
    let mut core = Core::new(config, HardState::default(), vec![]);
    let led = (0..25).any(|_| {
        core.tick();
        core.role() == Role::Leader
    });
    assert!(led, "an isolated node with the bug never led");
}

#[test]
fn forget_vote_starts_from_term_zero_and_persists_no_vote() {
    let mut config = config("n1", &["n2", "n3"]);
    config.bugs = Bugs::of(&[Bug::ForgetVote]);
    let state = HardState {
        term: 7,
        vote: Some("n2".into()),
    };
    let mut core = Core::new(config, state, vec![]);
    assert_eq!(core.term(), 0);
    core.step(msg(
        "n3",
        "n1",
        8,
        Body::Vote {
            last_index: 0,
            last_term: 0,
        },
    ));
    let out = core.take_output();
    assert!(!out.iter().any(|o| matches!(o, Output::Persist(_))));
    assert_eq!(sent(&out), vec![&Body::VoteResp { granted: true }]);
}
