//! Running `faultline test` as a child process, bounded in time, in a
//! store of its own.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The faultline binary built for these tests.
pub fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

/// A finished `faultline test`.
pub struct Run {
    pub code: i32,
    pub output: String,
    /// The run directory (`store/latest`).
    pub dir: PathBuf,
    pub store: tempfile::TempDir,
}

impl Run {
    /// `results.json` of the run.
    pub fn results(&self) -> Value {
        let path = self.dir.join("results.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("no {}: {e}\n{}", path.display(), self.output));
        serde_json::from_str(&text).expect("results.json is JSON")
    }

    /// The verdict a checker gave: `linearizable` or `election-safety`.
    pub fn checker(&self, name: &str) -> String {
        self.results()["checkers"][name]
            .as_str()
            .unwrap_or("missing")
            .to_string()
    }
}

/// A `faultline test` command with its store and state dir in a fresh
/// temporary directory.
pub fn test_command(args: &[&str]) -> (Command, tempfile::TempDir) {
    let store = tempfile::tempdir().expect("temporary store");
    let mut cmd = faultline();
    cmd.arg("test")
        .args(args)
        .arg("--store")
        .arg(store.path().join("store"))
        .env("FAULTLINE_STATE_DIR", store.path().join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    (cmd, store)
}

/// Runs `faultline test ARGS` to the end, killing it after `limit`.
pub fn run_test(args: &[&str], limit: Duration) -> Run {
    let (mut cmd, store) = test_command(args);
    let child = cmd.spawn().expect("faultline starts");
    let (code, output) = wait_bounded(child, limit);
    let dir = store.path().join("store").join("latest");
    Run {
        code,
        output,
        dir,
        store,
    }
}

/// Waits for a child at most `limit`; kills it and panics past that.
pub fn wait_bounded(mut child: Child, limit: Duration) -> (i32, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for faultline") {
            let output = child.wait_with_output().expect("faultline output");
            let text = String::from_utf8_lossy(&output.stdout).to_string()
                + &String::from_utf8_lossy(&output.stderr);
            return (status.code().unwrap_or(-1), text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("faultline test did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of processes whose command line mentions `path`.
pub fn processes_mentioning(path: &Path) -> Vec<u32> {
    let needle = path.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline =
                std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(&needle)
        })
        .collect()
}

/// Whether libfaketime is installed; when it is not, a test must fail in
/// CI and be skipped elsewhere.
pub fn has_libfaketime() -> bool {
    nemesis::clock::libfaketime_path().is_some()
}

/// Fails under `CI=true`, else prints that the test is skipped.
pub fn skip_or_fail(what: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("needs {what}, which is missing in CI");
    }
    println!("skipped: needs {what}");
}
