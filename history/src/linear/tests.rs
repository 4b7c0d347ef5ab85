//! Unit tests of [`check`](super::check) on hand-written histories.

use super::*;
use crate::op::Process;
use serde_json::json;

/// A history from `(process, type, f, value)` rows, all on `key`.
fn history(key: Option<&str>, rows: &[(u64, OpType, &str, Value)]) -> Vec<Op> {
    rows.iter()
        .enumerate()
        .map(|(i, (p, kind, f, value))| Op {
            index: i as u64,
            time: i as u64,
            process: Process::Client(*p),
            kind: *kind,
            f: f.to_string(),
            key: key.map(String::from),
            value: value.clone(),
            node: None,
            error: None,
        })
        .collect()
}

fn verdict(model: ModelKind, h: &[Op]) -> Verdict {
    let opts = CheckOptions {
        model,
        ..CheckOptions::default()
    };
    check(h, &opts).unwrap().verdict
}

use OpType::{Fail, Info, Invoke, Ok as Done};

#[test]
fn a_read_of_a_value_never_written_is_not_linearizable() {
    let h = history(
        Some("k1"),
        &[
            (1, Invoke, "write", json!(1)),
            (1, Done, "write", json!(1)),
            (2, Invoke, "read", Value::Null),
            (2, Done, "read", json!(3)),
        ],
    );
    let report = check(&h, &CheckOptions::default()).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    let c = report.keys[0].counterexample.as_ref().unwrap();
    // The read alone is the core: with the write free to happen or not,
    // the register is nil or 1, never 3.
    assert_eq!(c.stuck, vec![2]);
    assert_eq!(c.ops, h[2..].to_vec());
    assert_eq!(c.states, vec![json!(1), Value::Null]);
    assert_eq!(
        c.explanation,
        "read of k1 returned 3 but the register could only be 1 or null at that point"
    );
}

#[test]
fn concurrent_operations_may_take_effect_in_either_order() {
    let h = history(
        None,
        &[
            (1, Invoke, "write", json!(1)),
            (2, Invoke, "read", Value::Null),
            (2, Done, "read", json!(1)),
            (1, Done, "write", json!(1)),
        ],
    );
    assert_eq!(verdict(ModelKind::Register, &h), Verdict::Valid);
}

#[test]
fn a_failed_cas_did_not_happen_but_an_unknown_one_may_have() {
    let rows = |kind| {
        [
            (1, Invoke, "cas", json!([null, 2])),
            (1, kind, "cas", json!([null, 2])),
            (2, Invoke, "read", Value::Null),
            (2, Done, "read", json!(2)),
        ]
    };
    assert_eq!(
        verdict(ModelKind::CasRegister, &history(None, &rows(Fail))),
        Verdict::Invalid
    );
    assert_eq!(
        verdict(ModelKind::CasRegister, &history(None, &rows(Info))),
        Verdict::Valid
    );
}

#[test]
fn keys_are_checked_apart_and_the_nemesis_is_ignored() {
    let mut h = history(
        Some("a"),
        &[(1, Invoke, "put", json!("x")), (1, Done, "put", json!("x"))],
    );
    h.extend(history(
        Some("b"),
        &[(2, Invoke, "get", Value::Null), (2, Done, "get", json!(""))],
    ));
    h.push(Op {
        process: Process::Nemesis,
        kind: Info,
        f: "partition".into(),
        ..h[0].clone()
    });
    let report = check(
        &h,
        &CheckOptions {
            model: ModelKind::Kv,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(report.verdict, Verdict::Valid);
    assert_eq!(report.operations, 2);
    let keys: Vec<_> = report.keys.iter().map(|k| k.key.clone()).collect();
    assert_eq!(keys, vec![Some("a".to_string()), Some("b".to_string())]);
}

#[test]
fn appends_must_show_up_in_later_gets_in_order() {
    let h = history(
        Some("k"),
        &[
            (1, Invoke, "append", json!("x")),
            (1, Done, "append", json!("x")),
            (2, Invoke, "append", json!("y")),
            (2, Done, "append", json!("y")),
            (3, Invoke, "get", Value::Null),
            (3, Done, "get", json!("yx")),
        ],
    );
    assert_eq!(verdict(ModelKind::Kv, &h), Verdict::Invalid);
}

#[test]
fn the_initial_state_can_be_chosen() {
    let h = history(
        None,
        &[
            (1, Invoke, "read", Value::Null),
            (1, Done, "read", json!(5)),
        ],
    );
    let opts = CheckOptions {
        initial: Some(json!(5)),
        ..CheckOptions::default()
    };
    assert_eq!(check(&h, &opts).unwrap().verdict, Verdict::Valid);
    assert_eq!(verdict(ModelKind::CasRegister, &h), Verdict::Invalid);
}

#[test]
fn operations_the_model_does_not_know_are_errors_naming_them() {
    let h = history(
        None,
        &[(1, Invoke, "cas", json!(3)), (1, Done, "cas", json!(3))],
    );
    let err = check(&h, &CheckOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "operation 0: cas expects a value [from, to], found 3"
    );
}

/// Many concurrent unknown writes make a search that cannot finish in no
/// time at all; the answer is then unknown with the reason, never a guess.
#[test]
fn an_exhausted_budget_gives_unknown_with_a_reason() {
    let mut rows = Vec::new();
    for p in 0..40 {
        rows.push((p, Invoke, "write", json!(p)));
    }
    for p in 40..60 {
        rows.push((p, Invoke, "read", Value::Null));
        rows.push((p, Done, "read", json!(1000 + p)));
    }
    let h = history(None, &rows);
    let opts = CheckOptions {
        memory_limit: 64 * 1024,
        ..CheckOptions::default()
    };
    let report = check(&h, &opts).unwrap();
    assert_eq!(
        report.verdict,
        Verdict::Invalid,
        "no write wrote what was read"
    );

    let reads_of_writes: Vec<_> = (0..24)
        .map(|p| (p, Invoke, "write", json!(p % 12)))
        .collect();
    let mut rows = reads_of_writes;
    for p in 24..48 {
        rows.push((p, Invoke, "read", Value::Null));
        rows.push((p, Done, "read", json!(p % 12)));
    }
    rows.push((99, Invoke, "read", Value::Null));
    rows.push((99, Done, "read", json!(77)));
    let h = history(None, &rows);
    let opts = CheckOptions {
        time_limit: Some(Duration::ZERO),
        ..CheckOptions::default()
    };
    let report = check(&h, &opts).unwrap();
    assert_eq!(report.verdict, Verdict::Unknown);
    assert!(report.keys[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("time limit"));
}
