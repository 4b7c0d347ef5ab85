//! The raft-kv binary refuses bad command lines with exit code 2 and a
//! message saying what it expected, instead of starting a node.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Runs node n1 with `extra` options; returns the exit code and stderr,
/// or fails the test if the node starts and keeps running.
fn run(id: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
        .args(["--id", id, "--data-dir"])
        .arg(dir.path())
        .args(["--client-addr", &free_addr(), "--peer-addr", &free_addr()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("raft-kv started with {id:?} {extra:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

#[test]
fn bad_peers_ids_and_timings_exit_2_with_a_message() {
    let cases: [(&str, &[&str], &str); 6] = [
        ("n1", &["--peer", "n2=127.0.0.1"], r#"found "n2=127.0.0.1""#),
        ("n1", &["--peer", "n2=notaddr"], r#"expected ID=HOST:PORT"#),
        (
            "n1",
            &["--peer", "n2=127.0.0.1:1", "--peer", "n2=127.0.0.1:2"],
            r#"--peer: expected each peer once, found "n2" twice"#,
        ),
        ("n1", &["--peer", "n1=127.0.0.1:1"], "this node's own id"),
        ("", &[], "expected a node id"),
        (
            "n1",
            &["--heartbeat", "1000"],
            "--heartbeat: expected less than",
        ),
    ];
    for (id, extra, message) in cases {
        let (code, stderr) = run(id, extra);
        assert_eq!(code, 2, "{id:?} {extra:?}: {stderr}");
        assert!(stderr.contains(message), "{id:?} {extra:?}: {stderr}");
    }
}
