//! Seeded bugs: deliberate, realistic mistakes a harness must be able to
//! catch. Each is off by default and switched on with `--bug NAME`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::Error;

/// One deliberate mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// Every node answers reads from its own applied state, with neither a
    /// heartbeat round nor forwarding. Imitates "reads are cheap, serve them
    /// anywhere": a follower that is behind, or cut off from the leader,
    /// returns values the cluster has long overwritten, which breaks
    /// linearizability under partitions.
    StaleRead,
    /// The current term and vote live in memory only; a restarted node
    /// starts at term 0 with no vote. Imitates skipping the fsync of the
    /// "small" metadata file: a node that voted, crashed and restarted can
    /// vote again in the same term, so two leaders can win one term.
    ForgetVote,
    /// Elections (and pre-votes) count a quorum as `n / 2` instead of
    /// `n / 2 + 1`: one vote besides its own wins in a 5-node cluster, its
    /// own vote alone in a 3-node one. Imitates an off-by-one in the
    /// majority computation; both sides of a partition elect a leader in
    /// the same term.
    MinorityQuorum,
    /// The leader answers a write as soon as the entry is in its own log,
    /// before a majority stores it. Imitates acknowledging on local
    /// durability; a leader that is cut off or killed loses writes that
    /// clients were told had succeeded.
    AckBeforeCommit,
    /// The leader answers reads from local state while its lease holds,
    /// the lease being timed by its own clock from the last heartbeat round
    /// a majority acknowledged. Imitates leader leases without bounded
    /// clock drift: a leader whose clock runs slow keeps serving reads
    /// after a new leader took writes on the other side of a partition.
    LeaseRead,
    /// The election timeout is shorter than the heartbeat interval.
    /// Imitates swapped or mis-scaled timing options: followers give up on
    /// a healthy leader before it can speak, so elections never stop.
    EagerElection,
}

/// Every bug, for listing in help texts.
pub const ALL: [Bug; 6] = [
    Bug::StaleRead,
    Bug::ForgetVote,
    Bug::MinorityQuorum,
    Bug::AckBeforeCommit,
    Bug::LeaseRead,
    Bug::EagerElection,
];

impl Bug {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale-read",
            Bug::ForgetVote => "forget-vote",
            Bug::MinorityQuorum => "minority-quorum",
            Bug::AckBeforeCommit => "ack-before-commit",
            Bug::LeaseRead => "lease-read",
            Bug::EagerElection => "eager-election",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = Error;

    fn from_str(s: &str) -> Result<Bug, Error> {
        ALL.into_iter().find(|bug| bug.name() == s).ok_or_else(|| {
            let names: Vec<_> = ALL.iter().map(|b| b.name()).collect();
            Error::Config(format!(
                "unknown bug {s:?}, expected one of {}",
                names.join(", ")
            ))
        })
    }
}

/// The set of bugs switched on for one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bugs(BTreeSet<Bug>);

impl Bugs {
    /// No bugs.
    pub fn none() -> Bugs {
        Bugs::default()
    }

    /// Exactly these bugs.
    pub fn of(bugs: &[Bug]) -> Bugs {
        Bugs(bugs.iter().copied().collect())
    }

    /// Whether `bug` is switched on.
    pub fn has(&self, bug: Bug) -> bool {
        self.0.contains(&bug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_parses_from_its_name() {
        for bug in ALL {
            assert_eq!(bug.name().parse::<Bug>().unwrap(), bug);
        }
        let err = "no-such-bug".parse::<Bug>().unwrap_err().to_string();
        assert!(err.contains("expected one of stale-read"), "{err}");
    }
}
