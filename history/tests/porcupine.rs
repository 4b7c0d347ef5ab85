//! Porcupine's test corpus: every history file with the verdict Porcupine's
//! own suite expects (`MANIFEST.tsv`), checked by one helper.

use history::formats::porcupine::{read_etcd, read_kv};
use history::linear::{check, decide, CheckOptions, LinearReport};
use history::model::ModelKind;
use history::Verdict;
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/histories/porcupine")
}

/// Reads one corpus file and decides it with the model of its family;
/// with `evidence`, counterexamples are gathered too.
fn check_file(file: &str, family: &str, evidence: bool) -> LinearReport {
    let text =
        std::fs::read_to_string(corpus().join(file)).expect("corpus file is readable");
    let (history, model) = match family {
        "etcd" => (read_etcd(&text), ModelKind::CasRegister),
        "kv" => (read_kv(&text), ModelKind::Kv),
        other => panic!("unknown family {other} in MANIFEST.tsv"),
    };
    let (history, _) = history.unwrap_or_else(|e| panic!("{file}: {e}"));
    let opts = CheckOptions {
        model,
        ..CheckOptions::default()
    };
    let report = if evidence {
        check(&history, &opts)
    } else {
        decide(&history, &opts)
    };
    report.unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn verdict_of(expected: &str) -> Verdict {
    match expected {
        "linearizable" => Verdict::Valid,
        "not" => Verdict::Invalid,
        other => panic!("unknown expectation {other} in MANIFEST.tsv"),
    }
}

#[test]
fn every_corpus_file_gets_the_verdict_porcupine_expects() {
    let manifest =
        std::fs::read_to_string(corpus().join("MANIFEST.tsv")).expect("manifest");
    let mut wrong = Vec::new();
    let mut files = 0;
    for row in manifest.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (file, family, ops, expected) = (cols[0], cols[1], cols[3], cols[4]);
        let report = check_file(file, family, false);
        files += 1;
        assert_eq!(
            report.operations.to_string(),
            ops,
            "{file}: operation count"
        );
        if report.verdict != verdict_of(expected) {
            wrong.push(format!("{file}: {} instead of {expected}", report.verdict));
        }
    }
    assert_eq!(files, 109);
    assert!(wrong.is_empty(), "wrong verdicts: {wrong:#?}");
}

#[test]
fn c10_bad_is_wrong_on_every_key_but_4_and_8() {
    let report = check_file("kv/c10-bad.txt", "kv", false);
    for key in &report.keys {
        let fine = matches!(key.key.as_deref(), Some("4" | "8"));
        let expected = if fine {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        assert_eq!(key.verdict, expected, "key {:?}", key.key);
    }
}

#[test]
fn c50_bad_decides_every_key() {
    let report = check_file("kv/c50-bad.txt", "kv", false);
    assert_eq!(report.keys.len(), 10);
    for key in &report.keys {
        assert_ne!(
            key.verdict,
            Verdict::Unknown,
            "key {:?}: {:?}",
            key.key,
            key.reason
        );
    }
    for illegal in ["1", "2", "3", "4", "5", "6", "8"] {
        let key = report
            .keys
            .iter()
            .find(|k| k.key.as_deref() == Some(illegal));
        assert_eq!(
            key.map(|k| k.verdict),
            Some(Verdict::Invalid),
            "key {illegal}"
        );
    }
}

#[test]
fn counterexamples_are_themselves_not_linearizable() {
    for (file, family, model) in [
        ("kv/c01-bad.txt", "kv", ModelKind::Kv),
        ("jepsen/etcd_000.log", "etcd", ModelKind::CasRegister),
        ("jepsen/etcd_001.log", "etcd", ModelKind::CasRegister),
    ] {
        let report = check_file(file, family, true);
        let bad: Vec<_> = report
            .keys
            .iter()
            .filter(|k| k.verdict == Verdict::Invalid)
            .collect();
        assert!(!bad.is_empty(), "{file}");
        for key in bad {
            let c = key
                .counterexample
                .as_ref()
                .expect("invalid keys have evidence");
            assert_eq!(c.stuck.len(), 1, "{file}: one stuck operation");
            assert!(c.ops.iter().any(|op| op.index == c.stuck[0]), "{file}");
            assert!(!c.states.is_empty() && !c.explanation.is_empty(), "{file}");
            let opts = CheckOptions {
                model,
                ..CheckOptions::default()
            };
            // The context operations may or may not have taken effect.
            let mut evidence = c.ops.clone();
            evidence.extend(c.context.iter().map(|op| history::Op {
                kind: match op.kind {
                    history::OpType::Invoke => history::OpType::Invoke,
                    _ => history::OpType::Info,
                },
                ..op.clone()
            }));
            evidence.sort_by_key(|op| op.index);
            let again = decide(&evidence, &opts).expect("evidence pairs up");
            assert_eq!(again.verdict, Verdict::Invalid, "{file}: {}", c.explanation);
        }
    }
}

#[test]
fn kv_counterexamples_shrink_to_a_few_operations_regression_c50_bad() {
    // Shrinking once ran out of memory here and reported nearly whole keys.
    let report = check_file("kv/c50-bad.txt", "kv", true);
    for key in report.keys.iter().filter(|k| k.verdict == Verdict::Invalid) {
        let c = key
            .counterexample
            .as_ref()
            .expect("invalid keys have evidence");
        assert!(
            !c.explanation.contains("may not be minimal"),
            "{}",
            c.explanation
        );
        assert!(c.explanation.starts_with("get of key"), "{}", c.explanation);
        // A get that cannot be explained and the few appends that pin the
        // string; the other appends are context of unknown outcome.
        assert!(
            c.ops.len() <= 16,
            "key {:?}: {} entries",
            key.key,
            c.ops.len()
        );
        assert!(c.context.len() <= 100, "key {:?}", key.key);
        assert!(c.omitted > 100, "key {:?}: {} omitted", key.key, c.omitted);
    }
}

#[test]
fn counterexamples_explain_themselves_etcd_000_stale_read() {
    let report = check_file("jepsen/etcd_000.log", "etcd", true);
    let c = report.keys[0].counterexample.as_ref().expect("evidence");
    // The states before the stuck read are values written in the core or
    // its context.
    let written: Vec<&serde_json::Value> = c
        .ops
        .iter()
        .chain(&c.context)
        .filter(|op| op.f == "write" && op.kind == history::OpType::Invoke)
        .map(|op| &op.value)
        .collect();
    for s in &c.states {
        assert!(written.contains(&s), "state {s} not written in {:?}", c.ops);
    }
    assert!(
        c.explanation.starts_with("read returned"),
        "{}",
        c.explanation
    );
}
