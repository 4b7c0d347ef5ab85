//! Deterministic simulation of the Raft core: thousands of seeded random
//! schedules with partitions, loss, reordering, crashes and clock skew must
//! keep election safety, log matching, state-machine safety and
//! linearizable client results; each seeded bug must be caught.

use raft_kv::bugs::{Bug, Bugs};
use raft_kv::sim::check::Violation;
use raft_kv::sim::{run, Report, Sim, SimConfig};

const SCHEDULES: u64 = 2000;

/// Runs seeds `range` on two threads; returns the reports or the first
/// violation with its seed.
fn run_seeds(
    range: std::ops::Range<u64>,
    bugs: &[Bug],
) -> Result<Vec<Report>, (u64, Violation)> {
    let bugs = Bugs::of(bugs);
    let halves = [
        (range.start, range.start + (range.end - range.start) / 2),
        (range.start + (range.end - range.start) / 2, range.end),
    ];
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = halves
            .iter()
            .map(|&(lo, hi)| {
                let bugs = bugs.clone();
                scope.spawn(move || {
                    let mut reports = Vec::new();
                    for seed in lo..hi {
                        let config = SimConfig {
                            bugs: bugs.clone(),
                            ..SimConfig::new(seed)
                        };
                        match run(config) {
                            Ok(report) => reports.push(report),
                            Err(violation) => return Err((seed, violation)),
                        }
                    }
                    Ok(reports)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("simulation thread panicked"))
            .collect()
    });
    let mut all = Vec::new();
    for result in results {
        all.extend(result?);
    }
    Ok(all)
}

#[test]
fn safety_holds_over_thousands_of_faulty_schedules() {
    let reports = match run_seeds(0..SCHEDULES, &[]) {
        Ok(reports) => reports,
        Err((seed, violation)) => panic!("seed {seed}: {violation:?}"),
    };
    // The schedules must exercise the protocol, not just idle.
    let ok: usize = reports.iter().map(|r| r.ok).sum();
    let invoked: usize = reports.iter().map(|r| r.invoked).sum();
    let elections: u64 = reports.iter().map(|r| r.max_term).sum();
    assert!(
        ok * 3 > invoked,
        "only {ok} of {invoked} operations succeeded"
    );
    assert!(
        elections > SCHEDULES,
        "only {elections} terms over {SCHEDULES} schedules"
    );
    assert!(
        reports.iter().all(|r| r.committed > 0),
        "a schedule committed nothing"
    );
    let stuck = reports.iter().filter(|r| r.ok_when_quiet == 0).count();
    assert_eq!(stuck, 0, "{stuck} schedules served nothing once healed");
}

#[test]
fn a_seed_replays_identically() {
    let a = run(SimConfig::new(42)).unwrap();
    let b = run(SimConfig::new(42)).unwrap();
    assert_eq!(
        (a.ok, a.invoked, a.max_term, a.committed),
        (b.ok, b.invoked, b.max_term, b.committed)
    );
}

#[test]
fn a_fault_free_cluster_answers_every_operation() {
    let config = SimConfig {
        fault_every: 0,
        loss: 0.0,
        ..SimConfig::new(7)
    };
    let report = run(config).unwrap();
    assert_eq!(report.answered, report.invoked, "{report:?}");
    assert!(report.ok * 3 >= report.invoked * 2, "{report:?}");
    assert_eq!(report.max_term, 1, "{report:?}");
}

/// The first of the fixed seeds 0..400 on which the simulation catches
/// `bug`; panics if none does, or if the violation is not one of `expected`.
fn assert_caught(bug: Bug, expected: &[&str]) {
    for seed in 0..400 {
        let config = SimConfig {
            bugs: Bugs::of(&[bug]),
            ..SimConfig::new(seed)
        };
        if let Err(violation) = run(config) {
            assert!(
                expected.contains(&violation.property),
                "{bug} at seed {seed} broke {} ({}), expected one of {expected:?}",
                violation.property,
                violation.detail
            );
            return;
        }
    }
    panic!("no seed in 0..400 exposes {bug}");
}

#[test]
fn stale_read_is_caught_as_a_stale_read() {
    assert_caught(Bug::StaleRead, &["stale-read"]);
}

#[test]
fn forget_vote_is_caught_as_two_leaders_in_a_term() {
    assert_caught(
        Bug::ForgetVote,
        &["election-safety", "state-machine-safety"],
    );
}

#[test]
fn minority_quorum_is_caught_as_two_leaders_in_a_term() {
    assert_caught(
        Bug::MinorityQuorum,
        &["election-safety", "state-machine-safety"],
    );
}

#[test]
fn ack_before_commit_is_caught_as_a_lost_or_stale_write() {
    assert_caught(Bug::AckBeforeCommit, &["lost-write", "stale-read"]);
}

#[test]
fn lease_read_is_caught_as_a_stale_read() {
    assert_caught(Bug::LeaseRead, &["stale-read"]);
}

#[test]
fn lease_read_is_safe_without_clock_skew() {
    // The lease is shorter than any follower's election timeout, so only a
    // slow leader clock lets it outlive the leader's authority.
    for seed in 0..300 {
        let config = SimConfig {
            bugs: Bugs::of(&[Bug::LeaseRead]),
            max_slowdown: 1,
            ..SimConfig::new(seed)
        };
        if let Err(violation) = run(config) {
            panic!("seed {seed}: {violation:?}");
        }
    }
}

#[test]
fn a_node_returning_from_a_partition_does_not_depose_the_leader() {
    let config = SimConfig {
        fault_every: 0,
        loss: 0.0,
        duration: 20_000,
        nodes: 5,
        ..SimConfig::new(11)
    };
    let mut sim = Sim::new(config);
    sim.advance(1000).unwrap();
    let (leader, term) = sim.leader().expect("no leader after 1 s");
    let follower = (leader + 1) % 5;

    sim.partition(&[follower]);
    sim.advance(4000).unwrap();
    assert_eq!(
        sim.term(follower),
        Some(term),
        "the isolated node raised its term"
    );
    sim.heal();
    sim.advance(6000).unwrap();
    assert_eq!(sim.leader(), Some((leader, term)));
}

#[test]
fn a_partitioned_leader_is_replaced_and_rejoins_as_a_follower() {
    let config = SimConfig {
        fault_every: 0,
        loss: 0.0,
        duration: 20_000,
        nodes: 5,
        ..SimConfig::new(12)
    };
    let mut sim = Sim::new(config);
    sim.advance(1000).unwrap();
    let (leader, term) = sim.leader().expect("no leader after 1 s");

    sim.partition(&[leader]);
    sim.advance(3000).unwrap();
    let (next, next_term) = sim.leader().expect("the majority elected no leader");
    assert!(next != leader && next_term > term);
    sim.heal();
    sim.advance(5000).unwrap();
    assert_eq!(sim.leader(), Some((next, next_term)));
    assert_eq!(sim.term(leader), Some(next_term));
}
