//! The linearizability checker.
//!
//! [`check`] pairs the history's invocations with their completions, drops
//! the nemesis, splits the client operations by `key` (operations with no key
//! form one group) and decides each key on its own, on all cores. A history
//! is linearizable when every key is: the keys are independent registers or
//! strings, so this is exact (linearizability is compositional).
//!
//! Each key is decided by an exact search (`search.rs`): Wing and Gong's
//! search for a legal order that respects real-time order, with Lowe's
//! just-in-time linearization and a memo of visited configurations (bitset
//! of placed operations, interned state), iterative, within a time and
//! memory budget. Exact reductions keep it small: reads are placed as soon as
//! they can be, identical operations in a canonical order, states no
//! remaining operation can observe are merged into one, unknown operations
//! are not placed where they change nothing, a configuration is dropped when
//! a failed one differs only by having fewer unknown operations placed, and
//! for the kv model a string must start what the next gets return unless a
//! put can come first. When the whole key is slow, its growing prefixes are searched too;
//! a prefix that is not linearizable settles the key.
//!
//! When a key is not linearizable, [`check`] shrinks it (`evidence.rs`) by
//! moves that keep a linearizable history linearizable: a completed read is
//! removed, a completed write, cas or append becomes unknown (it may take
//! effect after its invocation, or never). What is left is still not
//! linearizable, so it is sound evidence: its completed operations are the
//! core of the anomaly and its unknown ones the context, and one more move
//! makes it linearizable (but for the last write before the stuck
//! operation, kept as it completed when shrinking weakened it, because it
//! pins the state there; undoing a move is always sound). It is reported with the operation that could not
//! be placed and the states the model could be in just before it, with the
//! context taken as unknown. [`decide`] skips this and gives verdicts only.
//!
//! # Limits
//!
//! * The search is exponential in the number of concurrent operations in
//!   the worst case. Past `time_limit` or `memory_limit` a key is `unknown`
//!   with the reason; the verdict is never a guess.
//! * The memo keeps, per configuration, the window of the bitset between
//!   the operations all placed and those none placed, so long keys with
//!   little concurrency stay linear in memory and time (a sequential cas
//!   register of 160 000 operations: 0.7 s, see the README). An unknown
//!   operation that is never placed keeps that window open from its
//!   invocation on, and refuting a long key means exhausting the ways the
//!   unknown operations still open before the violation could have taken
//!   effect: a simulated cas register with 20 000 operations (2% unknown)
//!   with one read changed was still unknown after a 60 s time limit.
//! * Shrinking a counterexample runs many searches; it stops at a time
//!   budget (20 times the first search, between 1 and 4 s per key) or a
//!   4 MiB memo per search, and then says which and that the set may not
//!   be minimal.
//! * Context operations invoked after every core operation completed are
//!   left out (they can always take effect last), and at most 50 are
//!   listed; `omitted` counts the rest.
//! * The search runs each key on one thread; a single huge key does not use
//!   the other cores.

mod events;
mod evidence;
mod memo;
mod reduce;
mod search;

use crate::model::{ModelKind, States};
use crate::op::{Op, OpType};
use crate::pair::{pair, Operation, PairError};
use crate::verdict::Verdict;
use search::{Budget, KeyHistory, KeyOp, Outcome, OPEN};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How to check a history.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub model: ModelKind,
    /// The initial state of every key; the model's default when `None`
    /// (`null` for registers, `""` for kv).
    pub initial: Option<Value>,
    /// Wall-clock budget for the whole check; keys not decided in time are
    /// `unknown`.
    pub time_limit: Option<Duration>,
    /// Bytes the searches may hold at once (memo and states), shared by the
    /// keys checked in parallel.
    pub memory_limit: usize,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            model: ModelKind::CasRegister,
            initial: None,
            time_limit: None,
            memory_limit: 4 << 30,
            threads: 0,
        }
    }
}

/// A history the checker cannot read as the model's operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Pair(#[from] PairError),
    /// An operation the model does not understand; `index` is that of the
    /// entry at fault, the invocation or the completion.
    #[error("operation {index}: {message}")]
    Model { index: u64, message: String },
    /// An initial state the model cannot start from.
    #[error("initial state: {0}")]
    Initial(String),
}

/// The checker's answer for a whole history.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct LinearReport {
    pub verdict: Verdict,
    pub model: String,
    pub keys: Vec<KeyReport>,
    /// Client operations in the history.
    pub operations: usize,
    pub elapsed_ms: f64,
}

/// The answer for one key.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct KeyReport {
    pub key: Option<String>,
    pub verdict: Verdict,
    /// Client operations on this key, failed ones included.
    pub operations: usize,
    pub elapsed_ms: f64,
    /// Why the verdict is unknown.
    pub reason: Option<String>,
    pub counterexample: Option<Counterexample>,
}

/// Evidence that a key is not linearizable.
///
/// It comes from the key's history by moves that keep a linearizable
/// history linearizable: completed reads removed, completed writes, cas and
/// appends made unknown. `ops` and `context` together, with the operations
/// of `context` taken as unknown (they may have taken effect or not), are
/// not linearizable; so neither is the key.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Counterexample {
    /// The history entries (invocation and completion, original indices) of
    /// the operations kept as they completed: the core of the anomaly.
    /// Making any one more of them unknown (or removing it, for a read)
    /// makes the history linearizable, but for the last write before the
    /// stuck operation, kept to pin the state there.
    pub ops: Vec<Op>,
    /// The history entries of the operations of unknown outcome that remain,
    /// weakened ones or unknown from the start, whatever their completion
    /// says: where the other possible states come from. At most 50 are
    /// listed, those that wrote a state of `states` first.
    #[serde(default)]
    pub context: Vec<Op>,
    /// `Op.index` of the invocation of the operation that could not be
    /// placed.
    pub stuck: Vec<u64>,
    /// The model states possible just before that operation, with the
    /// `context` operations taken as unknown.
    pub states: Vec<Value>,
    pub explanation: String,
    /// Operations of the key (failed ones and reads of unknown outcome
    /// aside) in neither `ops` nor `context`.
    #[serde(default)]
    pub omitted: usize,
}

