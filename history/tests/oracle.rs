//! The checker against a brute-force oracle on small random histories.
//!
//! Histories come from simulated clients of a register (or strings):
//! each operation takes effect at a random moment between its invocation and
//! its completion, so they are linearizable by construction; some complete
//! as `fail` (not applied) or `info` (maybe applied), some never complete.
//! Mutated copies change one result and are often not linearizable. The
//! oracle tries every order that respects real time, written here without
//! sharing code with the checker.

use history::linear::{check, CheckOptions};
use history::model::ModelKind;
use history::{pair, Op, OpType, Operation, Process, Verdict};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{json, Value};

/// A deterministic stream of choices from proptest's numbers.
struct Choices<'a>(std::slice::Iter<'a, u8>);

impl Choices<'_> {
    fn pick(&mut self, n: usize) -> usize {
        self.0.next().map_or(0, |&c| c as usize % n)
    }
}

/// A random operation of the model: function, argument, key.
fn invent(model: ModelKind, c: &mut Choices) -> (String, Value, Option<String>) {
    let v = json!(c.pick(3));
    let key = Some(["a", "b"][c.pick(2)].to_string());
    match (model, c.pick(3)) {
        (ModelKind::Kv, 0) => ("get".into(), Value::Null, key),
        (ModelKind::Kv, 1) => ("put".into(), json!(["x", "y"][c.pick(2)]), key),
        (ModelKind::Kv, _) => ("append".into(), json!(["x", "y"][c.pick(2)]), key),
        (_, 0) => ("read".into(), Value::Null, None),
        (ModelKind::CasRegister, 1) => {
            ("cas".into(), json!([c.pick(3), c.pick(3)]), None)
        }
        _ => ("write".into(), v, None),
    }
}

/// Applies an operation to the state; `None` when a cas does not apply.
fn apply(state: &mut Value, f: &str, input: &Value) -> Option<Value> {
    match f {
        "read" | "get" => Some(state.clone()),
        "write" | "put" => {
            *state = input.clone();
            Some(input.clone())
        }
        "append" => {
            let s = format!(
                "{}{}",
                state.as_str().unwrap_or(""),
                input.as_str().unwrap_or("")
            );
            *state = json!(s);
            Some(input.clone())
        }
        _ if *state == input[0] => {
            *state = input[1].clone();
            Some(input.clone())
        }
        _ => None,
    }
}

/// A client's open operation: function, argument, key, and once it took
/// effect its result (`None` for a cas that did not apply).
type Running = (String, Value, Option<String>, Option<Option<Value>>);

/// A history of four clients running up to nine operations.
fn simulate(model: ModelKind, bytes: &[u8]) -> Vec<Op> {
    let mut c = Choices(bytes.iter());
    let initial = if model == ModelKind::Kv {
        json!("")
    } else {
        Value::Null
    };
    let mut states = std::collections::HashMap::new();
    // Per client: the open operation and its result once applied.
    let mut open: Vec<Option<Running>> = vec![None; 4];
    let mut process = [0u64, 1, 2, 3];
    let (mut history, mut invoked) = (Vec::new(), 0);
    let push =
        |history: &mut Vec<Op>, p: u64, kind, f: &str, key: &Option<String>, value| {
            history.push(Op {
                index: history.len() as u64,
                time: history.len() as u64,
                process: Process::Client(p),
                kind,
                f: f.into(),
                key: key.clone(),
                value,
                node: None,
                error: None,
            })
        };
    for _ in 0..50 {
        let client = c.pick(4);
        let p = process[client];
        match open[client].take() {
            None if invoked < 9 => {
                let (f, input, key) = invent(model, &mut c);
                push(&mut history, p, OpType::Invoke, &f, &key, input.clone());
                open[client] = Some((f, input, key, None));
                invoked += 1;
            }
            None => {}
            Some((f, input, key, None)) => match c.pick(4) {
                0 => push(&mut history, p, OpType::Fail, &f, &key, input),
                1 => {
                    push(&mut history, p, OpType::Info, &f, &key, input);
                    process[client] += 4;
                }
                _ => {
                    let state = states.entry(key.clone()).or_insert(initial.clone());
                    let result = apply(state, &f, &input);
                    open[client] = Some((f, input, key, Some(result)));
                }
            },
            Some((f, input, key, Some(result))) => match (result, c.pick(5)) {
                (_, 0) => {
                    push(&mut history, p, OpType::Info, &f, &key, input);
                    process[client] += 4;
                }
                (Some(out), _) => push(&mut history, p, OpType::Ok, &f, &key, out),
                (None, _) => push(&mut history, p, OpType::Fail, &f, &key, input),
            },
        }
    }
    history
}

/// Changes the result of one completed operation.
fn mutate(mut history: Vec<Op>, model: ModelKind, at: usize, to: usize) -> Vec<Op> {
    let oks: Vec<usize> = (0..history.len())
        .filter(|&i| history[i].kind == OpType::Ok)
        .collect();
    if let Some(&i) = oks.get(at % oks.len().max(1)) {
        let op = &mut history[i];
        op.value = match (model, op.f.as_str()) {
            (ModelKind::Kv, "get") => json!(["", "x", "yx", "xy"][to % 4]),
            (ModelKind::Kv, _) => op.value.clone(),
            (_, "read") => [Value::Null, json!(1), json!(2)][to % 3].clone(),
            _ => op.value.clone(),
        };
        if op.f == "cas" || op.f == "write" || op.f == "put" || op.f == "append" {
            op.kind = if to.is_multiple_of(2) {
                OpType::Fail
            } else {
                OpType::Ok
            };
        }
    }
    history
}

