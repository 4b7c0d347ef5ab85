//! The event list of the linearization search: calls and returns in
//! real-time order as a doubly linked list, from which placed operations are
//! lifted and to which they are put back in reverse order when the search
//! backtracks (Knuth's dancing links).

use super::search::{KeyOp, OPEN};

const NIL: u32 = u32::MAX;

/// The doubly linked list of events, with removal and reinsertion.
pub(crate) struct Events {
    pub next: Vec<u32>,
    prev: Vec<u32>,
    /// `op * 2` for a call, `op * 2 + 1` for a return.
    pub event: Vec<u32>,
    pub call: Vec<u32>,
    ret: Vec<u32>,
    pub head: u32,
}

impl Events {
    pub(crate) fn new(ops: &[KeyOp]) -> Events {
        let mut order: Vec<(u32, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.invoke, i as u32 * 2));
            if op.complete != OPEN {
                order.push((op.complete, i as u32 * 2 + 1));
            }
        }
        order.sort_unstable();
        let m = order.len() as u32;
        let mut events = Events {
            next: (1..=m).map(|i| if i == m { NIL } else { i }).collect(),
            prev: (0..m).map(|i| if i == 0 { m } else { i - 1 }).collect(),
            event: order.iter().map(|&(_, e)| e).collect(),
            call: vec![NIL; ops.len()],
            ret: vec![NIL; ops.len()],
            head: m,
        };
        events.next.push(if m == 0 { NIL } else { 0 });
        events.prev.push(NIL);
        for (node, &(_, e)) in order.iter().enumerate() {
            let slot = if e & 1 == 0 {
                &mut events.call
            } else {
                &mut events.ret
            };
            slot[(e >> 1) as usize] = node as u32;
        }
        events
    }

    fn unlink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        if n != NIL {
            self.prev[n as usize] = node;
        }
    }

    pub(crate) fn lift(&mut self, op: usize) {
        self.unlink(self.call[op]);
        if self.ret[op] != NIL {
            self.unlink(self.ret[op]);
        }
    }

    pub(crate) fn unlift(&mut self, op: usize) {
        if self.ret[op] != NIL {
            self.relink(self.ret[op]);
        }
        self.relink(self.call[op]);
    }
}
