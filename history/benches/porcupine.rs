//! Benchmark against Porcupine on its own test corpus.
//!
//! `cargo bench -p faultline-history --bench porcupine` checks every file of
//! `shared/histories/porcupine` and prints, per file: operations, our
//! verdict, the expected verdict, our median check time (parsing excluded,
//! as in Porcupine's baseline), Porcupine's median time, and the peak RSS of
//! a fresh process that reads and checks only that file against Porcupine's.
//! Verdict times use [`decide`] (verdicts only, like Porcupine); the
//! `evid_ms` column is [`check`], which also shrinks counterexamples. Then
//! the totals, the speedup, and every key of `kv/c50-bad.txt` on its
//! own. Exits non-zero if a verdict disagrees with the manifest.
//!
//! The RSS is measured by running this binary again as
//! `porcupine --child FILE`, which reads and checks the file once and prints
//! `VmHWM` from `/proc/self/status`.

use history::formats::porcupine::{read_etcd, read_kv};
use history::linear::{check, decide, CheckOptions, LinearReport};
use history::model::ModelKind;
use history::{Op, Verdict};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/histories/porcupine")
}

fn load(file: &str) -> (Vec<Op>, CheckOptions) {
    let text = std::fs::read_to_string(corpus().join(file)).expect("corpus file");
    let kv = file.starts_with("kv/");
    let parsed = if kv { read_kv(&text) } else { read_etcd(&text) };
    let (history, _) = parsed.unwrap_or_else(|e| panic!("{file}: {e}"));
    let model = if kv {
        ModelKind::Kv
    } else {
        ModelKind::CasRegister
    };
    let opts = CheckOptions {
        model,
        ..CheckOptions::default()
    };
    (history, opts)
}

fn run(history: &[Op], opts: &CheckOptions, evidence: bool) -> LinearReport {
    let report = if evidence {
        check(history, opts)
    } else {
        decide(history, opts)
    };
    report.expect("corpus histories are well-formed")
}

/// Median time of several checks: at least 3, more while under 0.5 s; a
/// single one when it takes over 2 s.
fn time(history: &[Op], opts: &CheckOptions, evidence: bool) -> (LinearReport, f64) {
    let started = Instant::now();
    let report = run(history, opts, evidence);
    let first = started.elapsed().as_secs_f64() * 1000.0;
    if first > 2000.0 {
        return (report, first);
    }
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 3
        || (times.len() < 15 && started.elapsed() < Duration::from_millis(500))
    {
        let t = Instant::now();
        run(history, opts, evidence);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (report, times[times.len() / 2])
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn child_rss(file: &str) -> u64 {
    let me = std::env::current_exe().expect("own path");
    let out = Command::new(me)
        .args(["--child", file])
        .output()
        .expect("child runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn table(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("table");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    lines
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split('\t').map(String::from))
                .collect()
        })
        .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let (history, opts) = load(&args[at + 1]);
        run(&history, &opts, true);
        println!("{}", peak_rss_kb());
        return ExitCode::SUCCESS;
    }

    // `--c50` skips the corpus table, for a quick look at the hardest file.
    let manifest = if args.iter().any(|a| a == "--c50") {
        Vec::new()
    } else {
        table(&corpus().join("MANIFEST.tsv"))
    };
    let baseline: HashMap<String, HashMap<String, String>> =
        table(&corpus().join("BASELINE.tsv"))
            .into_iter()
            .map(|row| (row["file"].clone(), row))
            .collect();
    let number = |row: &HashMap<String, String>, col: &str| -> f64 {
        row.get(col).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    };

    println!(
        "{:<22} {:>5} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "file",
        "ops",
        "ours",
        "expected",
        "ours_ms",
        "porc_ms",
        "evid_ms",
        "rss_kb",
        "porc_kb"
    );
    let (mut ours_total, mut theirs_total, mut disagree, mut fatter) = (0.0, 0.0, 0, 0);
    let mut evidence_total = 0.0;
    for row in &manifest {
        let file = &row["file"];
        let (history, opts) = load(file);
        let (report, ms) = time(&history, &opts, false);
        let (_, with_evidence) = time(&history, &opts, true);
        let expected = match row["expected"].as_str() {
            "linearizable" => Verdict::Valid,
            _ => Verdict::Invalid,
        };
        disagree += usize::from(report.verdict != expected);
        // The empty etcd_095 has no baseline: Porcupine has no test for it.
        let empty = HashMap::new();
        let base = baseline.get(file).unwrap_or(&empty);
        let (theirs, their_rss) = (number(base, "median_ms"), number(base, "max_rss_kb"));
        let rss = child_rss(file);
        fatter += usize::from(their_rss > 0.0 && rss as f64 > their_rss);
        ours_total += ms;
        evidence_total += with_evidence;
        theirs_total += theirs;
        println!(
            "{:<22} {:>5} {:>8} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>8} {:>8}",
            file,
            row["ops"],
            report.verdict,
            expected,
            ms,
            theirs,
            with_evidence,
            rss,
            their_rss
        );
    }
    println!(
        "total: ours {ours_total:.1} ms, Porcupine {theirs_total:.1} ms, speedup {:.1}x; \
         with evidence {evidence_total:.1} ms; verdicts disagreeing: {disagree}; \
         files above Porcupine's RSS: {fatter}",
        theirs_total / ours_total
    );

    println!("\nkv/c50-bad.txt, each key on its own:");
    let (history, mut opts) = load("kv/c50-bad.txt");
    opts.time_limit = Some(Duration::from_secs(60));
    let mut keys: Vec<String> = history.iter().filter_map(|op| op.key.clone()).collect();
    keys.sort();
    keys.dedup();
    let only = args
        .iter()
        .position(|a| a == "--key")
        .map(|at| args[at + 1].clone());
    for key in keys
        .into_iter()
        .filter(|k| only.as_ref().is_none_or(|o| o == k))
    {
        let one: Vec<Op> = history
            .iter()
            .filter(|op| op.key.as_ref() == Some(&key))
            .cloned()
            .collect();
        let (report, ms) = time(&one, &opts, false);
        let k = &report.keys[0];
        let reason = match (&k.reason, &k.counterexample) {
            (Some(r), _) => r.clone(),
            (None, Some(c)) => format!("{} entries: {}", c.ops.len(), c.explanation),
            (None, None) => String::new(),
        };
        println!("key {key}: {:>8} {:>9.3} ms {reason}", report.verdict, ms);
    }

    if disagree > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
