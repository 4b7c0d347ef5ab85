//! Elections: pre-vote, RequestVote, term changes, stepping up and down,
//! and the leader's check-quorum.

use super::{Body, Core, Entry, Message, Progress, Role};
use crate::kv::{ErrorKind, Reply};

impl Core {
    /// Routes a Raft message after the term rules of the paper (5.1).
    pub(super) fn step_raft(&mut self, msg: Message) {
        let is_pre_vote = matches!(msg.body, Body::PreVote { .. });
        let is_granted_pre_vote = matches!(msg.body, Body::PreVoteResp { granted: true });
        if msg.term > self.term && !is_pre_vote && !is_granted_pre_vote {
            let leader = match msg.body {
                Body::Append { .. } => Some(msg.from.clone()),
                _ => None,
            };
            self.become_follower(msg.term, leader);
        }
        if msg.term < self.term && !is_pre_vote {
            // A stale leader learns of the newer term from the rejection.
            if let Body::Append { .. } = msg.body {
                let body = Body::AppendResp {
                    success: false,
                    index: 0,
                    seq: 0,
                };
                self.send(&msg.from, body);
            }
            return;
        }
        match msg.body {
            Body::PreVote {
                last_index,
                last_term,
            } => self.handle_pre_vote(msg.from, msg.term, last_index, last_term),
            Body::PreVoteResp { granted } => {
                self.handle_pre_vote_resp(msg.from, msg.term, granted)
            }
            Body::Vote {
                last_index,
                last_term,
            } => self.handle_vote(msg.from, last_index, last_term),
            Body::VoteResp { granted } => self.handle_vote_resp(msg.from, granted),
            Body::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                seq,
            } => {
                self.handle_append(msg.from, prev_index, prev_term, entries, commit, seq)
            }
            Body::AppendResp {
                success,
                index,
                seq,
            } => self.handle_append_resp(msg.from, success, index, seq),
            Body::Forward { .. } | Body::ForwardReply { .. } => {}
        }
    }

    pub(super) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }

        // Check-quorum: a leader that has not heard from a majority for an
        // election timeout steps down, so it stops holding clients.
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config.election_ticks.0 {
            self.election_elapsed = 0;
            let active = 1 + self.progress.values().filter(|p| p.active).count();
            for progress in self.progress.values_mut() {
                progress.active = false;
            }
            if active < self.majority() {
                tracing::info!(node = %self.config.id, term = self.term,
                    "lost contact with a majority, stepping down");
                self.become_follower(self.term, None);
            }
        }
    }

    pub(super) fn start_pre_vote(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes = vec![self.config.id.clone()];
        self.reset_election_timer();
        tracing::debug!(node = %self.config.id, term = self.term, "pre-vote");
        if self.votes.len() >= self.election_quorum() {
            self.start_election();
            return;
        }
        let body = Body::PreVote {
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        let term = self.term + 1;
        for peer in self.config.peers.clone() {
            let msg = Message {
                from: self.config.id.clone(),
                to: peer,
                term,
                body: body.clone(),
            };
            self.out.push(super::Output::Send(msg));
        }
    }

    fn start_election(&mut self) {
        self.term += 1;
        self.vote = Some(self.config.id.clone());
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = vec![self.config.id.clone()];
        self.persist_hard_state();
        self.report_role();
        self.reset_election_timer();
        if self.votes.len() >= self.election_quorum() {
            self.become_leader();
            return;
        }
        let body = Body::Vote {
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        for peer in self.config.peers.clone() {
            self.send(&peer, body.clone());
        }
    }

    fn handle_pre_vote(&mut self, from: String, term: u64, index: u64, last_term: u64) {
        // A node that hears from a live leader refuses, so that a node
        // coming back from a partition cannot depose it.
        let leader_alive = self.role == Role::Leader
            || (self.leader.is_some()
                && self.election_elapsed < self.config.election_ticks.0);
        let granted =
            term > self.term && !leader_alive && self.log.is_up_to_date(index, last_term);
        let msg = Message {
            from: self.config.id.clone(),
            to: from,
            term: if granted { term } else { self.term },
            body: Body::PreVoteResp { granted },
        };
        self.out.push(super::Output::Send(msg));
    }

    fn handle_pre_vote_resp(&mut self, from: String, term: u64, granted: bool) {
        if self.role != Role::PreCandidate || !granted || term != self.term + 1 {
            return;
        }
        if !self.votes.contains(&from) {
            self.votes.push(from);
        }
        if self.votes.len() >= self.election_quorum() {
            self.start_election();
        }
    }

    fn handle_vote(&mut self, from: String, last_index: u64, last_term: u64) {
        let free = self.vote.is_none() || self.vote.as_ref() == Some(&from);
        let granted = free
            && self.role != Role::Leader
            && self.log.is_up_to_date(last_index, last_term);
        if granted {
            self.vote = Some(from.clone());
            self.persist_hard_state();
            self.reset_election_timer();
        }
        self.send(&from, Body::VoteResp { granted });
    }

    fn handle_vote_resp(&mut self, from: String, granted: bool) {
        if self.role != Role::Candidate || !granted {
            return;
        }
        if !self.votes.contains(&from) {
            self.votes.push(from);
        }
        if self.votes.len() >= self.election_quorum() {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.config.id.clone());
        self.report_role();
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        let next = self.log.last_index() + 1;
        self.progress = self
            .config
            .peers
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    Progress {
                        next,
                        ..Progress::default()
                    },
                )
            })
            .collect();

        // The no-op lets the leader commit entries of earlier terms and
        // tells it when its commit index is current (for reads).
        self.append_own(Entry {
            term: self.term,
            index: next,
            op: None,
        });
        self.broadcast_heartbeat();
        self.maybe_commit();
    }

    /// Becomes a follower in `term`; answers everyone waiting on a leader.
    pub(super) fn become_follower(&mut self, term: u64, leader: Option<String>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.persist_hard_state();
        }
        if self.role == Role::Leader {
            self.fail_pending();
        }
        if self.role != Role::Follower || self.leader != leader {
            self.reset_election_timer();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.progress.clear();
        self.report_role();
    }

    fn fail_pending(&mut self) {
        for (_, (_, origin)) in std::mem::take(&mut self.pending_writes) {
            self.answer(origin, Reply::failed(ErrorKind::LeaderChanged, false));
        }
        let reads = std::mem::take(&mut self.pending_reads);
        for read in reads {
            self.answer(read.origin, Reply::failed(ErrorKind::LeaderChanged, true));
        }
        for (_, origin) in std::mem::take(&mut self.waiting_reads) {
            self.answer(origin, Reply::failed(ErrorKind::LeaderChanged, true));
        }
    }
}
