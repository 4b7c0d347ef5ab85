//! What nodes exchange and store: log entries, the term-and-vote state,
//! and the messages of the protocol (with pre-vote and forwarding).

use serde::{Deserialize, Serialize};

use crate::kv::{KvOp, Reply};
use crate::NodeId;

/// One log entry; `op` is `None` for the no-op a new leader appends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: u64,
    /// The entry's position in the log, from 1.
    pub index: u64,
    /// The client operation, or `None` for a leader's no-op.
    pub op: Option<KvOp>,
}

/// The state that must survive a crash besides the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: u64,
    /// Whom this node voted for in `term`.
    pub vote: Option<NodeId>,
}

/// A message between two nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would take).
    pub term: u64,
    /// What the message says.
    pub body: Body,
}

/// The kinds of message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Would you vote for me in `term`? Changes no state at the receiver.
    PreVote { last_index: u64, last_term: u64 },
    /// Answer to a pre-vote.
    PreVoteResp { granted: bool },
    /// RequestVote.
    Vote { last_index: u64, last_term: u64 },
    /// Answer to RequestVote.
    VoteResp { granted: bool },
    /// AppendEntries; `seq` numbers the leader's heartbeat rounds.
    Append {
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
        seq: u64,
    },
    /// Answer to AppendEntries: on success `index` is the last index
    /// known to match, on failure a hint where to retry from.
    AppendResp { success: bool, index: u64, seq: u64 },
    /// A client request a follower hands to the leader it knows.
    Forward { token: u64, op: KvOp },
    /// The leader's answer to a forwarded request.
    ForwardReply { token: u64, reply: Reply },
}
