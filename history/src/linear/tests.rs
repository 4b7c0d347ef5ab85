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
    // The read is the core: no operation wrote 3. The write, the last one
    // before it, stays as it completed and pins the state.
    assert_eq!(c.stuck, vec![2]);
    assert_eq!(c.ops, h);
    assert_eq!(c.omitted, 0);
    assert_eq!(c.states, vec![json!(1)]);
    assert_eq!(
        c.explanation,
        "read of key k1 returned 3, but after write 1 completed the register could \
         only be 1 at that point"
    );
    assert_unknown_context_still_fails(c, ModelKind::CasRegister);
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

#[test]
fn counterexamples_explain_themselves_stale_read() {
    // write 1; write 2 completes; then read 1: the core keeps both writes,
    // since the read of 1 needs the write of 1 to explain it.
    let h = history(
        Some("k"),
        &[
            (1, Invoke, "write", json!(1)),
            (1, Done, "write", json!(1)),
            (2, Invoke, "write", json!(2)),
            (2, Done, "write", json!(2)),
            (3, Invoke, "read", Value::Null),
            (3, Done, "read", json!(1)),
        ],
    );
    let report = check(&h, &CheckOptions::default()).unwrap();
    let c = report.keys[0].counterexample.as_ref().unwrap();
    assert_eq!(c.ops, h);
    assert_eq!(c.stuck, vec![4]);
    assert_eq!(c.states, vec![json!(2)]);
    assert_eq!(
        c.explanation,
        "read of key k returned 1, but after write 1 and write 2 completed the \
         register could only be 2 at that point"
    );
    assert_unknown_context_still_fails(c, ModelKind::CasRegister);
}

#[test]
fn counterexamples_explain_themselves_every_observed_value_is_written_in_the_core() {
    // Two stale reads on one register among many writes: whatever the core,
    // each value a read observed is written by an operation in it.
    let mut rows = Vec::new();
    for v in 1..=6 {
        rows.push((1, Invoke, "write", json!(v)));
        rows.push((1, Done, "write", json!(v)));
    }
    rows.push((2, Invoke, "read", Value::Null));
    rows.push((2, Done, "read", json!(3)));
    let h = history(None, &rows);
    let report = check(&h, &CheckOptions::default()).unwrap();
    let c = report.keys[0].counterexample.as_ref().unwrap();
    let written = |v: &Value| {
        c.ops
            .iter()
            .any(|op| op.f == "write" && op.kind == Done && &op.value == v)
    };
    assert!(written(&json!(3)), "{:?}", c.ops);
    assert!(c.ops.len() <= 6, "{:?}", c.ops);
    assert!(c.states.contains(&json!(6)), "{:?}", c.states);
    assert!(!c.states.contains(&json!(3)), "{:?}", c.states);
    assert_unknown_context_still_fails(c, ModelKind::CasRegister);
}

/// The counterexample's operations, with those of its context taken as
/// unknown, are not linearizable on their own.
fn assert_unknown_context_still_fails(c: &Counterexample, model: ModelKind) {
    let mut h = c.ops.clone();
    h.extend(c.context.iter().map(|op| Op {
        kind: if op.kind == Invoke { Invoke } else { Info },
        ..op.clone()
    }));
    h.sort_by_key(|op| op.index);
    let opts = CheckOptions {
        model,
        ..CheckOptions::default()
    };
    let again = decide(&h, &opts).unwrap();
    assert_eq!(again.verdict, Verdict::Invalid, "{h:?}");
}

fn counterexample(h: &[Op]) -> Counterexample {
    let report = check(h, &CheckOptions::default()).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    report.keys[0].counterexample.clone().unwrap()
}

#[test]
fn counterexamples_blame_the_read_not_a_cas_that_explains_its_own_value() {
    // Regression D1: write 1, cas 1->4, cas 4->4, then read 1, one after the
    // other. The anomaly is the read of 1 after 4 was written.
    let h = history(
        Some("k"),
        &[
            (1, Invoke, "write", json!(1)),
            (1, Done, "write", json!(1)),
            (1, Invoke, "cas", json!([1, 4])),
            (1, Done, "cas", json!([1, 4])),
            (1, Invoke, "cas", json!([4, 4])),
            (1, Done, "cas", json!([4, 4])),
            (2, Invoke, "read", Value::Null),
            (2, Done, "read", json!(1)),
        ],
    );
    let c = counterexample(&h);
    assert_eq!(c.stuck, vec![6], "{}", c.explanation);
    assert_eq!(c.states, vec![json!(4)], "{}", c.explanation);
    assert!(
        c.explanation
            .starts_with("read of key k returned 1, but after"),
        "{}",
        c.explanation
    );
    assert_unknown_context_still_fails(&c, ModelKind::CasRegister);
}

