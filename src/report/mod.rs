//! `faultline report`: one self-contained HTML page that shows a run.
//!
//! The page is written to `RUN_DIR/report.html` and needs no network to be
//! viewed: styles, script and charts (SVG drawn here, in Rust) are inline.
//! It shows the checkers' verdicts, the options and the command that
//! reproduces the run, a timeline of the operations with the faults shaded,
//! each node's role and term over time, latency and throughput, and the
//! evidence behind an invalid verdict.
//!
//! The run directory holds what `faultline test` wrote:
//!
//! | file | content | needed |
//! |---|---|---|
//! | `history.jsonl` | one [`history::Op`] per line | yes |
//! | `observations.jsonl` | one [`history::Observation`] per line | no |
//! | `test.json` | options, seed, command | no |
//! | `results.json` | the checkers' reports | no |
//!
//! `results.json` is read as plain JSON so that a report can be drawn for
//! any run, including one whose checkers were newer or older than this code.
//!
//! # Limits
//!
//! Long runs are aggregated so that the page stays a few megabytes (1.4 MB
//! for 100,000 operations): above [`timeline::DETAILED_SPANS`] operations
//! the timeline shows buckets per lane instead of single operations, the
//! latency scatter keeps one dot per 2×2 cell and kind, and throughput is
//! counted in about 150 buckets. The operations of a counterexample are
//! always drawn one by one. The whole history is read into memory.

mod chart;
mod evidence;
mod leadership;
mod load;
mod metrics;
mod model;
mod page;
mod roles;
mod summary;
mod timeline;

use crate::exit::Outcome;
use anyhow::Context;
use std::path::{Path, PathBuf};

pub use load::Run;

/// Arguments of `faultline report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run directory, such as store/<test>/<timestamp>/, that holds
    /// history.jsonl
    pub run_dir: PathBuf,
}

/// Writes the report and prints its path.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let path = write_report(&args.run_dir)?;
    println!("{}", path.display());
    Ok(Outcome::Valid)
}

/// The run's verdict as `results.json` gives it, or `not checked`.
pub fn run_verdict(run_dir: &Path) -> String {
    let results = std::fs::read_to_string(run_dir.join("results.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null);
    evidence::overall(&results, &evidence::checkers(&results))
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    chart::esc(text)
}

/// Writes `run_dir/report.html` from the files of the run and returns its
/// path. The file is replaced atomically, so a browser never sees half a
/// page.
pub fn write_report(run_dir: &Path) -> anyhow::Result<PathBuf> {
    let run = Run::load(run_dir)?;
    let html = page::render(&run);

    let path = run_dir.join("report.html");
    let partial = run_dir.join(".report.html.partial");
    std::fs::write(&partial, html)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &path)
        .with_context(|| format!("cannot move the report to {}", path.display()))?;
    Ok(path)
}
