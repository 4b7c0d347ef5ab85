//! The linearization search of one key: Wing and Gong's algorithm with
//! Lowe's just-in-time linearization and memo, made iterative.
//!
//! The history of a key is a list of call and return events in real-time
//! order. The search walks the list from its head: at a call it tries to
//! linearize the operation (apply it to the model state); if that is legal
//! and the resulting configuration (set of linearized operations, state) has
//! not been seen, it takes the operation out of the list and starts again at
//! the head. Reaching a return means that operation can no longer be placed:
//! the search undoes its last choice and tries the next call after it. The
//! history is linearizable when every completed operation is placed;
//! operations with unknown outcome have no return event and may stay out.
//!
//! Reductions keep the search small; each keeps it exact (a solution
//! exists after the reduction whenever one existed before), and the oracle
//! tests check them against brute force:
//!
//! * Reads first. A read that is legal at a call has no effect, and every
//!   operation that completed before it was invoked is already placed, so any
//!   solution can be rearranged to place the read right now. The search
//!   never tries alternatives to placing it: undoing a read undoes the
//!   choice before it too.
//! * Twins. Of two operations with the same effect where the first was
//!   invoked no later and completed no later, some solution places the first
//!   one first (swapping them keeps every real-time constraint). So an
//!   operation is only tried once its earlier twin is placed.
//! * Unobservable states. A state that no unplaced operation can observe
//!   (no read of it, no cas from it; for kv, no get that returned it followed
//!   by more) behaves like every other such state: reads and cas fail on it,
//!   appends keep it unobservable, writes replace it. All of them become one
//!   state, [`UNSEEN`], so the memo merges them.
//! * Useless unknowns. An unknown operation is never placed where its
//!   effect would change nothing or be unobservable: leaving it out keeps a
//!   state that allows at least as much, and the operation for later.
//! * Prefixes (kv, see [`reduce`](super::reduce)). Before an unplaced get,
//!   the string only grows by appends unless a put intervenes, so the current
//!   string must start what the get returned, unless a put that could come
//!   first does.
//! * Dominance (in the memo, see `memo.rs`). Placing an unknown operation
//!   only takes an option away, so a configuration fails if a failed one had
//!   the same state and completed operations and fewer unknown ones placed.
//! * Growing prefixes. When the whole history is slow to search, [`decide`]
//!   also searches its prefixes, doubling in length: one that is not
//!   linearizable settles the key (see [`before`]).

use super::events::Events;
use super::memo::{zobrist_key, Memo, MemoFull, Seen};
use super::reduce::{Observers, Prefixes};
use crate::model::{States, Step, UNSEEN};
use std::time::{Duration, Instant};

/// Completion position of an operation whose outcome is unknown.
pub(crate) const OPEN: u32 = u32::MAX;
const NIL: u32 = u32::MAX;

/// One operation of a key, as the search sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyOp {
    /// History position of the invocation.
    pub invoke: u32,
    /// History position of the completion, or [`OPEN`].
    pub complete: u32,
    pub step: Step,
    /// Index of the operation in the paired history.
    pub source: u32,
}

/// The operations of one key in invocation order, and the initial state.
#[derive(Debug, Clone)]
pub(crate) struct KeyHistory {
    pub ops: Vec<KeyOp>,
    pub initial: u32,
}

/// Limits of one search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub deadline: Option<Instant>,
    /// When the clock of the deadline started: the time a reason reports
    /// is counted from here, not from the start of one search.
    pub since: Instant,
    /// Bytes for the memo and the interned states.
    pub memory: usize,
    /// Gives up (as unknown) after this many configurations.
    pub configurations: usize,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Linearizable,
    NotLinearizable,
    /// The budget ran out; the reason says which.
    Unknown(String),
}

/// Where the search got stuck, for the evidence: for each operation the
/// states in which its completion was reached before it could be placed.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub deepest: usize,
    /// The operation stuck in the deepest configuration.
    pub stuck: Option<usize>,
    pub states: Vec<Vec<u32>>,
    /// Whether the stuck operation is a read.
    observes: bool,
}

impl Recorder {
    /// The completion of `op` was reached at `depth` in `state`. At equal
    /// depth an observation (a read) explains better than a write, so it
    /// wins.
    fn hit(&mut self, op: usize, state: u32, depth: usize, observes: bool) {
        if self.states.len() <= op {
            self.states.resize(op + 1, Vec::new());
        }
        let seen = &mut self.states[op];
        if !seen.contains(&state) && seen.len() < 16 {
            seen.push(state);
        }
        let better = depth == self.deepest && observes && !self.observes;
        if self.stuck.is_none() || depth > self.deepest || better {
            self.deepest = depth;
            self.stuck = Some(op);
            self.observes = observes;
        }
    }
}

