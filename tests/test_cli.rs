//! The `faultline test` command line: help, bad input, targets from files.

mod support;

use std::io::Write;
use std::time::Duration;
use support::{faultline, run_test};

#[test]
fn help_shows_every_option_with_its_default() {
    let out = faultline().args(["test", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (option, default) in [
        ("--target", "raft-kv"),
        ("--nodes", "5"),
        ("--time-limit", "30"),
        ("--concurrency", "2 per node"),
        ("--rate", "200"),
        ("--keys", "5"),
        ("--op-timeout", "1.5"),
        ("--nemesis", "partition,kill,pause,clock"),
        ("--nemesis-interval", "5"),
        ("--seed", "random"),
        ("--net", "auto"),
        ("--test-count", "1"),
        ("--store", "./store"),
        ("--check-time-limit", "60"),
    ] {
        let block = option_block(&help, option);
        assert!(
            block.contains(default),
            "{option} does not show {default}:\n{help}"
        );
    }
    assert!(option_block(&help, "--bug").contains("default: none"));
}

/// The help text of one option: from its line to the next option's.
fn option_block(help: &str, option: &str) -> String {
    let start = format!("{option} ");
    let mut lines = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(&start));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("{option} missing from:\n{help}"));
    let next_option =
        |l: &str| l.trim_start().starts_with("--") || l.contains("-h, --help");
    let rest = lines.take_while(|l| !next_option(l));
    std::iter::once(first)
        .chain(rest)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn unknown_target_is_an_error() {
    let run = run_test(&["--target", "no-such-target"], Duration::from_secs(30));
    assert_eq!(run.code, 2, "{}", run.output);
    assert!(run.output.contains("raft-kv"), "{}", run.output);
}

#[test]
fn bad_placeholder_in_a_target_file_names_the_file_and_placeholder() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "name = \"x\"\nprotocol = \"raft-kv\"\nbinary = \"@self\"\nargs = [\"{{node}}\"]"
    )
    .unwrap();
    let path = file.path().display().to_string();
    let run = run_test(&["--target", &path], Duration::from_secs(30));
    assert_eq!(run.code, 2, "{}", run.output);
    assert!(
        run.output.contains(&path) && run.output.contains("{node}"),
        "{}",
        run.output
    );
}

#[test]
fn shipped_target_file_runs_like_the_built_in_target() {
    let target = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/targets/raft-kv.toml");
    let run = run_test(
        &[
            "--target",
            target,
            "--nodes",
            "3",
            "--time-limit",
            "3",
            "--nemesis",
            "none",
            "--seed",
            "5",
            "--net",
            "proxy",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(run.code, 0, "{}", run.output);
    let test: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.dir.join("test.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(test["seed"], 5);
    assert!(test["command"].as_str().unwrap().contains("--seed 5"));
    assert!(run.dir.join("nodes/n1/stderr.log").exists());
    assert!(run.dir.join("observations.jsonl").exists());
}

/// Files under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn bad_durations_exit_2_naming_the_option_and_leave_no_state() {
    for (option, value) in [
        ("--time-limit", "-1"),
        ("--time-limit", "inf"),
        ("--op-timeout", "1e30"),
        ("--check-time-limit", "NaN"),
        ("--rate", "-5"),
    ] {
        let run = run_test(&[option, value], Duration::from_secs(30));
        assert_eq!(run.code, 2, "{option} {value}: {}", run.output);
        assert!(
            run.output.contains(&format!("{option} ")) && run.output.contains("expected"),
            "{option} {value}: {}",
            run.output
        );
        assert!(!run.output.contains("panicked"), "{}", run.output);
        let left = files_under(run.store.path());
        assert!(left.is_empty(), "{option} {value} left {left:?}");
    }
}

#[test]
fn setup_failure_creates_no_run_dir_and_leaves_latest_alone() {
    let run = run_test(
        &["--target", "etcd", "--net", "proxy", "--nemesis", "none"],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, 2, "{}", run.output);
    assert!(run.output.contains("netns"), "{}", run.output);
    let left = files_under(run.store.path());
    assert!(left.is_empty(), "left {left:?}");
    assert!(!run.dir.exists(), "store/latest was made");
}

#[test]
fn node_that_exits_at_once_is_reported_with_its_status_and_the_net_it_used() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "name = \"false\"\nprotocol = \"raft-kv\"\nbinary = \"/bin/false\"\nargs = []"
    )
    .unwrap();
    let path = file.path().display().to_string();
    let run = run_test(
        &["--target", &path, "--nodes", "1", "--nemesis", "none"],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 2, "{}", run.output);
    assert!(run.output.contains("exit status: 1"), "{}", run.output);
    assert!(run.output.contains("stderr was empty"), "{}", run.output);
    let test: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.dir.join("test.json")).unwrap(),
    )
    .unwrap();
    let command = test["command"].as_str().unwrap();
    assert!(
        command.contains("--net proxy") || command.contains("--net netns"),
        "{command}"
    );
}