/// Checks a history for linearizability against `opts.model`, with a
/// counterexample for every key that is not linearizable.
pub fn check(history: &[Op], opts: &CheckOptions) -> Result<LinearReport, CheckError> {
    run(history, opts, true)
}

/// Like [`check`] but without counterexamples: only the verdicts. This is
/// what other checkers such as Porcupine compute, and it is faster for
/// histories that are not linearizable.
pub fn decide(history: &[Op], opts: &CheckOptions) -> Result<LinearReport, CheckError> {
    run(history, opts, false)
}

fn run(
    history: &[Op],
    opts: &CheckOptions,
    evidence: bool,
) -> Result<LinearReport, CheckError> {
    let started = Instant::now();
    let deadline = opts.time_limit.map(|t| started + t);
    let operations = pair(history)?;
    let mut tasks = tasks(history, &operations, opts)?;

    let workers = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(tasks.len())
    .max(1);
    let budget = Budget {
        deadline,
        since: started,
        memory: opts.memory_limit / workers,
        configurations: usize::MAX,
    };

    // Largest keys first, so that one big key does not start last.
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&t| std::cmp::Reverse(tasks[t].history.ops.len()));
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<&mut Task>>> =
        tasks.iter_mut().map(|t| Mutex::new(Some(t))).collect();
    let reports: Vec<Mutex<Option<KeyReport>>> =
        slots.iter().map(|_| Mutex::new(None)).collect();
    let work = || loop {
        let at = next.fetch_add(1, Ordering::Relaxed);
        let Some(&t) = order.get(at) else { break };
        let task = slots[t]
            .lock()
            .unwrap()
            .take()
            .expect("each task runs once");
        let report = check_key(task, history, &operations, &budget, evidence);
        *reports[t].lock().unwrap() = Some(report);
    };
    if workers == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(work);
            }
        });
    }

    let keys: Vec<KeyReport> = reports
        .into_iter()
        .map(|r| r.into_inner().unwrap().expect("every task reports"))
        .collect();
    Ok(LinearReport {
        verdict: keys.iter().fold(Verdict::Valid, |v, k| v.and(k.verdict)),
        model: opts.model.to_string(),
        keys,
        operations: operations.len(),
        elapsed_ms: ms(started.elapsed()),
    })
}

/// One key to check.
struct Task {
    key: Option<String>,
    operations: usize,
    states: States,
    history: KeyHistory,
}

/// Splits the operations by key and compiles them for the model, in order
/// of first appearance of each key.
fn tasks(
    history: &[Op],
    operations: &[Operation],
    opts: &CheckOptions,
) -> Result<Vec<Task>, CheckError> {
    let mut tasks: Vec<Task> = Vec::new();
    let mut by_key: HashMap<Option<&str>, usize> = HashMap::new();
    for (source, op) in operations.iter().enumerate() {
        let t = *by_key
            .entry(op.key.as_deref())
            .or_insert_with(|| tasks.len());
        if t == tasks.len() {
            let mut states = States::new(opts.model);
            let initial = states
                .initial(opts.initial.as_ref())
                .map_err(CheckError::Initial)?;
            tasks.push(Task {
                key: op.key.clone(),
                operations: 0,
                states,
                history: KeyHistory {
                    ops: Vec::new(),
                    initial,
                },
            });
        }
        let task = &mut tasks[t];
        task.operations += 1;
        let step = task.states.compile(op).map_err(|e| {
            let at = match op.complete {
                Some(c) if e.completion => c,
                _ => op.invoke,
            };
            CheckError::Model {
                index: history[at].index,
                message: e.message,
            }
        })?;
        if let Some(step) = step {
            task.history.ops.push(KeyOp {
                invoke: op.invoke as u32,
                complete: match (op.kind, op.complete) {
                    (OpType::Ok, Some(c)) => c as u32,
                    _ => OPEN,
                },
                step,
                source: source as u32,
            });
        }
    }
    Ok(tasks)
}

/// Decides one key and gathers the evidence if it is not linearizable.
fn check_key(
    task: &mut Task,
    history: &[Op],
    operations: &[Operation],
    budget: &Budget,
    evidence: bool,
) -> KeyReport {
    let started = Instant::now();
    let (outcome, prefix) = search::decide(&task.history, &mut task.states, budget);
    let (verdict, reason, counterexample) = match outcome {
        Outcome::Linearizable => (Verdict::Valid, None, None),
        Outcome::Unknown(reason) => (Verdict::Unknown, Some(reason), None),
        Outcome::NotLinearizable if !evidence => (Verdict::Invalid, None, None),
        Outcome::NotLinearizable => {
            let evidence = evidence::Shrink {
                key: task.key.as_deref(),
                history,
                operations,
                budget,
                spent: started.elapsed(),
            };
            let failing = prefix.as_ref().unwrap_or(&task.history);
            let mut c = evidence.counterexample(failing, &mut task.states);
            // Operations after a failing prefix are left out too.
            c.omitted += task.history.ops.len() - failing.ops.len();
            (Verdict::Invalid, None, Some(c))
        }
    };
    KeyReport {
        key: task.key.clone(),
        verdict,
        operations: task.operations,
        elapsed_ms: ms(started.elapsed()),
        reason,
        counterexample,
    }
}

/// Milliseconds, to the microsecond.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests;
