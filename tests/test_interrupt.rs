//! Ctrl-C during `faultline test`: every node stops, and the history
//! recorded so far is on disk and readable.

mod support;

use history::formats::{read_path, Format};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use support::{processes_mentioning, test_command, wait_bounded};

#[test]
fn interrupt_stops_every_node_and_keeps_a_readable_history() {
    let (mut cmd, store) = test_command(&[
        "--nodes",
        "3",
        "--time-limit",
        "60",
        "--nemesis",
        "partition,kill,pause",
        "--nemesis-interval",
        "1",
        "--seed",
        "3",
    ]);
    let child = cmd.spawn().expect("faultline starts");
    let history_path = store
        .path()
        .join("store")
        .join("latest")
        .join("history.jsonl");

    // Wait until clients have recorded something, with nodes running.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&history_path).map_or(0, |m| m.len()) < 20_000 {
        assert!(
            Instant::now() < deadline,
            "no history was recorded within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let store_path = store.path().to_path_buf();
    let nodes = processes_mentioning(&store_path.join("store"));
    assert!(nodes.len() >= 3, "expected node processes, found {nodes:?}");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let (code, output) = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(code, 2, "an interrupted run exits 2:\n{output}");

    let left = processes_mentioning(&store_path.join("store"));
    assert!(left.is_empty(), "processes left behind: {left:?}\n{output}");
    let history =
        read_path(&history_path, Format::Jsonl).expect("history.jsonl is readable");
    assert!(history.len() > 100, "only {} operations", history.len());
    assert!(!store.path().join("store/latest/results.json").exists());
}
