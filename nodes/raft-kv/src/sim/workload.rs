//! What happens to a simulated cluster: client operations (reads, writes
//! with unique values, cas) and nemesis faults (partitions, heals, crashes
//! with restarts from disk, clock rate skew), all drawn from the seed.

use rand::Rng;

use super::check::ClientOp;
use super::{Event, Sim, TICK_MS};
use crate::core::Role;
use crate::kv::KvOp;

impl Sim {
    pub(super) fn invoke(&mut self) {
        let node = self.rng.gen_range(0..self.nodes.len());
        let key = format!("k{}", self.rng.gen_range(0..2));
        let op = match self.rng.gen_range(0..10) {
            0..=3 => KvOp::Read { key },
            4..=7 => {
                self.next_value += 1;
                KvOp::Write {
                    key,
                    value: self.next_value,
                }
            }
            _ => {
                self.next_value += 1;
                let from = self
                    .rng
                    .gen_range(1.max(self.next_value - 6)..self.next_value);
                KvOp::Cas {
                    key,
                    from,
                    to: self.next_value,
                }
            }
        };
        let token = self.history.len() as u64;
        self.history.push(ClientOp {
            node,
            op: op.clone(),
            invoked: self.now,
            completed: None,
        });
        if let Some(core) = self.nodes[node].core.as_mut() {
            core.request(token, op);
            self.drain(node);
        }
        // Clients stop shortly before the end so the quiet phase settles.
        if self.now + 300 < self.config.duration + self.config.quiet {
            self.schedule(self.config.op_every, Event::Invoke);
        }
    }

    pub(super) fn fault(&mut self) {
        let n = self.nodes.len();
        match self.rng.gen_range(0..10) {
            0..=2 => {
                // A random partition into two sides.
                for s in self.side.iter_mut() {
                    *s = 0;
                }
                let cut = self.rng.gen_range(1..n);
                for _ in 0..cut {
                    let i = self.rng.gen_range(0..n);
                    self.side[i] = 1;
                }
            }
            3 => {
                // Cut the leader off together with at most one follower.
                self.side.iter_mut().for_each(|s| *s = 0);
                if let Some(leader) = self.current_leader() {
                    self.side[leader] = 1;
                    if self.rng.gen_bool(0.5) {
                        self.side[(leader + 1) % n] = 1;
                    }
                }
            }
            4..=5 => self.side.iter_mut().for_each(|s| *s = 0),
            6..=7 => {
                let i = self.rng.gen_range(0..n);
                if self.nodes[i].core.take().is_some() {
                    self.nodes[i].epoch += 1;
                    let down = self.rng.gen_range(1..=300);
                    self.schedule(down, Event::Restart(i));
                }
            }
            _ => {
                // Clock rate skew: a node's clock runs 1x to 4x slow.
                let i = self.rng.gen_range(0..n);
                let slowdown = self.rng.gen_range(1..=self.config.max_slowdown.max(1));
                self.nodes[i].tick_ms = TICK_MS * slowdown;
            }
        }
    }

    pub(super) fn current_leader(&self) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(core) = &node.core {
                if core.role() == Role::Leader
                    && best.is_none_or(|(t, _)| core.term() > t)
                {
                    best = Some((core.term(), i));
                }
            }
        }
        best.map(|(_, i)| i)
    }
}
