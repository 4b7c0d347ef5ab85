//! Evidence for a key that is not linearizable: a small history that is
//! still not linearizable and follows from the key's own, the operation that
//! could not be placed, and the states the model could be in just before it.
//!
//! Shrinking only weakens the history, with moves that keep a linearizable
//! history linearizable: a completed read is removed (it changes no state),
//! and a completed write, cas or append becomes unknown (it may take effect
//! at any point after its invocation, or never: the original order is still
//! one of the allowed ones). Operations of unknown outcome stay, except those
//! invoked after every completed operation (they can always go last). So the
//! weakened history is not linearizable only because the original is not,
//! and the operations it keeps complete are the core of the anomaly, read
//! against the unknown ones around them. Moves are tried on chunks halving
//! down to single operations until none succeeds; shrinking stops early at
//! its time or memory budget and says which. Undoing a move is sound too:
//! the last write before the stuck operation is put back as it completed
//! when that narrows the states before it.

use super::search::{search, Budget, KeyHistory, KeyOp, Outcome, Recorder, OPEN};
use super::Counterexample;
use crate::model::{ModelKind, States, Step};
use crate::op::{Op, OpType, Process};
use crate::pair::Operation;
use std::time::{Duration, Instant};

/// Bytes each search of the shrinking may use.
const SHRINK_MEMORY: usize = 4 << 20;
/// Most operations of unknown outcome a counterexample lists as context.
const CONTEXT: usize = 50;

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
    pub(crate) fn counterexample(
        &self,
        h: &KeyHistory,
        states: &mut States,
    ) -> Counterexample {
        let allowance =
            (self.spent * 20).clamp(Duration::from_secs(1), Duration::from_secs(4));
        let started = Instant::now();
        let mut deadline = started + allowance;
        if let Some(d) = self.budget.deadline {
            deadline = deadline.min(d);
        }
        let budget = Budget {
            deadline: Some(deadline),
            since: started,
            // Shrinking runs many small searches; a tight memory budget keeps
            // the process lean, and a search that exceeds it ends shrinking.
            memory: self.budget.memory.min(SHRINK_MEMORY),
            configurations: usize::MAX,
        };
        let (mut moved, mut stopped) = shrink(h, states, &budget);
        if stopped.is_some() && Instant::now() >= deadline {
            // The search's own figure is that of its last search.
            stopped = Some(format!(
                "its time budget of {:.1} s ran out",
                (deadline - started).as_secs_f64()
            ));
        }
        let mut small = weaken(h, &moved);
        let mut recorder = Recorder::default();
        // The weakened history is known not to be linearizable; this search
        // only records where it gets stuck, within a fresh allowance.
        let again = Budget {
            deadline: Some(Instant::now() + allowance)
                .min(self.budget.deadline.or(Some(deadline + allowance))),
            memory: budget.memory + states.bytes(),
            ..budget
        };
        search(&small, states, &again, Some(&mut recorder));
        if let Some(last) = recorder.stuck.and_then(|s| pin(h, &moved, small.ops[s])) {
            // Undoing a move keeps the history not linearizable (weakening
            // is monotone), and the last write before the stuck operation
            // narrows the states before it.
            moved[last] = false;
            small = weaken(h, &moved);
            recorder = Recorder::default();
            search(&small, states, &again, Some(&mut recorder));
        }
        let mut c = self.explain(&small, states, &recorder, stopped);
        c.omitted += h.ops.len() - small.ops.len();
        c
    }

    /// The history entries (invocation and completion) of `ops`, in order.
    fn entries<'o>(&self, ops: impl Iterator<Item = &'o KeyOp>) -> Vec<Op> {
        let mut positions: Vec<usize> = Vec::new();
        for op in ops {
            let operation = &self.operations[op.source as usize];
            positions.push(operation.invoke);
            positions.extend(operation.complete.or_else(|| self.info_entry(operation)));
        }
        positions.sort_unstable();
        positions.iter().map(|&p| self.history[p].clone()).collect()
    }

    fn explain(
        &self,
        h: &KeyHistory,
        states: &States,
        r: &Recorder,
        stopped: Option<String>,
    ) -> Counterexample {
        let ops = self.entries(h.ops.iter().filter(|op| op.complete != OPEN));
        let seen: &[u32] = match r.stuck {
            Some(stuck) => r.states.get(stuck).map_or(&[], |s| s.as_slice()),
            None => &[],
        };
        let (context, omitted) = self.context(h, seen, r.stuck);
        let Some(stuck) = r.stuck else {
            return Counterexample {
                ops,
                context,
                stuck: Vec::new(),
                states: Vec::new(),
                explanation: "no order of these operations is legal".into(),
                omitted,
            };
        };
        let stuck_op = &h.ops[stuck];
        let operation = &self.operations[stuck_op.source as usize];
        let mut explanation = self.sentence(h, stuck_op, operation, seen, states);
        if let Some(reason) = stopped {
            explanation +=
                &format!(" (shrinking stopped: {reason}; this set may not be minimal)");
        }
        Counterexample {
            ops,
            context,
            stuck: vec![self.history[operation.invoke].index],
            states: sorted(seen.iter().map(|&s| states.to_json(s)).collect()),
            explanation,
            omitted,
        }
    }

    /// The entries of at most [`CONTEXT`] operations of unknown outcome in
    /// `h`, and how many more there are: first those that write one of the
    /// states `seen`, then those invoked closest before the stuck operation
    /// completed.
    fn context(
        &self,
        h: &KeyHistory,
        seen: &[u32],
        stuck: Option<usize>,
    ) -> (Vec<Op>, usize) {
        let end = stuck.map_or(u32::MAX, |s| h.ops[s].complete);
        let mut open: Vec<&KeyOp> =
            h.ops.iter().filter(|op| op.complete == OPEN).collect();
        let rank = |op: &KeyOp| {
            let writes_seen = match op.step {
                Step::Write(v) | Step::Cas(_, v) => seen.contains(&v),
                _ => false,
            };
            let distance = if op.invoke < end {
                end - op.invoke
            } else {
                u32::MAX
            };
            (!writes_seen, distance)
        };
        open.sort_by_key(|op| rank(op));
        let omitted = open.len().saturating_sub(CONTEXT);
        open.truncate(CONTEXT);
        (self.entries(open.into_iter()), omitted)
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

    /// The last two operations of `h` that change the state and completed
    /// (and were not weakened) before `op` was invoked, as `f input`.
    fn before(&self, h: &KeyHistory, op: &KeyOp) -> Vec<String> {
        let mut done: Vec<&KeyOp> = h
            .ops
            .iter()
            .filter(|o| o.complete < op.invoke && !matches!(o.step, Step::Read(_)))
            .collect();
        done.sort_by_key(|o| o.complete);
        let last = &done[done.len().saturating_sub(2)..];
        last.iter()
            .map(|o| {
                let operation = &self.operations[o.source as usize];
                let input = short(&operation.input.to_string());
                format!("{} {input}", operation.f)
            })
            .collect()
    }

    fn sentence(
        &self,
        h: &KeyHistory,
        op: &KeyOp,
        operation: &Operation,
        seen: &[u32],
        states: &States,
    ) -> String {
        let thing = match states.kind() {
            ModelKind::Kv => "string",
            _ => "register",
        };
        let place = self.key.map_or(String::new(), |k| format!(" of key {k}"));
        let to = self.key.map_or(String::new(), |k| format!(" to key {k}"));
        let could = if seen.is_empty() {
            format!("no state of the {thing} allows it at that point")
        } else {
            let list: Vec<String> = seen.iter().map(|&s| show(states, s)).collect();
            format!(
                "the {thing} could only be {} at that point",
                list.join(" or ")
            )
        };
        let could = match self.before(h, op).as_slice() {
            [] => could,
            done => format!("after {} completed {could}", done.join(" and ")),
        };
        let f = &operation.f;
        match op.step {
            Step::Read(v) => {
                format!("{f}{place} returned {}, but {could}", show(states, v))
            }
            Step::Cas(from, to) if op.complete != OPEN => format!(
                "cas{place} from {} to {} succeeded, but {could}",
                show(states, from),
                show(states, to)
            ),
            _ => format!(
                "{f} of {}{to} completed, but every order of the operations \
                 around it breaks the model; just before it {could}",
                short(&operation.input.to_string())
            ),
        }
    }
}

