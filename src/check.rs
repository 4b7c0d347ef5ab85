//! `faultline check`: checks history files, node observations and stored
//! runs, prints what it found and turns the worst verdict into the exit
//! code.
//!
//! Each input is checked on its own:
//!
//! * a file is a history, checked for linearizability; its format is
//!   detected unless `--format` says it; `-` is stdin;
//! * `--observations FILE` is checked for election safety;
//! * a directory is a stored run: `history.jsonl`, and `observations.jsonl`
//!   when present; its `test.json` may name the model under `"model"`.
//!
//! Without `--model`, a run uses the model of its `test.json` (else
//! `cas-register`) and a file uses `kv` when its operations are `get`,
//! `put` or `append`, else `cas-register`. An input that cannot be read
//! makes the exit code 2 once every other input has been checked. A JSON
//! Lines input whose last line was cut short by a crash is read without it,
//! with a warning on stderr.
//!
//! `--json` prints one object: `{"verdict": "valid" | "invalid" | "unknown"
//! | "error", "checks": [...]}`, each check being `{"kind": "history",
//! "path", "format", "report"}` (a `LinearReport`), `{"kind":
//! "observations", "path", "report"}` (an `ElectionReport`) or `{"kind":
//! "error", "path", "error"}`.

use crate::exit::Outcome;
use anyhow::{anyhow, bail, Context};
use history::election::{self, ElectionReport};
use history::formats::{self, Format};
use history::linear::{self, CheckError, CheckOptions, LinearReport};
use history::model::ModelKind;
use history::{Op, Process, Verdict};
use serde::Serialize;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod print;

#[derive(Debug, clap::Args)]
#[command(
    after_help = AFTER_HELP
)]
pub struct Args {
    /// History files (`-` reads stdin) or stored run directories
    #[arg(value_name = "FILE", required_unless_present = "observations")]
    pub paths: Vec<PathBuf>,
    /// Node observations (JSON Lines) to check for election safety
    #[arg(long, value_name = "FILE")]
    pub observations: Vec<PathBuf>,
    /// Model: register, cas-register or kv [default: from test.json or the
    /// operations]
    #[arg(long, value_parser = clap::value_parser!(ModelKind))]
    pub model: Option<ModelKind>,
    /// History format: auto, jsonl, edn, porcupine-etcd or porcupine-kv
    #[arg(long, default_value = "auto", value_parser = clap::value_parser!(Format))]
    pub format: Format,
    /// Give up on a history after this many seconds (verdict unknown)
    /// [default: none]
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<f64>,
    /// Give up on a history past this much memory, in MiB (verdict unknown)
    /// [default: 4096]
    #[arg(long, value_name = "MB")]
    pub memory_limit: Option<usize>,
    /// Initial state of every key, as JSON (text that is not JSON is a
    /// string) [default: null for registers, "" for kv]
    #[arg(long, value_name = "VALUE")]
    pub initial: Option<String>,
    /// Print one JSON object instead of the summary
    #[arg(long)]
    pub json: bool,
}

const AFTER_HELP: &str = "\
Observations are JSON Lines, one role report per line:
  {\"time\": 2130000000, \"node\": \"n2\", \"term\": 7, \"role\": \"leader\"}
with time in nanoseconds, role leader, follower or candidate, and an optional
\"leader\" hint. Lines whose \"observation\" field is not \"role\" are skipped.

A run directory (what `faultline test` stores) must hold history.jsonl; its
observations.jsonl is checked when present, and its test.json may name the
model under \"model\".

Exit codes: 0 valid, 1 invalid, 2 error (usage, bad input), 3 unknown (a
checker ran out of time or memory)";

/// What one input gave.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Checked {
    History {
        path: String,
        format: String,
        report: LinearReport,
    },
    Observations {
        path: String,
        report: ElectionReport,
    },
    Error {
        path: String,
        error: String,
    },
}

