//! The Raft consensus core: a deterministic state machine that does no IO.
//!
//! Ticks, peer messages and client requests go in; messages to send, disk
//! writes, client replies, role changes and applied entries come out as
//! [`Output`]s, drained with [`Core::take_output`]. Whoever drives the core
//! must carry out the outputs of one call in this order: first every
//! [`Output::Persist`] (made durable, fsynced), then everything else. That
//! is what makes "persist before answering" hold: nothing a peer or client
//! can see leaves before the state it depends on is on disk.
//!
//! The algorithm is the one of the extended Raft paper (Ongaro and
//! Ousterhout, 2014), with pre-vote and check-quorum from Ongaro's thesis
//! (section 9.6) so that an isolated node cannot disrupt the cluster when it
//! comes back, and ReadIndex reads (thesis section 6.4): a read is answered
//! once a heartbeat round sent after it arrived was acknowledged by a
//! majority and the state machine has caught up with the commit index seen
//! at arrival.
//!
//! # Limits
//! No snapshots or log compaction, no membership changes, no client
//! session table (a retried write may apply twice).

mod client;
mod election;
mod log;
mod message;
mod replication;

use std::collections::{BTreeMap, HashMap, VecDeque};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tracing::info;

use crate::bugs::{Bug, Bugs};
use crate::kv::{Kv, KvOp, Reply};
use crate::NodeId;

pub use log::RaftLog;
pub use message::{Body, Entry, HardState, Message};

/// A role in the Raft protocol; a pre-candidate is reported as follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Asks for pre-votes before starting an election.
    PreCandidate,
    /// Asks for votes in its term.
    Candidate,
    /// Leads its term.
    Leader,
}

impl Role {
    /// The name used in observation lines.
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower | Role::PreCandidate => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// A write the driver must make durable before anything else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Persist {
    /// Replace the stored term and vote.
    HardState(HardState),
    /// Remove entries from this index on.
    Truncate { from: u64 },
    /// Append entries after the last stored one.
    Append(Vec<Entry>),
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make this durable first.
    Persist(Persist),
    /// Send this message to `message.to`.
    Send(Message),
    /// Answer the client request the driver numbered `token`.
    Reply { token: u64, reply: Reply },
    /// The role, term or known leader changed.
    Role {
        term: u64,
        role: Role,
        leader: Option<NodeId>,
    },
    /// An entry was applied to the state machine.
    Applied {
        index: u64,
        term: u64,
        digest: String,
    },
}

/// Static settings of one node.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// Every other node of the cluster.
    pub peers: Vec<NodeId>,
    /// Election timeout range in ticks, both ends included.
    pub election_ticks: (u64, u64),
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u64,
    /// Seeded bugs switched on.
    pub bugs: Bugs,
    /// Seed for the election timeout randomization.
    pub seed: u64,
}

/// Who is waiting for an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    Local(u64),
    Remote(NodeId, u64),
}

/// What the leader knows about one follower.
#[derive(Clone, Debug, Default)]
struct Progress {
    next: u64,
    matched: u64,
    probing: bool,
    acked_seq: u64,
    active: bool,
}

/// A read waiting for its heartbeat round and for the state machine.
#[derive(Clone, Debug)]
struct PendingRead {
    seq: u64,
    index: u64,
    key: String,
    origin: Origin,
}

/// The consensus state of one node.
pub struct Core {
    config: Config,
    rng: SmallRng,
    term: u64,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    commit: u64,
    applied: u64,
    kv: Kv,
    /// Ticks of this node's own clock since it started.
    ticks: u64,
    election_elapsed: u64,
    election_timeout: u64,
    heartbeat_elapsed: u64,
    votes: Vec<NodeId>,
    progress: HashMap<NodeId, Progress>,
    seq: u64,
    seq_sent: VecDeque<(u64, u64)>,
    pending_writes: BTreeMap<u64, (u64, Origin)>,
    pending_reads: Vec<PendingRead>,
    waiting_reads: Vec<(String, Origin)>,
    broadcast_pending: bool,
    reported: (u64, Role, Option<NodeId>),
    out: Vec<Output>,
}

