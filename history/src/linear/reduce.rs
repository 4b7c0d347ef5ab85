//! Model-aware reductions of the linearization search: which operations can
//! still observe a state, and the prefix rule of the kv model.
//!
//! The prefix rule: between now and an unplaced `get`, only operations
//! invoked before the get completed can be placed. If no `put` is among
//! them, the string only grows by appends until the get, so the current
//! string must start what the get returned. With puts among them, the get's
//! result must start with the current string or with the value of one of
//! those puts. A configuration that breaks this for some get has no
//! solution. Only the first few unplaced gets (by completion) are checked:
//! checking fewer prunes less but stays exact.

use super::search::{has, KeyOp, OPEN};
use crate::model::{ModelKind, States, Step, UNSEEN};

/// How many unplaced gets the prefix rule looks at.
const PREFIX_CHECKS: usize = 16;
/// Largest gets-times-operations product for which the prefix rule is set
/// up.
const SETUP_LIMIT: usize = 50_000_000;
/// Longest list of operations kept per state or per get, so memory stays
/// linear in the history; a longer list becomes [`MANY`].
const LIST_CAP: usize = 32;
/// Stands for "too many to list": assume one of them is still unplaced,
/// which only prunes less.
const MANY: u32 = u32::MAX;

/// `list` as kept: itself when short enough, else `[MANY]`.
fn capped(list: Vec<u32>) -> Vec<u32> {
    if list.len() > LIST_CAP {
        vec![MANY]
    } else {
        list
    }
}

/// The operations (by position) for which `pred` holds, capped.
fn matching(ops: &[KeyOp], pred: impl Fn(&KeyOp) -> bool) -> Vec<u32> {
    capped(
        (0..ops.len() as u32)
            .filter(|&i| pred(&ops[i as usize]))
            .take(LIST_CAP + 1)
            .collect(),
    )
}

/// For each state, the operations that could observe it: reads of it, cas
/// from it, and for kv the gets that returned it followed by more.
#[derive(Default)]
pub(crate) struct Observers {
    by_state: Vec<Option<Vec<u32>>>,
    /// For registers, the lists of every observed value, made in one pass
    /// over the operations the first time they are needed, so that a long
    /// history with many values is not scanned once per value.
    by_value: Option<std::collections::HashMap<u32, Vec<u32>>>,
}

impl Observers {
    /// Whether an unplaced operation could still observe `state` (or, for
    /// kv, a string that starts with it).
    pub(crate) fn observed(
        &mut self,
        state: u32,
        bits: &[u64],
        ops: &[KeyOp],
        states: &States,
    ) -> bool {
        let at = state as usize;
        if self.by_state.len() <= at {
            self.by_state.resize(at + 1, None);
        }
        let kv = states.kind() == ModelKind::Kv;
        if !kv && self.by_state[at].is_none() {
            let by_value = self.by_value.get_or_insert_with(|| {
                let mut by_value: std::collections::HashMap<u32, Vec<u32>> =
                    Default::default();
                for (i, op) in ops.iter().enumerate() {
                    if let Step::Read(v) | Step::Cas(v, _) = op.step {
                        let list = by_value.entry(v).or_default();
                        if list.len() <= LIST_CAP {
                            list.push(i as u32);
                        }
                    }
                }
                by_value
            });
            let list = by_value.get(&state).cloned().unwrap_or_default();
            self.by_state[at] = Some(capped(list));
        }
        let list = self.by_state[at].get_or_insert_with(|| {
            let text = states.text(state);
            let sees = |op: &KeyOp| match op.step {
                Step::Read(v) if kv => states.text(v).starts_with(text),
                Step::Read(v) | Step::Cas(v, _) => v == state,
                _ => false,
            };
            matching(ops, sees)
        });
        list.iter().any(|&o| o == MANY || !has(bits, o as usize))
    }
}

/// The prefix rule of the kv model (see the module doc).
pub(crate) struct Prefixes {
    /// Completed gets (reads), by completion.
    gets: Vec<u32>,
    /// For each of `gets`, the puts that could be placed before it and whose
    /// value starts what it returned.
    resets: Vec<Vec<u32>>,
}

impl Prefixes {
    /// The rule for a kv key; a rule that prunes nothing for other models
    /// or when not `enabled`.
    pub(crate) fn new(
        ops: &[KeyOp],
        kind: ModelKind,
        states: &States,
        enabled: bool,
    ) -> Prefixes {
        let mut gets: Vec<u32> = Vec::new();
        if kind == ModelKind::Kv && enabled {
            let is_get =
                |op: &KeyOp| matches!(op.step, Step::Read(_)) && op.complete != OPEN;
            gets = (0..ops.len() as u32)
                .filter(|&i| is_get(&ops[i as usize]))
                .collect();
            gets.sort_by_key(|&g| ops[g as usize].complete);
            // The rule costs gets times operations to set up; skipping it on
            // huge keys only prunes less.
            if gets.len().saturating_mul(ops.len()) > SETUP_LIMIT {
                gets.clear();
            }
        }
        let resets = gets
            .iter()
            .map(|&g| {
                let get = &ops[g as usize];
                let Step::Read(want) = get.step else {
                    return Vec::new();
                };
                let want = states.text(want);
                let starts = |p: &KeyOp| match p.step {
                    Step::Write(v) => {
                        p.invoke < get.complete && want.starts_with(states.text(v))
                    }
                    _ => false,
                };
                matching(ops, starts)
            })
            .collect();
        Prefixes { gets, resets }
    }

    /// Whether placing operation `placing` and reaching `state` leaves the
    /// next unplaced gets a chance: each must return the current string
    /// followed by appends, unless a put that could come first starts what
    /// it returned.
    pub(crate) fn allows(
        &self,
        ops: &[KeyOp],
        bits: &[u64],
        placing: usize,
        state: u32,
        states: &States,
    ) -> bool {
        if self.gets.is_empty() || matches!(ops[placing].step, Step::Read(_)) {
            return true;
        }
        let current = states.text(state);
        let mut checked = 0;
        for (at, &g) in self.gets.iter().enumerate() {
            if has(bits, g as usize) {
                continue;
            }
            if checked == PREFIX_CHECKS {
                break;
            }
            checked += 1;
            let Step::Read(want) = ops[g as usize].step else {
                continue;
            };
            if state != UNSEEN && states.text(want).starts_with(current) {
                continue;
            }
            let reset = |&p: &u32| p as usize != placing && !has(bits, p as usize);
            if !self.resets[at].iter().any(|p| *p == MANY || reset(p)) {
                return false;
            }
        }
        true
    }
}