/// One choice of the search, to undo.
struct Frame {
    /// The operation placed.
    op: u32,
    /// The state before it.
    previous: u32,
    /// A read placed as soon as it could be: undoing it undoes the choice
    /// before it too.
    forced: bool,
    /// The configuration it led to, in the memo.
    entry: u32,
}

/// The hash of a configuration from the Zobrist hash of its bitset.
pub(crate) fn config_hash(zobrist: u64, state: u32) -> u64 {
    let s = u64::from(state)
        .wrapping_add(1)
        .wrapping_mul(0xd6e8_feb8_6659_fd93);
    zobrist ^ s ^ (s >> 32)
}

/// For each operation, its earlier twin (see the module doc), or [`NIL`].
fn twins(ops: &[KeyOp]) -> Vec<u32> {
    let mut last: std::collections::HashMap<Step, Vec<usize>> = Default::default();
    let mut twin = vec![NIL; ops.len()];
    for (i, op) in ops.iter().enumerate() {
        let earlier = last.entry(op.step).or_default();
        // Looking a bounded way back keeps this linear; a missed twin only
        // prunes less.
        if let Some(&j) = earlier
            .iter()
            .rev()
            .take(64)
            .find(|&&j| ops[j].complete <= op.complete)
        {
            twin[i] = j as u32;
        }
        earlier.push(i);
    }
    twin
}

/// Decides whether one key's history is linearizable.
pub(crate) fn search(
    h: &KeyHistory,
    states: &mut States,
    budget: &Budget,
    mut recorder: Option<&mut Recorder>,
) -> Outcome {
    let ops = &h.ops;
    let n = ops.len();
    let mut remaining = ops.iter().filter(|op| op.complete != OPEN).count();
    if remaining == 0 {
        return Outcome::Linearizable;
    }
    let mut events = Events::new(ops);
    let twin = twins(ops);
    let mut observers = Observers::default();
    // Evidence wants the real states, so recording searches do not merge
    // the unobservable ones.
    let abstracting = recorder.is_none();
    // Nor do they prune by prefix: the evidence should show the get that
    // could not be served, not the append that was pruned before it.
    let prefix = Prefixes::new(ops, states.kind(), states, abstracting);
    let words = n.div_ceil(64);
    let mut certain = vec![0u64; words];
    for (i, op) in ops.iter().enumerate() {
        if op.complete != OPEN {
            certain[i / 64] |= 1 << (i % 64);
        }
    }
    let mut memo = Memo::new(certain, budget.memory.saturating_sub(states.bytes()));
    let mut bits = vec![0u64; words];
    let mut zobrist = 0u64;
    // Unknown operations do not enter the hash, so that configurations that
    // differ only in them meet in the memo (see `Memo::insert`).
    let zkey: Vec<u64> = (0..n)
        .map(|i| {
            if ops[i].complete == OPEN {
                0
            } else {
                zobrist_key(i)
            }
        })
        .collect();
    let mut stack: Vec<Frame> = Vec::with_capacity(n);
    let mut state = h.initial;
    let mut node = events.next[events.head as usize];
    let mut steps = 0u64;

    loop {
        steps += 1;
        if steps & 1023 == 0 {
            if let Some(reason) = over_budget(budget, &memo, states) {
                return Outcome::Unknown(reason);
            }
        }

        // Find the next choice, or learn that this configuration fails.
        let mut fails = node == NIL;
        if !fails {
            let e = events.event[node as usize];
            let i = (e >> 1) as usize;
            if e & 1 == 1 {
                if let Some(r) = recorder.as_deref_mut() {
                    r.hit(i, state, stack.len(), matches!(ops[i].step, Step::Read(_)));
                }
                fails = true;
            } else if twin[i] == NIL || has(&bits, twin[i] as usize) {
                let op = &ops[i];
                let next = states.step(state, op.step);
                // Appends make new strings: count them before the next
                // periodic check, since each may be long.
                if matches!(op.step, Step::Append(_))
                    && memo.bytes() + states.bytes() > budget.memory
                {
                    return Outcome::Unknown(memory_reason(budget, &memo));
                }
                let next = next.filter(|&s| prefix.allows(ops, &bits, i, s, states));
                if let Some(mut next) = next {
                    bits[i / 64] ^= 1 << (i % 64);
                    zobrist ^= zkey[i];
                    if abstracting
                        && next != state
                        && !observers.observed(next, &bits, ops, states)
                    {
                        next = UNSEEN;
                    }
                    let useless = next == state || (abstracting && next == UNSEEN);
                    if useless && op.complete == OPEN {
                        // Dominated: leaving the unknown operation out keeps
                        // the same state, or one that allows more, and every
                        // option placing it would have.
                        bits[i / 64] ^= 1 << (i % 64);
                        zobrist ^= zkey[i];
                        node = events.next[node as usize];
                        continue;
                    }
                    match memo.insert(&bits, next, config_hash(zobrist, next)) {
                        Err(MemoFull) => {
                            return Outcome::Unknown(memory_reason(budget, &memo));
                        }
                        Ok(Seen::New(entry)) => {
                            stack.push(Frame {
                                op: i as u32,
                                previous: state,
                                forced: matches!(op.step, Step::Read(_)),
                                entry,
                            });
                            state = next;
                            events.lift(i);
                            if op.complete != OPEN {
                                remaining -= 1;
                                if remaining == 0 {
                                    return Outcome::Linearizable;
                                }
                            }
                            node = events.next[events.head as usize];
                            continue;
                        }
                        Ok(Seen::Before) => {
                            bits[i / 64] ^= 1 << (i % 64);
                            zobrist ^= zkey[i];
                            fails = matches!(op.step, Step::Read(_));
                        }
                    }
                }
            }
            if !fails {
                node = events.next[node as usize];
                continue;
            }
        }

        // Undo choices up to the last one that has an alternative.
        loop {
            let Some(frame) = stack.pop() else {
                return Outcome::NotLinearizable;
            };
            // Everything after this choice failed.
            memo.fail(frame.entry);
            let (i, previous, forced) = (frame.op as usize, frame.previous, frame.forced);
            events.unlift(i);
            bits[i / 64] ^= 1 << (i % 64);
            zobrist ^= zkey[i];
            state = previous;
            if ops[i].complete != OPEN {
                remaining += 1;
            }
            if !forced {
                node = events.next[events.call[i] as usize];
                break;
            }
        }
    }
}

