//! Log replication: AppendEntries with the consistency check and conflict
//! truncation, pipelined sending, commitment by majority, and applying.

use super::{digest, Body, Core, Entry, Output, Persist, Role};
use crate::kv::{ErrorKind, Reply};

/// The most entries one AppendEntries carries.
const MAX_BATCH: usize = 512;

/// How many heartbeat rounds the leader remembers the send time of.
const SEQ_MEMORY: usize = 4096;

impl Core {
    /// Appends an entry of the leader's own term to its log and disk.
    pub(super) fn append_own(&mut self, entry: Entry) {
        self.log.push(entry.clone());
        self.out.push(Output::Persist(Persist::Append(vec![entry])));
        self.broadcast_pending = true;
    }

    /// Starts a heartbeat round: every follower gets an AppendEntries
    /// stamped with a new `seq`.
    pub(super) fn broadcast_heartbeat(&mut self) {
        self.seq += 1;
        self.seq_sent.push_back((self.seq, self.ticks));
        if self.seq_sent.len() > SEQ_MEMORY {
            self.seq_sent.pop_front();
        }
        for peer in self.config.peers.clone() {
            self.send_append(&peer, true);
        }
        self.broadcast_pending = false;
        self.check_reads();
    }

    /// Sends new entries to every follower that is not being probed.
    pub(super) fn replicate_all(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        for peer in self.config.peers.clone() {
            let ready = self
                .progress
                .get(&peer)
                .is_some_and(|p| !p.probing && p.next <= last);
            if ready {
                self.send_append(&peer, false);
            }
        }
    }

    fn send_append(&mut self, peer: &String, even_empty: bool) {
        let Some(progress) = self.progress.get(peer) else {
            return;
        };
        let (next, probing) = (progress.next, progress.probing);
        let entries = self.log.slice(next, if probing { 1 } else { MAX_BATCH });
        if entries.is_empty() && !even_empty {
            return;
        }
        let prev_index = next - 1;
        let prev_term = self.log.term_at(prev_index).unwrap_or(0);
        if !probing {
            if let Some(last) = entries.last() {
                let last = last.index;
                if let Some(p) = self.progress.get_mut(peer) {
                    p.next = last + 1;
                }
            }
        }
        let body = Body::Append {
            prev_index,
            prev_term,
            entries,
            commit: self.commit,
            seq: self.seq,
        };
        self.send(peer, body);
    }

    pub(super) fn handle_append(
        &mut self,
        from: String,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
        seq: u64,
    ) {
        if self.role != Role::Follower || self.leader.as_ref() != Some(&from) {
            self.become_follower(self.term, Some(from.clone()));
        }
        self.election_elapsed = 0;

        // The consistency check: our log must hold the entry before these.
        if self.log.term_at(prev_index) != Some(prev_term) {
            let hint = if prev_index > self.log.last_index() {
                self.log.last_index()
            } else {
                let first = self.log.first_index_of_term_at(prev_index);
                first.saturating_sub(1).max(self.commit.min(prev_index - 1))
            };
            let body = Body::AppendResp {
                success: false,
                index: hint,
                seq,
            };
            self.send(&from, body);
            return;
        }

        // Skip entries we already hold; truncate at the first conflict.
        let last_new = prev_index + entries.len() as u64;
        let mut fresh = Vec::new();
        for entry in entries {
            match self.log.term_at(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    self.log.truncate(entry.index);
                    let from = entry.index;
                    self.out.push(Output::Persist(Persist::Truncate { from }));
                }
                None => {}
            }
            self.log.push(entry.clone());
            fresh.push(entry);
        }
        if !fresh.is_empty() {
            self.out.push(Output::Persist(Persist::Append(fresh)));
        }

        let new_commit = commit.min(last_new);
        if new_commit > self.commit {
            self.commit = new_commit;
            self.apply_committed();
        }
        let body = Body::AppendResp {
            success: true,
            index: last_new,
            seq,
        };
        self.send(&from, body);
    }

    pub(super) fn handle_append_resp(
        &mut self,
        from: String,
        success: bool,
        index: u64,
        seq: u64,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        let Some(progress) = self.progress.get_mut(&from) else {
            return;
        };
        progress.active = true;
        progress.acked_seq = progress.acked_seq.max(seq);
        if success {
            if index > progress.matched {
                progress.matched = index;
            }
            progress.next = progress.next.max(progress.matched + 1);
            progress.probing = false;
            let behind = progress.next <= last;
            self.maybe_commit();
            if behind {
                self.send_append(&from, false);
            }
        } else {
            let retry = (index + 1).max(progress.matched + 1);
            if retry < progress.next || progress.probing {
                progress.next = retry.min(progress.next).max(progress.matched + 1);
                progress.probing = true;
                self.send_append(&from, true);
            }
        }
        self.check_reads();
    }

    /// Commits the highest index a majority stores, if it is of this term
    /// (entries of earlier terms are committed only through it, 5.4.2).
    pub(super) fn maybe_commit(&mut self) {
        let mut matched: Vec<u64> = self.progress.values().map(|p| p.matched).collect();
        matched.push(self.log.last_index());
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matched[self.majority() - 1];
        if candidate > self.commit && self.log.term_at(candidate) == Some(self.term) {
            self.commit = candidate;
            self.apply_committed();
            let waiting = std::mem::take(&mut self.waiting_reads);
            for (key, origin) in waiting {
                self.start_read(key, origin);
            }
        }
    }

    /// Applies committed entries in order and answers their clients.
    pub(super) fn apply_committed(&mut self) {
        while self.applied < self.commit {
            self.applied += 1;
            let Some(entry) = self.log.get(self.applied).cloned() else {
                break;
            };
            let reply = match &entry.op {
                Some(op) => self.kv.apply(op),
                None => Reply::Done,
            };
            tracing::trace!(node = %self.config.id, index = entry.index, "apply");
            self.out.push(Output::Applied {
                index: entry.index,
                term: entry.term,
                digest: digest(&entry),
            });
            if let Some((term, origin)) = self.pending_writes.remove(&entry.index) {
                let reply = if term == entry.term {
                    reply
                } else {
                    Reply::failed(ErrorKind::LeaderChanged, true)
                };
                self.answer(origin, reply);
            }
        }
        self.check_reads();
    }
}