/// A state or value as the explanation shows it.
fn show(states: &States, id: u32) -> String {
    short(&match states.kind() {
        ModelKind::Kv => format!("{:?}", states.text(id)),
        _ => states.text(id).to_string(),
    })
}

/// Longest value an explanation quotes in full.
const SHOWN: usize = 60;

/// `text`, cut short with `…` past [`SHOWN`] characters.
fn short(text: &str) -> String {
    if text.chars().count() <= SHOWN {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(SHOWN - 1).collect();
    cut.push('…');
    cut
}

/// States in a stable order, as their JSON text sorts.
fn sorted(mut states: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    states.sort_by_cached_key(|s| s.to_string());
    states
}

/// `h` with the moves of shrinking made: each operation marked in `moved`
/// is removed if it is a read and becomes unknown otherwise. Reads of
/// unknown outcome go too, and unknown operations invoked after every
/// completed one (they can always take effect last, or never).
fn weaken(h: &KeyHistory, moved: &[bool]) -> KeyHistory {
    let ops: Vec<KeyOp> = h
        .ops
        .iter()
        .zip(moved)
        .filter_map(|(op, &moved)| match op.step {
            Step::Read(_) if moved || op.complete == OPEN => None,
            _ if moved => Some(KeyOp {
                complete: OPEN,
                ..*op
            }),
            _ => Some(*op),
        })
        .collect();
    let last = ops
        .iter()
        .filter(|op| op.complete != OPEN)
        .map(|op| op.complete)
        .max();
    let ops = ops
        .into_iter()
        .filter(|op| op.complete != OPEN || last.is_some_and(|l| op.invoke < l))
        .collect();
    KeyHistory {
        ops,
        initial: h.initial,
    }
}

/// The weakened operation of `h` that completed last before `stuck` was
/// invoked, if it completed after every operation kept complete that
/// changes the state: kept as it completed, it pins the state before `stuck`.
fn pin(h: &KeyHistory, moved: &[bool], stuck: KeyOp) -> Option<usize> {
    let writes = |i: &usize| {
        let op = h.ops[*i];
        op.complete < stuck.invoke && !matches!(op.step, Step::Read(_))
    };
    let last = (0..h.ops.len())
        .filter(|i| moved[*i] && writes(i))
        .max_by_key(|&i| h.ops[i].complete)?;
    let kept = (0..h.ops.len())
        .filter(|i| !moved[*i] && writes(i))
        .map(|i| h.ops[i].complete)
        .max();
    kept.is_none_or(|k| k < h.ops[last].complete)
        .then_some(last)
}

/// The moves of shrinking (see [`weaken`]) that leave `h` not linearizable,
/// greedily until no single further move does, and why shrinking stopped
/// early, if it did.
fn shrink(
    h: &KeyHistory,
    states: &mut States,
    budget: &Budget,
) -> (Vec<bool>, Option<String>) {
    let mut moved = vec![false; h.ops.len()];
    // Each search gets its own memory on top of the states interned so far.
    let try_moves = |candidate: &[bool], states: &mut States| {
        let fresh = Budget {
            memory: budget.memory + states.bytes(),
            ..*budget
        };
        search(&weaken(h, candidate), states, &fresh, None)
    };

    // Operations invoked after the search got stuck rarely matter: try
    // weakening them all at once first. The recording search merges no
    // states, so it may run out where the others do not; it is only a hint.
    let mut recorder = Recorder::default();
    let fresh = Budget {
        memory: budget.memory + states.bytes(),
        ..*budget
    };
    let recorded = search(h, states, &fresh, Some(&mut recorder));
    if let Some(stuck) = recorder
        .stuck
        .filter(|_| recorded == Outcome::NotLinearizable)
    {
        let horizon = h.ops[stuck].complete;
        let candidate: Vec<bool> = h.ops.iter().map(|op| op.invoke > horizon).collect();
        if try_moves(&candidate, states) == Outcome::NotLinearizable {
            moved = candidate;
        }
    }
    let mut chunk = h.ops.len().div_ceil(2).max(1);
    loop {
        let mut moved_some = false;
        // Operations that a move still changes: completed ones not moved.
        let open: Vec<usize> = (0..h.ops.len())
            .filter(|&i| !moved[i] && h.ops[i].complete != OPEN)
            .collect();
        let mut end = open.len();
        while end > 0 {
            let start = end.saturating_sub(chunk);
            let mut candidate = moved.clone();
            for &i in &open[start..end] {
                candidate[i] = true;
            }
            match try_moves(&candidate, states) {
                Outcome::NotLinearizable => {
                    moved = candidate;
                    moved_some = true;
                }
                Outcome::Linearizable => {}
                Outcome::Unknown(reason) => return (moved, Some(reason)),
            }
            end = start;
        }
        if chunk == 1 && !moved_some {
            return (moved, None);
        }
        chunk = (chunk / 2).max(1);
    }
}
