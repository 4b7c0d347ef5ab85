//! Runs are replayable: the same seed gives the same fault schedule and
//! the same operations for each client, and the seed is stored with the
//! command that repeats the run.

mod support;

use history::formats::{read_path, Format};
use history::{Op, OpType, Process};
use std::time::Duration;
use support::run_test;

/// The nemesis functions in order, and worker 0's invocations (processes
/// 0, c, 2c, ... with c the concurrency) as (f, key, value) text, up to
/// the final reads.
fn schedule_and_ops(history: &[Op], concurrency: u64) -> (Vec<String>, Vec<String>) {
    let healed = history
        .iter()
        .rposition(|op| op.process == Process::Nemesis)
        .unwrap_or(history.len());
    let invokes = history[..healed]
        .iter()
        .filter(|op| op.kind == OpType::Invoke);
    let faults = invokes
        .clone()
        .filter(|op| op.process == Process::Nemesis)
        .map(|op| op.f.clone())
        .collect();
    let worker_0 = invokes
        .filter(|op| matches!(op.process, Process::Client(p) if p % concurrency == 0))
        .map(|op| format!("{} {:?} {}", op.f, op.key, op.value))
        .collect();
    (faults, worker_0)
}

#[test]
fn same_seed_repeats_the_fault_schedule_and_the_operations() {
    let line = "--nodes 3 --time-limit 4 --concurrency 3 --nemesis partition,kill,pause \
                --nemesis-interval 0.5 --seed 11 --net proxy";
    let args: Vec<&str> = line.split_whitespace().collect();
    let runs: Vec<_> = (0..2)
        .map(|_| run_test(&args, Duration::from_secs(90)))
        .collect();
    let mut seen = Vec::new();
    for run in &runs {
        assert_eq!(run.code, 0, "{}", run.output);
        let test: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(run.dir.join("test.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(test["seed"], 11);
        let history = read_path(&run.dir.join("history.jsonl"), Format::Jsonl).unwrap();
        seen.push(schedule_and_ops(&history, 3));
    }
    let ((faults_a, ops_a), (faults_b, ops_b)) = (&seen[0], &seen[1]);

    // Timing decides how many steps fit in the run, not which ones.
    let faults = faults_a.len().min(faults_b.len());
    assert!(faults >= 4, "too few faults: {faults_a:?}");
    assert_eq!(faults_a[..faults], faults_b[..faults]);
    let ops = ops_a.len().min(ops_b.len());
    assert!(ops >= 20, "too few operations: {}", ops);
    assert_eq!(ops_a[..ops], ops_b[..ops]);
}
