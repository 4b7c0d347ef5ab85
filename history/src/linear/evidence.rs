//! Evidence for a key that is not linearizable: a minimal set of its
//! operations that is still not linearizable, the operation that could not be
//! placed, and the states the model could be in just before it.
//!
//! Shrinking removes operations, in chunks halving down to single
//! operations, and keeps a removal whenever what is left is still not
//! linearizable. Every candidate explains itself: a read or cas that
//! observed a value only removed operations could have written goes too
//! (a read of a value no operation of the key wrote stays: it is the
//! anomaly). So the core reads like a classic anomaly, a stale read or a
//! get no order of the appends can produce, and the states before the stuck
//! operation are those of the core alone. Single steps repeat until none
//! succeeds; shrinking stops early at its time or memory budget and says
//! which.

use super::search::{search, Budget, KeyHistory, KeyOp, Outcome, Recorder, OPEN};
use super::Counterexample;
use crate::model::{ModelKind, States, Step};
use crate::op::{Op, OpType, Process};
use crate::pair::Operation;
use std::collections::HashSet;
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
        let (core, mut stopped) = shrink(h, states, &budget);
        if stopped.is_some() && Instant::now() >= deadline {
            // The search's own figure is that of its last search.
            stopped = Some(format!(
                "its time budget of {:.1} s ran out",
                (deadline - started).as_secs_f64()
            ));
        }
        let small = subset(h, &core);
        let mut recorder = Recorder::default();
        // The core is known not to be linearizable; this search only
        // records where it gets stuck, within a fresh allowance.
        let again = Budget {
            deadline: Some(Instant::now() + allowance)
                .min(self.budget.deadline.or(Some(deadline + allowance))),
            memory: budget.memory + states.bytes(),
            ..budget
        };
        search(&small, states, &again, Some(&mut recorder));
        let mut c = self.explain(&small, states, &recorder, stopped);
        c.omitted = h.ops.len() - small.ops.len();
        c
    }

    fn explain(
        &self,
        h: &KeyHistory,
        states: &States,
        r: &Recorder,
        stopped: Option<String>,
    ) -> Counterexample {
        let mut positions: Vec<usize> = Vec::new();
        for op in &h.ops {
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
                omitted: 0,
            };
        };
        let seen: &[u32] = r.states.get(stuck).map_or(&[], |s| s.as_slice());
        let stuck_op = &h.ops[stuck];
        let operation = &self.operations[stuck_op.source as usize];
        let mut explanation = self.sentence(stuck_op, operation, seen, states);
        if let Some(reason) = stopped {
            explanation +=
                &format!(" (shrinking stopped: {reason}; this set may not be minimal)");
        }
        Counterexample {
            ops,
            stuck: vec![self.history[operation.invoke].index],
            states: sorted(seen.iter().map(|&s| states.to_json(s)).collect()),
            explanation,
            omitted: 0,
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

    fn sentence(
        &self,
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
        let f = &operation.f;
        match op.step {
            Step::Read(v) => {
                format!("{f}{place} returned {} but {could}", show(states, v))
            }
            Step::Cas(from, to) if op.complete != OPEN => format!(
                "cas{place} from {} to {} succeeded but {could}",
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

/// The operations of `h` in `core`; the others are removed.
fn subset(h: &KeyHistory, core: &[bool]) -> KeyHistory {
    let ops = h.ops.iter().zip(core).filter(|(_, &kept)| kept);
    KeyHistory {
        ops: ops.map(|(op, _)| *op).collect(),
        initial: h.initial,
    }
}

/// Which values a set of operations can explain: the initial state, what
/// its writes and cas write and, for kv, those followed by its appends.
struct Writers {
    kv: bool,
    values: HashSet<u32>,
    pieces: HashSet<u32>,
    /// The lengths of the pieces' texts, each once.
    lengths: Vec<usize>,
}

impl Writers {
    fn of(h: &KeyHistory, kept: &[bool], kv: bool) -> Writers {
        let mut w = Writers {
            kv,
            values: [h.initial].into(),
            pieces: HashSet::new(),
            lengths: Vec::new(),
        };
        for (op, _) in h.ops.iter().zip(kept).filter(|(_, &k)| k) {
            match op.step {
                Step::Write(v) | Step::Cas(_, v) => {
                    w.values.insert(v);
                }
                Step::Append(v) => {
                    w.pieces.insert(v);
                }
                Step::Read(_) => {}
            }
        }
        w
    }

    /// Ready for [`Writers::explain`]: the lengths of the pieces.
    fn measured(mut self, states: &States) -> Writers {
        let mut lengths: Vec<usize> =
            self.pieces.iter().map(|&p| states.text(p).len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        lengths.retain(|&l| l > 0);
        self.lengths = lengths;
        self
    }

    /// Whether `value` is a written value or, for kv, one followed by
    /// appended pieces.
    fn explain(&self, value: u32, states: &States) -> bool {
        if self.values.contains(&value) {
            return true;
        }
        if !self.kv {
            return false;
        }
        let text = states.text(value);
        // reach[i]: text[..i] is a written value followed by pieces.
        let mut reach = vec![false; text.len() + 1];
        for &v in &self.values {
            let t = states.text(v);
            if text.starts_with(t) {
                reach[t.len()] = true;
            }
        }
        for i in 0..text.len() {
            if !reach[i] {
                continue;
            }
            for &l in &self.lengths {
                let piece = text.get(i..i + l).and_then(|p| states.id(p));
                if piece.is_some_and(|p| self.pieces.contains(&p)) {
                    reach[i + l] = true;
                }
            }
        }
        reach[text.len()]
    }
}

/// The value an operation observes: what a read returned, what a cas
/// found.
fn observed(step: Step) -> Option<u32> {
    match step {
        Step::Read(v) | Step::Cas(v, _) => Some(v),
        _ => None,
    }
}

/// Makes `kept` explain itself: drops every read and cas that observed a
/// value the kept operations cannot have written, unless no operation of
/// the key can (then the observation is the anomaly itself).
fn close(h: &KeyHistory, kept: &mut [bool], whole: &Writers, states: &States) {
    loop {
        let writers = Writers::of(h, kept, whole.kv).measured(states);
        let mut dropped = false;
        for (i, op) in h.ops.iter().enumerate() {
            let Some(v) = observed(op.step).filter(|_| kept[i]) else {
                continue;
            };
            if !writers.explain(v, states) && whole.explain(v, states) {
                kept[i] = false;
                dropped = true;
            }
        }
        if !dropped {
            return;
        }
    }
}

/// The core (a subset of the operations that explains itself and is not
/// linearizable), and why shrinking stopped early, if it did: removing any
/// one more operation (with what only it explained) makes the core
/// linearizable.
fn shrink(
    h: &KeyHistory,
    states: &mut States,
    budget: &Budget,
) -> (Vec<bool>, Option<String>) {
    let kv = states.kind() == ModelKind::Kv;
    let all = vec![true; h.ops.len()];
    let whole = Writers::of(h, &all, kv).measured(states);
    let mut core = all;
    // Each search gets its own memory on top of the states interned so far.
    let try_core = |candidate: &[bool], states: &mut States| {
        let fresh = Budget {
            memory: budget.memory + states.bytes(),
            ..*budget
        };
        search(&subset(h, candidate), states, &fresh, None)
    };

    // Operations invoked after the search got stuck rarely matter: try
    // removing them all at once first. The recording search merges no
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
        let mut candidate: Vec<bool> =
            h.ops.iter().map(|op| op.invoke < horizon).collect();
        close(h, &mut candidate, &whole, states);
        if try_core(&candidate, states) == Outcome::NotLinearizable {
            core = candidate;
        }
    }
    let mut chunk = h.ops.len().div_ceil(2).max(1);
    loop {
        let mut removed_some = false;
        let kept: Vec<usize> = (0..core.len()).filter(|&i| core[i]).collect();
        let mut end = kept.len();
        while end > 0 {
            let start = end.saturating_sub(chunk);
            let mut candidate = core.clone();
            for &i in &kept[start..end] {
                candidate[i] = false;
            }
            close(h, &mut candidate, &whole, states);
            match try_core(&candidate, states) {
                Outcome::NotLinearizable => {
                    core = candidate;
                    removed_some = true;
                }
                Outcome::Linearizable => {}
                Outcome::Unknown(reason) => return (core, Some(reason)),
            }
            end = start;
        }
        if chunk == 1 && !removed_some {
            return (core, None);
        }
        chunk = (chunk / 2).max(1);
    }
}
