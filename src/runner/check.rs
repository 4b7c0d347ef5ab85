//! Checking a run: the history and observations are read back from disk
//! (nothing of them is kept in memory while the test runs), checked for
//! linearizability per key and for election safety, measured, and written
//! to `results.json`.

use history::election::{self, ElectionReport};
use history::formats::{read_path, Format};
use history::linear::{self, CheckOptions, LinearReport};
use history::{Op, OpType, Process, Verdict};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Everything `results.json` holds.
#[derive(Debug, Serialize)]
pub struct Results {
    /// The worst of the checkers' verdicts.
    pub verdict: Verdict,
    /// Each checker's verdict: `linearizable`, `election-safety`.
    pub checkers: BTreeMap<String, Verdict>,
    /// Why a checker could not run, if one could not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    pub linear: Option<LinearReport>,
    pub election: Option<ElectionReport>,
    pub figures: Figures,
}

/// Measures of the run.
#[derive(Debug, Default, Serialize)]
pub struct Figures {
    /// Client operations by function and outcome: `{"read": {"ok": 3}}`.
    pub ops: BTreeMap<String, BTreeMap<String, u64>>,
    pub client_ops: u64,
    pub nemesis_ops: u64,
    /// Fraction of client operations that completed `ok`.
    pub availability: Option<f64>,
    pub elections: Option<usize>,
    pub longest_without_leader_s: Option<f64>,
    /// Nodes that exited without being killed by the nemesis.
    pub crashed_nodes: Vec<String>,
}

/// Checks the run in `dir` and writes `results.json` there.
pub fn check_run(
    dir: &Path,
    check_time_limit: Duration,
    check_elections: bool,
    crashed: Vec<String>,
) -> anyhow::Result<Results> {
    let mut checkers = BTreeMap::new();
    let mut errors = Vec::new();

    let history = read_path(&dir.join("history.jsonl"), Format::Jsonl)?;
    let mut figures = figures(&history);
    figures.crashed_nodes = crashed;

    let options = CheckOptions {
        time_limit: Some(check_time_limit),
        ..CheckOptions::default()
    };
    let linear = match linear::check(&history, &options) {
        Ok(report) => {
            checkers.insert("linearizable".to_string(), report.verdict);
            Some(report)
        }
        Err(e) => {
            errors.push(format!("linearizability: {e}"));
            checkers.insert("linearizable".to_string(), Verdict::Unknown);
            None
        }
    };
    drop(history);

    let election = if check_elections {
        let path = dir.join("observations.jsonl");
        match election::read_observations_numbered(&path) {
            Ok((obs, lines)) => {
                let report = election::check_numbered(&obs, &lines);
                checkers.insert("election-safety".to_string(), report.verdict);
                figures.elections = Some(report.elections);
                figures.longest_without_leader_s =
                    Some(report.longest_without_leader_ns as f64 / 1e9);
                Some(report)
            }
            Err(e) => {
                errors.push(format!("election safety: {e}"));
                checkers.insert("election-safety".to_string(), Verdict::Unknown);
                None
            }
        }
    } else {
        None
    };

    let verdict = checkers.values().fold(Verdict::Valid, |v, c| v.and(*c));
    let results = Results {
        verdict,
        checkers,
        errors,
        linear,
        election,
        figures,
    };
    let text = serde_json::to_string_pretty(&results)?;
    std::fs::write(dir.join("results.json"), text + "\n")?;
    Ok(results)
}

/// Counts operations by function and outcome.
pub fn figures(history: &[Op]) -> Figures {
    let mut f = Figures::default();
    let mut ok = 0u64;
    for op in history {
        match (op.process, op.kind) {
            (Process::Nemesis, OpType::Invoke) => f.nemesis_ops += 1,
            (Process::Nemesis, _) | (_, OpType::Invoke) => {}
            (Process::Client(_), kind) => {
                f.client_ops += 1;
                ok += u64::from(kind == OpType::Ok);
                let by_kind = f.ops.entry(op.f.clone()).or_default();
                *by_kind.entry(kind.to_string()).or_default() += 1;
            }
        }
    }
    f.availability = (f.client_ops > 0).then(|| ok as f64 / f.client_ops as f64);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(index: u64, process: Process, kind: OpType, f: &str) -> Op {
        Op {
            index,
            time: index,
            process,
            kind,
            f: f.into(),
            key: Some("k1".into()),
            value: json!(null),
            node: None,
            error: None,
        }
    }

    #[test]
    fn availability_is_the_share_of_completions_that_are_ok() {
        let c = Process::Client;
        let h = vec![
            op(0, c(0), OpType::Invoke, "read"),
            op(1, Process::Nemesis, OpType::Invoke, "kill"),
            op(2, c(0), OpType::Ok, "read"),
            op(3, Process::Nemesis, OpType::Info, "kill"),
            op(4, c(1), OpType::Invoke, "write"),
            op(5, c(1), OpType::Info, "write"),
        ];
        let f = figures(&h);
        assert_eq!((f.client_ops, f.nemesis_ops), (2, 1));
        assert_eq!(f.availability, Some(0.5));
        assert_eq!(f.ops["read"]["ok"], 1);
        assert_eq!(f.ops["write"]["info"], 1);
    }
}
