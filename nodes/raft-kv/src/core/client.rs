//! Client requests: proposing writes, ReadIndex reads, forwarding to the
//! leader over the peer links, and answering.

use super::{Body, Core, Entry, Origin, Output, PendingRead, Role};
use crate::bugs::Bug;
use crate::kv::{KvOp, Reply};
use crate::NodeId;

impl Core {
    /// Serves, forwards or refuses one request. A request that was
    /// forwarded once is not forwarded again.
    pub(super) fn handle_request(&mut self, origin: Origin, op: KvOp, may_forward: bool) {
        if let KvOp::Read { key } = &op {
            if self.config.bugs.has(Bug::StaleRead) {
                let value = self.kv.get(key);
                self.answer(origin, Reply::Value(value));
                return;
            }
        }
        if self.role != Role::Leader {
            match (&self.leader, &origin, may_forward) {
                (Some(leader), Origin::Local(token), true) => {
                    let (leader, token) = (leader.clone(), *token);
                    self.send(&leader, Body::Forward { token, op });
                }
                _ => self.answer(origin, Reply::not_leader(self.leader.clone())),
            }
            return;
        }
        match op {
            KvOp::Read { key } => self.start_read(key, origin),
            op => self.propose(op, origin),
        }
    }

    pub(super) fn handle_forward(&mut self, from: NodeId, token: u64, op: KvOp) {
        self.handle_request(Origin::Remote(from, token), op, false);
    }

    fn propose(&mut self, op: KvOp, origin: Origin) {
        let index = self.log.last_index() + 1;
        let ack_early = self.config.bugs.has(Bug::AckBeforeCommit)
            && matches!(op, KvOp::Write { .. });
        let entry = Entry {
            term: self.term,
            index,
            op: Some(op),
        };
        self.append_own(entry);
        if ack_early {
            self.answer(origin, Reply::Done);
        } else {
            self.pending_writes.insert(index, (self.term, origin));
        }
        self.maybe_commit();
    }

    /// Starts a ReadIndex read, or parks it until this leader has committed
    /// an entry of its own term (before that its commit index may be stale).
    pub(super) fn start_read(&mut self, key: String, origin: Origin) {
        if self.log.term_at(self.commit) != Some(self.term) {
            self.waiting_reads.push((key, origin));
            return;
        }
        if self.config.bugs.has(Bug::LeaseRead) && self.lease_holds() {
            let value = self.kv.get(&key);
            self.answer(origin, Reply::Value(value));
            return;
        }
        self.pending_reads.push(PendingRead {
            seq: self.seq + 1,
            index: self.commit,
            key,
            origin,
        });
        self.broadcast_heartbeat();
    }

    /// The newest heartbeat round a majority (this node included) answered.
    fn quorum_seq(&self) -> u64 {
        let mut acked: Vec<u64> = self.progress.values().map(|p| p.acked_seq).collect();
        acked.push(self.seq);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        acked[self.majority() - 1]
    }

    /// Whether the lease from the last majority-acknowledged heartbeat
    /// round still holds by this node's own clock.
    fn lease_holds(&self) -> bool {
        let seq = self.quorum_seq();
        let sent = self
            .seq_sent
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, t)| *t);
        sent.is_some_and(|t| self.ticks < t + self.config.election_ticks.0)
    }

    /// Answers the reads whose round is acknowledged and whose index is
    /// applied.
    pub(super) fn check_reads(&mut self) {
        if self.pending_reads.is_empty() || self.role != Role::Leader {
            return;
        }
        let acked = self.quorum_seq();
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_reads)
            .into_iter()
            .partition(|r| r.seq <= acked && r.index <= applied);
        self.pending_reads = waiting;
        for read in ready {
            let value = self.kv.get(&read.key);
            self.answer(read.origin, Reply::Value(value));
        }
    }

    /// Sends `reply` to whoever is waiting: a local client or a peer.
    pub(super) fn answer(&mut self, origin: Origin, reply: Reply) {
        match origin {
            Origin::Local(token) => self.out.push(Output::Reply { token, reply }),
            Origin::Remote(node, token) => {
                self.send(&node, Body::ForwardReply { token, reply })
            }
        }
    }
}
