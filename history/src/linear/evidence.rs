//! Evidence for a key that is not linearizable: a minimal set of its
//! operations that is still not linearizable, the operation that could not be
//! placed, and the states the model could be in just before it.
//!
//! Shrinking relaxes operations rather than deleting them: a relaxed read is
//! dropped, a relaxed write, cas, put or append becomes unknown (free to take
//! effect at any time after its invocation, or never). Deleting a write would
//! leave any read of its value impossible on its own, which explains
//! nothing. Shrinking relaxes chunks of operations, halving the chunk size
//! down to single operations, and keeps a relaxation whenever the history is
//! still not linearizable; single steps repeat until none succeeds. The
//! operations left strict are the counterexample: they are not linearizable
//! by themselves (a relaxed operation only adds freedom), and relaxing any
//! one of them makes the key linearizable. Shrinking stops at a time budget.

use super::search::{search, Budget, KeyHistory, KeyOp, Outcome, Recorder, OPEN};
use super::Counterexample;
use crate::model::{ModelKind, States, Step};
use crate::op::{Op, OpType, Process};
use crate::pair::Operation;
use std::time::{Duration, Instant};

/// Bytes each search of the shrinking may use.
const SHRINK_MEMORY: usize = 4 << 20;

/// What shrinking needs to know about the key and the whole check.
pub(crate) struct Shrink<'a> {
    pub key: Option<&'a str>,
    pub history: &'a [Op],
    pub operations: &'a [Operation],
    pub budget: &'a Budget,
    /// Time the first search took; shrinking gets a multiple of it.
    pub spent: Duration,
}

impl Shrink<'_> {
    /// Shrinks a key history that is not linearizable and explains it.
    pub(crate) fn counterexample(&self, h: &KeyHistory, states: &mut States) -> Counterexample {
        let allowance = (self.spent * 20).clamp(Duration::from_millis(100), Duration::from_secs(2));
        let mut deadline = Instant::now() + allowance;
        if let Some(d) = self.budget.deadline {
            deadline = deadline.min(d);
        }
        let budget = Budget {
            deadline: Some(deadline),
            // Shrinking runs many small searches; a tight memory budget keeps
            // the process lean, and a search that exceeds it ends shrinking.
            memory: self.budget.memory.min(SHRINK_MEMORY),
            configurations: usize::MAX,
        };
        let (core, minimal) = shrink(h, states, &budget);
        let small = relaxed(h, &core);
        let mut recorder = Recorder::default();
        // The set is known not to be linearizable; this search only
        // records where it gets stuck, within a fresh allowance.
        let again = Budget {
            deadline: Some(Instant::now() + allowance)
                .min(self.budget.deadline.or(Some(deadline + allowance))),
            ..budget
        };
        search(&small, states, &again, Some(&mut recorder));
        self.explain(&small, states, &recorder, minimal)
    }

    fn explain(
        &self,
        h: &KeyHistory,
        states: &States,
        r: &Recorder,
        minimal: bool,
    ) -> Counterexample {
        let mut positions: Vec<usize> = Vec::new();
        for op in h.ops.iter().filter(|op| op.complete != OPEN) {
            let operation = &self.operations[op.source as usize];
            positions.push(operation.invoke);
            positions.extend(operation.complete.or_else(|| self.info_entry(operation)));
        }
        positions.sort_unstable();
        let ops = positions.iter().map(|&p| self.history[p].clone()).collect();

        let Some(stuck) = r.stuck else {
            return Counterexample {
                ops,
                stuck: Vec::new(),
                states: Vec::new(),
                explanation: "no order of these operations is legal".into(),
            };
        };
        let seen: &[u32] = r.states.get(stuck).map_or(&[], |s| s.as_slice());
        let stuck_op = &h.ops[stuck];
        let operation = &self.operations[stuck_op.source as usize];
        let mut explanation = self.sentence(stuck_op, operation, seen, states);
        if !minimal {
            explanation +=
                " (shrinking stopped at its time budget, so this set may not be minimal)";
        }
        Counterexample {
            ops,
            stuck: vec![self.history[operation.invoke].index],
            states: seen.iter().map(|&s| states.to_json(s)).collect(),
            explanation,
        }
    }

    /// The `info` completion of an operation whose outcome is unknown, if
    /// the history has one.
    fn info_entry(&self, operation: &Operation) -> Option<usize> {
        let process = Process::Client(operation.process);
        (operation.invoke + 1..self.history.len()).find(|&p| {
            let op = &self.history[p];
            op.process == process && op.kind != OpType::Invoke
        })
    }

    fn sentence(&self, op: &KeyOp, operation: &Operation, seen: &[u32], states: &States) -> String {
        let (thing, place) = match (states.kind(), self.key) {
            (ModelKind::Kv, Some(k)) => ("string", format!(" of {k}")),
            (ModelKind::Kv, None) => ("string", String::new()),
            (_, Some(k)) => ("register", format!(" of {k}")),
            (_, None) => ("register", String::new()),
        };
        let could = if seen.is_empty() {
            format!("no state of the {thing} allows it at that point")
        } else {
            let list: Vec<String> = seen.iter().map(|&s| show(states, s)).collect();
            format!(
                "the {thing} could only be {} at that point",
                list.join(" or ")
            )
        };
        let f = &operation.f;
        match op.step {
            Step::Read(v) => format!("{f}{place} returned {} but {could}", show(states, v)),
            Step::Cas(from, to) if op.complete != OPEN => format!(
                "cas{place} from {} to {} succeeded but {could}",
                show(states, from),
                show(states, to)
            ),
            _ => format!(
                "{f}{place} of {} completed, but every order of the operations \
                 around it breaks the model; just before it {could}",
                operation.input
            ),
        }
    }
}

