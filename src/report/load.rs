//! Reading a run directory into memory, with errors that name the file and
//! the line at fault.

use anyhow::{bail, Context};
use history::{Observation, Op};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Everything a report is drawn from.
#[derive(Debug)]
pub struct Run {
    pub dir: PathBuf,
    /// `test.json`, or `null` when missing.
    pub test: Value,
    pub history: Vec<Op>,
    pub observations: Vec<Observation>,
    /// `results.json`, or `null` when the run was not checked.
    pub results: Value,
}

impl Run {
    /// Reads the run in `dir`. Only `history.jsonl` is required.
    pub fn load(dir: &Path) -> anyhow::Result<Run> {
        if !dir.is_dir() {
            bail!(
                "{} is not a directory; expected a run directory holding history.jsonl",
                dir.display()
            );
        }
        let history_path = dir.join("history.jsonl");
        if !history_path.is_file() {
            bail!(
                "{} has no history.jsonl; expected a run directory written by \
                 `faultline test`",
                dir.display()
            );
        }

        let history = read_jsonl(&history_path)?;
        let observations_path = dir.join("observations.jsonl");
        let observations = if observations_path.is_file() {
            read_jsonl(&observations_path)?
        } else {
            Vec::new()
        };

        Ok(Run {
            dir: dir.to_path_buf(),
            test: read_json(&dir.join("test.json"))?,
            history,
            observations,
            results: read_json(&dir.join("results.json"))?,
        })
    }

    /// The name to show: the test's name, else the last two path components
    /// (`<test>/<timestamp>`).
    pub fn title(&self) -> String {
        for key in ["name", "test"] {
            if let Some(name) = self.test.get(key).and_then(Value::as_str) {
                return name.to_string();
            }
        }
        let parts: Vec<_> = self
            .dir
            .components()
            .rev()
            .take(2)
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        parts.into_iter().rev().collect::<Vec<_>>().join("/")
    }
}

/// Reads one JSON value per non-blank line.
fn read_jsonl<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut items = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str(&line).with_context(|| {
            format!("{}:{}: not a valid entry", path.display(), number + 1)
        })?;
        items.push(item);
    }
    Ok(items)
}

/// Reads a JSON file, or gives `null` when it does not exist.
fn read_json(path: &Path) -> anyhow::Result<Value> {
    if !path.exists() {
        return Ok(Value::Null);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not valid JSON; expected one JSON object",
            path.display()
        )
    })
}