impl Core {
    /// A node recovering from `state` and `entries` (empty on first start).
    pub fn new(mut config: Config, state: HardState, entries: Vec<Entry>) -> Core {
        if config.bugs.has(Bug::EagerElection) {
            let hb = config.heartbeat_ticks.max(2);
            config.election_ticks = ((hb * 2 / 5).max(1), (hb * 4 / 5).max(1));
        }
        let (lo, hi) = config.election_ticks;
        config.election_ticks = (lo.max(1), hi.max(lo.max(1)));
        let (term, vote) = if config.bugs.has(Bug::ForgetVote) {
            (0, None)
        } else {
            (state.term, state.vote)
        };
        let rng = SmallRng::seed_from_u64(config.seed);
        let mut core = Core {
            rng,
            term,
            vote,
            role: Role::Follower,
            leader: None,
            log: RaftLog::new(entries),
            commit: 0,
            applied: 0,
            kv: Kv::default(),
            ticks: 0,
            election_elapsed: 0,
            election_timeout: 0,
            heartbeat_elapsed: 0,
            votes: Vec::new(),
            progress: HashMap::new(),
            seq: 0,
            seq_sent: VecDeque::new(),
            pending_writes: BTreeMap::new(),
            pending_reads: Vec::new(),
            waiting_reads: Vec::new(),
            broadcast_pending: false,
            reported: (term, Role::Follower, None),
            out: Vec::new(),
            config,
        };
        core.reset_election_timer();
        core
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.config.id
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader this node knows of in its term.
    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }

    /// The highest index known to be committed.
    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    /// The log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// The state machine.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// Advances this node's clock by one tick.
    pub fn tick(&mut self) {
        self.ticks += 1;
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.election_elapsed += 1;
            if self.election_elapsed >= self.election_timeout {
                self.start_pre_vote();
            }
        }
        self.report_role();
    }

    /// Handles one message from a peer.
    pub fn step(&mut self, msg: Message) {
        if msg.to != self.config.id {
            return;
        }
        tracing::trace!(node = %self.config.id, ?msg, "receive");
        match msg.body {
            Body::Forward { token, op } => self.handle_forward(msg.from, token, op),
            Body::ForwardReply { token, reply } => {
                self.out.push(Output::Reply { token, reply })
            }
            _ => self.step_raft(msg),
        }
        self.report_role();
    }

    /// Handles a request of a client connected to this node.
    pub fn request(&mut self, token: u64, op: KvOp) {
        self.handle_request(Origin::Local(token), op, true);
        self.report_role();
    }

    /// Drains what the driver must do, persistence first in emission order.
    pub fn take_output(&mut self) -> Vec<Output> {
        if self.broadcast_pending {
            self.broadcast_pending = false;
            self.replicate_all();
        }
        std::mem::take(&mut self.out)
    }

    fn majority(&self) -> usize {
        let n = self.config.peers.len() + 1;
        n / 2 + 1
    }

    /// The number of votes that wins an election or a pre-vote.
    fn election_quorum(&self) -> usize {
        let n = self.config.peers.len() + 1;
        if self.config.bugs.has(Bug::MinorityQuorum) {
            (n / 2).max(1)
        } else {
            n / 2 + 1
        }
    }

    fn send(&mut self, to: &NodeId, body: Body) {
        let msg = Message {
            from: self.config.id.clone(),
            to: to.clone(),
            term: self.term,
            body,
        };
        self.out.push(Output::Send(msg));
    }

    fn persist_hard_state(&mut self) {
        if self.config.bugs.has(Bug::ForgetVote) {
            return;
        }
        let state = HardState {
            term: self.term,
            vote: self.vote.clone(),
        };
        self.out.push(Output::Persist(Persist::HardState(state)));
    }

    fn reset_election_timer(&mut self) {
        use rand::Rng;
        let (lo, hi) = self.config.election_ticks;
        self.election_elapsed = 0;
        self.election_timeout = self.rng.gen_range(lo..=hi);
    }

    pub(super) fn report_role(&mut self) {
        let now = (self.term, self.role, self.leader.clone());
        let shown = |r: &(u64, Role, Option<NodeId>)| (r.0, r.1.name(), r.2.clone());
        if shown(&now) == shown(&self.reported) {
            return;
        }
        info!(
            node = %self.config.id,
            term = self.term,
            role = self.role.name(),
            leader = self.leader.as_deref().unwrap_or("-"),
            "role changed"
        );
        self.out.push(Output::Role {
            term: self.term,
            role: self.role,
            leader: self.leader.clone(),
        });
        self.reported = now;
    }
}

/// A short stable digest of an applied entry, for observation lines:
/// FNV-1a over the entry's term, index and operation, folded to 32 bits.
pub fn digest(entry: &Entry) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&entry.term.to_le_bytes());
    eat(&entry.index.to_le_bytes());
    match &entry.op {
        None => eat(b"noop"),
        Some(KvOp::Read { key }) => {
            eat(b"read");
            eat(key.as_bytes());
        }
        Some(KvOp::Write { key, value }) => {
            eat(b"write");
            eat(key.as_bytes());
            eat(&value.to_le_bytes());
        }
        Some(KvOp::Cas { key, from, to }) => {
            eat(b"cas");
            eat(key.as_bytes());
            eat(&from.to_le_bytes());
            eat(&to.to_le_bytes());
        }
    }
    format!("{:08x}", (hash ^ (hash >> 32)) as u32)
}

#[cfg(test)]
mod tests;
