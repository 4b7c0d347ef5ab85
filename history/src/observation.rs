//! What nodes report about themselves: their role and term.
//!
//! Observations are JSON Lines. The harness stamps `time` (nanoseconds since
//! the test started) when it reads the line, so that a node whose clock is
//! skewed cannot distort the order:
//!
//! ```json
//! {"time": 2130000000, "node": "n2", "term": 7, "role": "leader"}
//! {"time": 2140000000, "node": "n3", "term": 7, "role": "follower", "leader": "n2"}
//! ```
//!
//! A follower's `leader` is a hint of whom it believes leads, not evidence
//! that that node acted as leader.

use serde::{Deserialize, Serialize};

/// A Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
}

/// One report of a node's role in a term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Nanoseconds since the test started.
    pub time: u64,
    pub node: String,
    pub term: u64,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
}