#[test]
fn counterexamples_never_blame_a_read_whose_write_preceded_it() {
    // Regression D2: write 0, read 0, write 1, write 0 (each completed
    // before the next), then read 1. The first read is correct; the last
    // read is the anomaly.
    let h = history(
        Some("k"),
        &[
            (1, Invoke, "write", json!(0)),
            (1, Done, "write", json!(0)),
            (2, Invoke, "read", Value::Null),
            (2, Done, "read", json!(0)),
            (1, Invoke, "write", json!(1)),
            (1, Done, "write", json!(1)),
            (1, Invoke, "write", json!(0)),
            (1, Done, "write", json!(0)),
            (2, Invoke, "read", Value::Null),
            (2, Done, "read", json!(1)),
        ],
    );
    let c = counterexample(&h);
    assert_eq!(c.stuck, vec![8], "{}", c.explanation);
    assert!(c.states.contains(&json!(0)), "{:?}", c.states);
    assert!(!c.ops.iter().any(|op| op.index == 2), "{:?}", c.ops);
    assert_unknown_context_still_fails(&c, ModelKind::CasRegister);
}

#[test]
fn counterexamples_show_the_state_a_completed_write_left() {
    // Regression D3: write 1, then read 2. The register was certainly 1.
    let h = history(
        Some("k"),
        &[
            (1, Invoke, "write", json!(1)),
            (1, Done, "write", json!(1)),
            (2, Invoke, "read", Value::Null),
            (2, Done, "read", json!(2)),
        ],
    );
    let c = counterexample(&h);
    assert_eq!(c.ops, h);
    assert!(c.context.is_empty(), "{:?}", c.context);
    assert_eq!(c.states, vec![json!(1)]);
    assert_unknown_context_still_fails(&c, ModelKind::CasRegister);
}

#[test]
fn time_limit_reason_reports_the_total_time_of_the_check() {
    // Thirty concurrent writes, then two reads that disagree: far more
    // search than the limit allows.
    let n = 30;
    let mut rows = Vec::new();
    for p in 0..n {
        rows.push((p, Invoke, "write", json!(p)));
    }
    for p in 0..n {
        rows.push((p, Done, "write", json!(p)));
    }
    rows.push((100, Invoke, "read", Value::Null));
    rows.push((100, Done, "read", json!(0)));
    rows.push((100, Invoke, "read", Value::Null));
    rows.push((100, Done, "read", json!(1)));
    let h = history(None, &rows);
    let opts = CheckOptions {
        time_limit: Some(Duration::from_millis(300)),
        ..CheckOptions::default()
    };
    let report = decide(&h, &opts).unwrap();
    let reason = report.keys[0]
        .reason
        .clone()
        .expect("unknown, with a reason");
    let secs: f64 = reason
        .strip_prefix("time limit reached after ")
        .and_then(|r| r.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{reason}"));
    assert!(secs >= 0.3, "{reason}");
}

#[test]
fn long_sequential_histories_fit_a_small_memory_limit() {
    // 20 000 writes and reads one after the other: every configuration's
    // window of open operations is tiny, so 8 MiB is plenty.
    let mut rows = Vec::new();
    for v in 0..10_000 {
        rows.push((0, Invoke, "write", json!(v)));
        rows.push((0, Done, "write", json!(v)));
        rows.push((1, Invoke, "read", Value::Null));
        rows.push((1, Done, "read", json!(v)));
    }
    let h = history(None, &rows);
    let opts = CheckOptions {
        memory_limit: 8 << 20,
        threads: 1,
        ..CheckOptions::default()
    };
    let report = decide(&h, &opts).unwrap();
    assert_eq!(
        report.verdict,
        Verdict::Valid,
        "{:?}",
        report.keys[0].reason
    );
}
