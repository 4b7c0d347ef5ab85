//! `faultline report` on synthetic runs: what the page shows, that history
//! strings are escaped, that long runs stay small, and that bad input gives
//! a clear error and exit code 2.

#[path = "report_support/fixture.rs"]
mod fixture;

use std::path::Path;
use std::process::{Command, Output};

fn report(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("report")
        .arg(dir)
        .output()
        .expect("faultline runs")
}

fn rendered(dir: &Path) -> String {
    let out = report(dir);
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        printed.trim(),
        dir.join("report.html").display().to_string()
    );
    std::fs::read_to_string(dir.join("report.html")).unwrap()
}

#[test]
fn report_of_an_invalid_run_shows_verdicts_charts_and_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture::write_run(dir.path(), 3000, 7);
    let html = rendered(dir.path());

    for id in [
        "timeline",
        "leadership",
        "latency",
        "throughput",
        "evidence",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\"")),
            "no section {id}"
        );
    }
    assert!(html.contains("class=\"big v-invalid\">invalid<"));
    assert!(html.contains("<pre class=\"cmd\">faultline test --target raft-kv"));
    assert!(html.contains(
        "<p class=\"name\">election-safety</p><p class=\"verdict c-invalid\">"
    ));
    assert!(
        html.contains("<span>longest without leader</span> 900.0 ms"),
        "report facts"
    );
    assert!(html.contains(&fixture.explanation));
    assert!(html.contains("Term 4: 2 leaders at once (n1, n4)"));
    assert!(
        html.contains("class=\"splitmark\""),
        "split brain not marked on the chart"
    );
    assert!(html.contains("class=\"leader split\""));
    assert!(html.contains("n2: term went back from 5 to 2"));
    assert!(html.contains(&format!(
        "<tr class=\"stuck\"><td>{}</td>",
        fixture.stuck_index
    )));
    // Few enough operations to draw one by one, each with its tooltip.
    assert!(html.matches("<rect class=\"op ").count() >= fixture.client_ops);
}

#[test]
fn strings_from_the_run_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    fixture::write_run(dir.path(), 1000, 3);
    let html = rendered(dir.path());

    assert!(!html.contains(fixture::HOSTILE));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert_eq!(
        html.matches("<script>").count(),
        2,
        "only the page's own scripts"
    );
}

#[test]
fn report_of_100k_operations_stays_under_4_mb_and_keeps_the_counterexample() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture::write_run(dir.path(), 100_000, 11);
    let html = rendered(dir.path());

    let size = html.len();
    eprintln!("report of {} operations: {size} bytes", fixture.client_ops);
    assert!(size < 4_000_000, "report is {size} bytes");
    assert!(
        html.contains("so each lane shows buckets"),
        "long run not aggregated"
    );
    let outlined = html.matches("class=\"op ok cx\"").count();
    assert!(
        outlined >= 3,
        "counterexample operations dropped: {outlined} drawn"
    );
}

#[test]
fn missing_run_dir_exits_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = report(&dir.path().join("nope"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not a directory; expected a run directory"),
        "{stderr}"
    );

    let out = report(dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no history.jsonl"));
}

#[test]
fn malformed_history_line_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","value":null}"#;
    std::fs::write(
        dir.path().join("history.jsonl"),
        format!("{good}\n{{oops\n"),
    )
    .unwrap();
    let out = report(dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("history.jsonl:2: not a valid entry"),
        "{stderr}"
    );
}

#[test]
fn run_without_results_or_observations_still_renders() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"index":0,"time":1000,"process":0,"type":"invoke","f":"write","value":1}"#,
        r#"{"index":1,"time":5000000,"process":0,"type":"ok","f":"write","value":1}"#,
    ];
    std::fs::write(dir.path().join("history.jsonl"), lines.join("\n")).unwrap();
    let html = rendered(dir.path());
    assert!(html.contains("it was not checked"));
    assert!(html.contains("no observations recorded"));
}