pub(crate) fn has(bits: &[u64], i: usize) -> bool {
    bits[i / 64] >> (i % 64) & 1 == 1
}

fn over_budget(budget: &Budget, memo: &Memo, states: &States) -> Option<String> {
    if budget.deadline.is_some_and(|d| Instant::now() >= d) {
        return Some(format!(
            "time limit reached after {} and {} configurations",
            human_duration(budget.since.elapsed()),
            memo.len()
        ));
    }
    if memo.len() > budget.configurations {
        return Some(format!("gave up after {} configurations", memo.len()));
    }
    (memo.bytes() + states.bytes() > budget.memory).then(|| memory_reason(budget, memo))
}

fn memory_reason(budget: &Budget, memo: &Memo) -> String {
    format!(
        "memory limit of {} MiB reached after {} configurations",
        budget.memory >> 20,
        memo.len()
    )
}

fn human_duration(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The history as it stood just before position `end`: operations invoked
/// later are gone, and those still open then have an unknown outcome (reads
/// dropped, others free to take effect or not). If this is not linearizable,
/// neither is the whole: a linearization of the whole, restricted to these
/// operations, would be one of the prefix.
pub(crate) fn before(h: &KeyHistory, end: u32) -> KeyHistory {
    let ops = h.ops.iter().filter(|op| op.invoke < end).filter_map(|op| {
        if op.complete < end {
            Some(*op)
        } else if matches!(op.step, Step::Read(_)) {
            None
        } else {
            Some(KeyOp {
                complete: OPEN,
                ..*op
            })
        }
    });
    KeyHistory {
        ops: ops.collect(),
        initial: h.initial,
    }
}

/// Decides a key, and returns the history the verdict is about: when the
/// search of the whole is slow, growing prefixes are searched too, because a
/// prefix that is not linearizable settles the key and is much smaller.
pub(crate) fn decide(
    h: &KeyHistory,
    states: &mut States,
    budget: &Budget,
) -> (Outcome, Option<KeyHistory>) {
    let quick = Budget {
        configurations: 100_000,
        ..*budget
    };
    match search(h, states, &quick, None) {
        Outcome::Unknown(_) if budget.deadline.is_none_or(|d| Instant::now() < d) => {}
        outcome => return (outcome, None),
    }
    let mut k = 32;
    while k < h.ops.len() {
        let prefix = before(h, h.ops[k].invoke);
        match search(&prefix, states, budget, None) {
            Outcome::Linearizable => k *= 2,
            Outcome::NotLinearizable => return (Outcome::NotLinearizable, Some(prefix)),
            unknown => return (unknown, None),
        }
    }
    (search(h, states, budget, None), None)
}