/// A state or value as the explanation shows it.
fn show(states: &States, id: u32) -> String {
    match states.kind() {
        ModelKind::Kv => format!("{:?}", states.text(id)),
        _ => states.text(id).to_string(),
    }
}

/// The operations of `h` with those not in `core` relaxed: reads dropped,
/// the others made unknown (free to take effect at any time after their
/// invocation, or never).
fn relaxed(h: &KeyHistory, core: &[bool]) -> KeyHistory {
    let ops = h
        .ops
        .iter()
        .zip(core)
        .filter_map(|(op, &strict)| match (strict, op.step) {
            (true, _) => Some(*op),
            (false, Step::Read(_)) => None,
            (false, _) => Some(KeyOp {
                complete: OPEN,
                ..*op
            }),
        });
    KeyHistory {
        ops: ops.collect(),
        initial: h.initial,
    }
}

/// The core of strict operations (the others relaxed), and whether
/// shrinking finished: relaxing any one more makes the key linearizable.
fn shrink(h: &KeyHistory, states: &mut States, budget: &Budget) -> (Vec<bool>, bool) {
    let mut core = vec![true; h.ops.len()];

    // Operations invoked after the search got stuck rarely matter: try
    // relaxing them all at once first.
    let mut recorder = Recorder::default();
    if search(h, states, budget, Some(&mut recorder)) != Outcome::NotLinearizable {
        return (core, false);
    }
    if let Some(stuck) = recorder.stuck {
        let horizon = h.ops[stuck].complete;
        let candidate: Vec<bool> = h.ops.iter().map(|op| op.invoke < horizon).collect();
        if search(&relaxed(h, &candidate), states, budget, None) == Outcome::NotLinearizable {
            core = candidate;
        }
    }
    let mut chunk = h.ops.len().div_ceil(2).max(1);
    loop {
        let mut relaxed_some = false;
        let strict: Vec<usize> = (0..core.len()).filter(|&i| core[i]).collect();
        let mut end = strict.len();
        while end > 0 {
            let start = end.saturating_sub(chunk);
            let mut candidate = core.clone();
            for &i in &strict[start..end] {
                candidate[i] = false;
            }
            match search(&relaxed(h, &candidate), states, budget, None) {
                Outcome::NotLinearizable => {
                    core = candidate;
                    relaxed_some = true;
                }
                Outcome::Linearizable => {}
                Outcome::Unknown(_) => return (core, false),
            }
            end = start;
        }
        if chunk == 1 && !relaxed_some {
            return (core, true);
        }
        chunk = (chunk / 2).max(1);
    }
}