/// Every order of the operations of one key that respects real time.
fn oracle_key(ops: &[&Operation], model: ModelKind) -> bool {
    let initial = if model == ModelKind::Kv {
        json!("")
    } else {
        Value::Null
    };
    let live: Vec<&Operation> = ops
        .iter()
        .copied()
        .filter(|o| o.kind != OpType::Fail)
        .collect();
    fn search(ops: &[&Operation], placed: &mut Vec<bool>, state: &Value) -> bool {
        if (0..ops.len()).all(|i| placed[i] || ops[i].complete.is_none()) {
            return true;
        }
        for i in 0..ops.len() {
            let o = ops[i];
            let blocked = (0..ops.len()).any(|j| {
                !placed[j] && j != i && ops[j].complete.is_some_and(|c| c < o.invoke)
            });
            if placed[i] || blocked {
                continue;
            }
            let mut next = state.clone();
            let legal = match (o.f.as_str(), o.complete) {
                ("read" | "get", None) => true,
                ("read", Some(_)) => *state == o.output,
                ("get", Some(_)) => {
                    *state == o.output || (o.output.is_null() && *state == json!(""))
                }
                _ => apply(&mut next, &o.f, &o.input).is_some(),
            };
            if legal {
                placed[i] = true;
                if search(ops, placed, &next) {
                    return true;
                }
                placed[i] = false;
            }
        }
        false
    }
    search(&live, &mut vec![false; live.len()], &initial)
}

fn oracle(history: &[Op], model: ModelKind) -> Verdict {
    let ops = pair(history).expect("simulated histories pair up");
    let mut keys: Vec<Option<String>> = ops.iter().map(|o| o.key.clone()).collect();
    keys.sort();
    keys.dedup();
    let fine = keys.iter().all(|k| {
        let mine: Vec<&Operation> = ops.iter().filter(|o| &o.key == k).collect();
        oracle_key(&mine, model)
    });
    if fine {
        Verdict::Valid
    } else {
        Verdict::Invalid
    }
}

fn agree(model: ModelKind, history: &[Op]) -> Result<(), TestCaseError> {
    let opts = CheckOptions {
        model,
        threads: 1,
        ..CheckOptions::default()
    };
    let report = check(history, &opts).expect("simulated histories are well-formed");
    prop_assert_eq!(
        report.verdict,
        oracle(history, model),
        "history: {:#?}",
        history
    );
    for key in &report.keys {
        if let Some(c) = &key.counterexample {
            // The evidence is itself not linearizable, its context taken as
            // unknown.
            let mut evidence = c.ops.clone();
            evidence.extend(c.context.iter().map(|op| Op {
                kind: match op.kind {
                    OpType::Invoke => OpType::Invoke,
                    _ => OpType::Info,
                },
                ..op.clone()
            }));
            evidence.sort_by_key(|op| op.index);
            prop_assert_eq!(
                oracle(&evidence, model),
                Verdict::Invalid,
                "evidence: {:#?}",
                evidence
            );
            let stuck = c.ops.iter().any(|op| c.stuck.contains(&op.index));
            prop_assert!(stuck, "the stuck operation is part of the evidence");
        }
    }
    Ok(())
}

fn config() -> Config {
    Config {
        cases: 1500,
        rng_seed: RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn simulated_histories_are_linearizable(
        bytes in prop::collection::vec(any::<u8>(), 80),
        model in prop::sample::select(vec![ModelKind::Register, ModelKind::CasRegister, ModelKind::Kv]),
    ) {
        let history = simulate(model, &bytes);
        prop_assert_eq!(oracle(&history, model), Verdict::Valid);
        agree(model, &history)?;
    }

    #[test]
    fn checker_agrees_with_the_oracle_on_mutated_histories(
        bytes in prop::collection::vec(any::<u8>(), 80),
        model in prop::sample::select(vec![ModelKind::Register, ModelKind::CasRegister, ModelKind::Kv]),
        at in 0usize..8,
        to in 0usize..8,
    ) {
        let history = mutate(simulate(model, &bytes), model, at, to);
        agree(model, &history)?;
    }
}

/// The generators must produce both verdicts and every kind of completion,
/// or the properties above would prove little.
#[test]
fn generated_histories_mix_verdicts_and_completions() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut invalid = 0;
    let mut kinds = std::collections::HashSet::new();
    for case in 0..300 {
        let bytes: Vec<u8> = (0..80)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let model =
            [ModelKind::Register, ModelKind::CasRegister, ModelKind::Kv][case % 3];
        let history = mutate(simulate(model, &bytes), model, case, case / 3);
        kinds.extend(history.iter().map(|op| op.kind));
        invalid += usize::from(oracle(&history, model) == Verdict::Invalid);
    }
    assert!(
        (30..270).contains(&invalid),
        "{invalid} of 300 mutated histories are invalid"
    );
    assert_eq!(kinds.len(), 4, "every completion type appears: {kinds:?}");
}
