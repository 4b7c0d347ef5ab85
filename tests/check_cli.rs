//! `faultline check` as a user runs it: the built binary on small histories,
//! observations and stored runs, judged by exit code and output.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("check")
        .args(args)
        .output()
        .expect("the faultline binary runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("faultline exits with a code")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn op(index: u64, process: u64, kind: &str, f: &str, value: &str) -> String {
    format!(
        "{{\"index\":{index},\"time\":{},\"process\":{process},\"type\":\"{kind}\",\
         \"f\":\"{f}\",\"value\":{value}}}\n",
        index * 100
    )
}

/// Process 0 writes 1, then process 1 reads `read`.
fn write_then_read(read: &str) -> String {
    [
        op(0, 0, "invoke", "write", "1"),
        op(1, 0, "ok", "write", "1"),
        op(2, 1, "invoke", "read", "null"),
        op(3, 1, "ok", "read", read),
    ]
    .concat()
}

const SPLIT_BRAIN: &str = "\
{\"time\": 1000000000, \"node\": \"n1\", \"term\": 3, \"role\": \"leader\"}
{\"time\": 2000000000, \"node\": \"n2\", \"term\": 3, \"role\": \"follower\", \"leader\": \"n1\"}
{\"time\": 3000000000, \"node\": \"n3\", \"term\": 3, \"role\": \"leader\"}
";

#[test]
fn linearizable_history_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "history.jsonl", &write_then_read("1"));
    let out = faultline(&[&path]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("history.jsonl: valid"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn stale_read_exits_1_with_the_counterexample_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "history.jsonl", &write_then_read("null"));
    let out = faultline(&[&path]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("history.jsonl: invalid"), "{text}");
    let table = "
      process type   f     key value index
      0       invoke write -   1     0
      0       ok     write -   1     1
      1       invoke read  -   null  2*
      1       ok     read  -   null  3
    could not place: index 2
    possible states before it: 1
";
    assert!(text.contains(table), "{text}");
}

#[test]
fn bad_input_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = op(0, 0, "invoke", "read", "null") + &op(1, 0, "done", "read", "null");
    let path = write(dir.path(), "bad.jsonl", &text);
    let out = faultline(&[&path]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(
            "bad.jsonl:2: expected \"type\" to be one of invoke, ok, fail, info, found \"done\""
        ),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unpaired_edn_history_exits_2_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        "[{:process 0, :type :invoke, :f :read}\n {:process 0, :type :invoke, :f :read}]";
    let path = write(dir.path(), "history.edn", text);
    let out = faultline(&[&path]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("history.edn:2: operation 1: process 0 invokes again"));
}

#[test]
fn split_brain_observations_exit_1_with_the_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "observations.jsonl", SPLIT_BRAIN);
    let out = faultline(&["--observations", &path]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("split brain in term 3: leaders n1, n3"),
        "{text}"
    );
    assert!(text.contains("line 3"), "{text}");
}

#[test]
fn the_worst_outcome_decides_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.jsonl", &write_then_read("1"));
    let bad = write(dir.path(), "stale.jsonl", &write_then_read("null"));
    assert_eq!(code(&faultline(&[&good, &bad])), 1);
    let missing = dir.path().join("missing.jsonl").display().to_string();
    let out = faultline(&[&good, &bad, &missing]);
    assert_eq!(code(&out), 2);
    assert!(
        stdout(&out).contains("stale.jsonl: invalid"),
        "the others are still checked"
    );
}

#[test]
fn json_output_is_one_object_with_a_report_per_input() {
    let dir = tempfile::tempdir().unwrap();
    let history = write(dir.path(), "h.jsonl", &write_then_read("null"));
    let obs = write(dir.path(), "o.jsonl", SPLIT_BRAIN);
    let out = faultline(&["--json", &history, "--observations", &obs]);
    assert_eq!(code(&out), 1);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(v["verdict"], "invalid");
    assert_eq!(v["checks"][0]["kind"], "history");
    assert_eq!(
        v["checks"][0]["report"]["keys"][0]["counterexample"]["stuck"][0],
        2
    );
    assert_eq!(v["checks"][1]["report"]["violations"][0]["term"], 3);
}

#[test]
fn stored_run_uses_the_model_named_in_test_json() {
    let dir = tempfile::tempdir().unwrap();
    let history = [
        op(0, 0, "invoke", "put", "\"x\""),
        op(1, 0, "ok", "put", "\"x\""),
        op(2, 1, "invoke", "get", "null"),
        op(3, 1, "ok", "get", "\"x\""),
    ]
    .concat();
    write(dir.path(), "history.jsonl", &history);
    write(dir.path(), "test.json", "{\"model\": \"kv\", \"seed\": 7}");
    write(dir.path(), "observations.jsonl", SPLIT_BRAIN);
    let run = dir.path().display().to_string();
    let out = faultline(&["--json", &run]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["checks"][0]["report"]["model"], "kv");
    assert_eq!(v["checks"][0]["report"]["verdict"], "valid");
    assert_eq!(v["checks"][1]["kind"], "observations");
    assert_eq!(code(&out), 1, "the split brain in the run decides");

    write(dir.path(), "test.json", "{\"model\": \"cas-register\"}");
    let out = faultline(&[&run]);
    assert_eq!(code(&out), 2, "a cas-register has no put");
    assert!(
        stderr(&out).contains("history.jsonl:1: operation 0"),
        "{}",
        stderr(&out)
    );

    write(dir.path(), "test.json", "{\"model\": \"queue\"}");
    let out = faultline(&[&run]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("expected a model"),
        "{}",
        stderr(&out)
    );
}