impl Checked {
    fn outcome(&self) -> Option<Outcome> {
        let verdict = match self {
            Checked::History { report, .. } => report.verdict,
            Checked::Observations { report, .. } => report.verdict,
            Checked::Error { .. } => return None,
        };
        Some(match verdict {
            Verdict::Valid => Outcome::Valid,
            Verdict::Invalid => Outcome::Invalid,
            Verdict::Unknown => Outcome::Unknown,
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let opts = options(&args)?;
    let mut results = Vec::new();
    for path in &args.paths {
        if path != Path::new("-") && path.is_dir() {
            check_run(path, &args, &opts, &mut results);
        } else {
            let model = args.model;
            results.push(checked(
                path,
                check_history(path, args.format, model, &opts),
            ));
        }
    }
    for path in &args.observations {
        results.push(checked(path, check_observations(path)));
    }

    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            Checked::Error { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect();
    let outcome = results.iter().filter_map(Checked::outcome).max();

    if args.json {
        let verdict = match (errors.is_empty(), outcome) {
            (false, _) => "error",
            (true, Some(Outcome::Invalid)) => "invalid",
            (true, Some(Outcome::Unknown)) => "unknown",
            (true, _) => "valid",
        };
        let all = serde_json::json!({ "verdict": verdict, "checks": results });
        print::to_stdout(&format!("{all}\n"))?;
    } else {
        let mut out = String::new();
        for r in &results {
            print::checked(&mut out, r);
        }
        print::to_stdout(&out)?;
    }

    match errors.as_slice() {
        [] => Ok(outcome.unwrap_or(Outcome::Valid)),
        [one] => Err(anyhow!("{one}")),
        many => Err(anyhow!(
            "{} inputs could not be checked:\n  {}",
            many.len(),
            many.join("\n  ")
        )),
    }
}

/// Checker options from the flags shared by every history.
fn options(args: &Args) -> anyhow::Result<CheckOptions> {
    let mut opts = CheckOptions::default();
    if let Some(secs) = args.time_limit {
        opts.time_limit = Some(Duration::try_from_secs_f64(secs).map_err(|_| {
            anyhow!("expected --time-limit in seconds, at least 0, found {secs}")
        })?);
    }
    if let Some(mb) = args.memory_limit {
        let too_large =
            || anyhow!("expected --memory-limit in MiB, found {mb}, too large");
        opts.memory_limit = mb.checked_mul(1 << 20).ok_or_else(too_large)?;
    }
    // `--initial 3` is the number 3; `--initial abc` is the string "abc".
    let json_or_string =
        |text: &String| serde_json::from_str(text).unwrap_or(Value::String(text.clone()));
    opts.initial = args.initial.as_ref().map(json_or_string);
    Ok(opts)
}

fn checked(path: &Path, result: anyhow::Result<Checked>) -> Checked {
    result.unwrap_or_else(|e| Checked::Error {
        path: path.display().to_string(),
        error: format!("{e:#}"),
    })
}

fn check_history(
    path: &Path,
    format: Format,
    model: Option<ModelKind>,
    opts: &CheckOptions,
) -> anyhow::Result<Checked> {
    let text = read_input(path)
        .with_context(|| format!("{}: cannot read the history", name(path)))?;
    let origin = name(path);
    let format = match format {
        Format::Auto => Format::detect(&text).unwrap_or(Format::Auto),
        other => other,
    };
    if format == Format::Jsonl {
        warn_cut_short(&origin, &text);
    }
    let (history, lines) = formats::read_str_numbered(&text, format, &origin)?;
    let opts = CheckOptions {
        model: model.unwrap_or_else(|| infer_model(&history)),
        ..opts.clone()
    };
    let report = linear::check(&history, &opts).map_err(|e| {
        // Point at the operation's line when the complaint names one.
        let line = match &e {
            CheckError::Model { index, .. } => history
                .iter()
                .position(|op| op.index == *index)
                .and_then(|p| lines.get(p)),
            _ => None,
        };
        match line {
            Some(line) => anyhow!("{origin}:{line}: {e}"),
            None => anyhow!("{origin}: {e}"),
        }
    })?;
    Ok(Checked::History {
        path: origin,
        format: format.to_string(),
        report,
    })
}

/// `kv` for histories of `get`, `put` and `append`, else `cas-register`,
/// which also covers plain registers.
fn infer_model(history: &[Op]) -> ModelKind {
    let kv = history
        .iter()
        .filter(|op| op.process != Process::Nemesis)
        .any(|op| matches!(op.f.as_str(), "get" | "put" | "append"));
    if kv {
        ModelKind::Kv
    } else {
        ModelKind::CasRegister
    }
}

fn check_observations(path: &Path) -> anyhow::Result<Checked> {
    let origin = name(path);
    let text = read_input(path)
        .with_context(|| format!("{origin}: cannot read the observations"))?;
    warn_cut_short(&origin, &text);
    let (obs, lines) =
        election::parse_observations(&text).map_err(|e| e.in_file(&origin))?;
    Ok(Checked::Observations {
        path: origin,
        report: election::check_numbered(&obs, &lines),
    })
}

/// The whole of a file, or of stdin for `-`.
fn read_input(path: &Path) -> std::io::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}

/// How an input is named in messages: its path, `stdin` for `-`.
fn name(path: &Path) -> String {
    if path == Path::new("-") {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

/// The readers drop a last line cut short (the writer crashed while
/// writing it); say so on stderr.
fn warn_cut_short(origin: &str, text: &str) {
    if let Some(line) = history::formats::jsonl::cut_short_line(text) {
        eprintln!(
            "warning: {origin}:{line}: last line is cut short (a write interrupted by a \
             crash?); ignored"
        );
    }
}

/// A stored run: its history, its observations when present, and the
/// model named by its `test.json`.
fn check_run(dir: &Path, args: &Args, opts: &CheckOptions, results: &mut Vec<Checked>) {
    let history = dir.join("history.jsonl");
    let model = match args.model {
        Some(m) => Ok(m),
        None => run_model(dir),
    };
    results.push(checked(
        &history,
        model.and_then(|m| {
            if !history.is_file() {
                bail!(
                    "{}: expected a stored run with a history.jsonl",
                    dir.display()
                );
            }
            check_history(&history, Format::Jsonl, Some(m), opts)
        }),
    ));
    let observations = dir.join("observations.jsonl");
    if observations.is_file() {
        results.push(checked(&observations, check_observations(&observations)));
    }
}

/// The model named in a run's `test.json`, `cas-register` when it has none.
fn run_model(dir: &Path) -> anyhow::Result<ModelKind> {
    let path = dir.join("test.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(ModelKind::CasRegister);
    };
    let test: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}:{}: expected a JSON object: {e}",
            path.display(),
            e.line()
        )
    })?;
    match test.get("model") {
        None | Some(Value::Null) => Ok(ModelKind::CasRegister),
        Some(Value::String(name)) => name
            .parse()
            .map_err(|e: String| anyhow!("{}: \"model\": {e}", path.display())),
        Some(other) => bail!(
            "{}: expected \"model\" to be a string such as \"cas-register\", found {other}",
            path.display()
        ),
    }
}