/// A sample of Porcupine's corpus gets the verdicts its manifest expects.
#[test]
fn porcupine_files_get_the_manifest_verdicts() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/histories/porcupine");
    let Ok(manifest) = std::fs::read_to_string(dir.join("MANIFEST.tsv")) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the corpus is missing"
        );
        println!("skipped: needs ../shared/histories/porcupine");
        return;
    };
    let sample = [
        "jepsen/etcd_000.log",
        "jepsen/etcd_005.log",
        "jepsen/etcd_101.log",
        "kv/c01-ok.txt",
        "kv/c10-bad.txt",
    ];
    for row in manifest
        .lines()
        .filter(|r| sample.iter().any(|s| r.starts_with(s)))
    {
        let cols: Vec<&str> = row.split('\t').collect();
        let path = dir.join(cols[0]).display().to_string();
        let out = faultline(&[&path]);
        let expected = if cols[4] == "linearizable" { 0 } else { 1 };
        assert_eq!(
            code(&out),
            expected,
            "{}: {}{}",
            cols[0],
            stdout(&out),
            stderr(&out)
        );
    }
}

/// Thirty concurrent writes, then two reads that disagree although nothing
/// runs any more: deciding it takes far more search than 1 ms allows.
#[test]
fn running_out_of_time_exits_3_with_the_reason() {
    let n = 30;
    let mut text = String::new();
    for p in 0..n {
        text += &op(p, p, "invoke", "write", &p.to_string());
    }
    for p in 0..n {
        text += &op(n + p, p, "ok", "write", &p.to_string());
    }
    text += &op(2 * n, 100, "invoke", "read", "null");
    text += &op(2 * n + 1, 100, "ok", "read", "0");
    text += &op(2 * n + 2, 100, "invoke", "read", "null");
    text += &op(2 * n + 3, 100, "ok", "read", "1");
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "hard.jsonl", &text);
    let out = faultline(&["--time-limit", "0.001", &path]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("time limit"), "{}", stdout(&out));
}

#[test]
fn long_values_are_cut_short_regression_format_width_crash() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("\"{}\"", "x".repeat(65536));
    let path = write(dir.path(), "long.jsonl", &write_then_read(&long));
    let out = faultline(&[&path]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() < 300), "{text}");
}

#[test]
fn closed_stdout_keeps_the_verdict_regression_broken_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "history.jsonl", &write_then_read("null"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["check", &path])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the verdict is printed, like `| head -0`.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn a_bad_completion_value_names_the_completion_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        op(0, 0, "invoke", "write", "1"),
        op(1, 0, "ok", "write", "2"),
    ]
    .concat();
    let path = write(dir.path(), "history.jsonl", &text);
    let out = faultline(&[&path]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(
            "history.jsonl:2: operation 1: write completed with 2 but was invoked with 1"
        ),
        "{err}"
    );
}

#[test]
fn a_get_returning_a_number_names_the_completion_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        op(0, 0, "invoke", "get", "null"),
        op(1, 0, "ok", "get", "3"),
    ]
    .concat();
    let path = write(dir.path(), "history.jsonl", &text);
    let out = faultline(&[&path]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("history.jsonl:2: operation 1: get expects"),
        "{err}"
    );
}

#[test]
fn a_cut_short_last_line_is_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let text = write_then_read("1") + "{\"index\":4,\"ti";
    let path = write(dir.path(), "history.jsonl", &text);
    let out = faultline(&[&path]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "warning: {path}:5: last line is cut short (a write interrupted by a crash?); ignored"
                .replace("{path}", &path)
                .as_str()
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn observations_skip_raft_kv_apply_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\
{\"observation\":\"role\",\"time\":17,\"node\":\"n2\",\"term\":3,\"role\":\"leader\"}
{\"observation\":\"apply\",\"time\":18,\"node\":\"n1\",\"index\":3,\"term\":1,\"digest\":\"ab\"}
";
    let path = write(dir.path(), "observations.jsonl", text);
    let out = faultline(&["--observations", &path]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("1 observation,"), "{}", stdout(&out));
}

#[test]
fn observation_errors_name_the_line_once_without_serde_noise() {
    let dir = tempfile::tempdir().unwrap();
    let text = "{\"time\":1,\"node\":\"n1\",\"term\":1,\"role\":\"boss\"}\n";
    let path = write(dir.path(), "observations.jsonl", text);
    let out = faultline(&["--observations", &path]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert_eq!(
        err.trim(),
        format!(
            "error: {path}:1: expected \"role\" to be one of leader, follower, candidate, \
             found \"boss\""
        ),
    );
}

#[test]
fn a_dash_reads_the_history_from_stdin() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["check", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let history = write_then_read("null");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(history.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).starts_with("stdin: invalid"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_history_starting_with_a_byte_order_mark_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bom.jsonl",
        &format!("\u{feff}{}", write_then_read("1")),
    );
    let out = faultline(&[&path]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
}
