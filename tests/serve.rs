//! `faultline serve` over loopback: the run list, reports written on
//! demand, files as text, paths that try to leave the store, and the
//! refusal to listen beyond loopback without `--allow-remote`.

#[path = "report_support/fixture.rs"]
mod fixture;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The server process; stopped when dropped, even if a test panics.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(store: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--bind", "127.0.0.1:0", "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .spawn()
        .expect("faultline runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.trim().strip_suffix('/'))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server { child, addr }
}

/// Sends one GET and returns the status code and the body.
fn get(server: &Server, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

/// A folder holding `store/` with two runs, and `secret.txt` beside it.
struct Layout {
    base: tempfile::TempDir,
}

impl Layout {
    fn store(&self) -> std::path::PathBuf {
        self.base.path().join("store")
    }
}

fn store_with_two_runs() -> Layout {
    let base = tempfile::tempdir().unwrap();
    std::fs::write(base.path().join("secret.txt"), "secret").unwrap();
    let store = base.path().join("store");
    let old = store.join("register/20261204T100000Z");
    let new = store.join("register/20261204T120000Z");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&new).unwrap();
    fixture::write_run(&new, 400, 1);
    std::fs::write(old.join("history.jsonl"), "").unwrap();
    std::fs::write(old.join("results.json"), r#"{"verdict": "valid"}"#).unwrap();
    Layout { base }
}

#[test]
fn index_lists_runs_newest_first_coloured_by_verdict() {
    let layout = store_with_two_runs();
    let server = start(&layout.store());
    let (status, _, body) = get(&server, "/");
    assert_eq!(status, 200);
    let newer = body.find("20261204T120000Z").expect("newer run listed");
    let older = body.find("20261204T100000Z").expect("older run listed");
    assert!(newer < older, "runs not newest first");
    assert!(body.contains("<span class=\"v v-invalid\">invalid</span>"));
    assert!(body.contains("<span class=\"v v-valid\">valid</span>"));
    assert!(body.contains("href=\"/store/register/20261204T120000Z/report.html\""));

    // Names come from the file system and are escaped like any other text.
    let odd = layout.store().join("<i>odd/20261204T110000Z");
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::write(odd.join("history.jsonl"), "").unwrap();
    let (_, _, body) = get(&server, "/");
    assert!(body.contains("&lt;i&gt;odd") && !body.contains("<i>odd"));
    assert!(body.contains("href=\"/store/%3Ci%3Eodd/20261204T110000Z/\""));
}

#[test]
fn report_is_written_on_demand_and_files_are_served_as_text() {
    let layout = store_with_two_runs();
    let run = layout.store().join("register/20261204T120000Z");
    let server = start(&layout.store());

    let (status, head, body) =
        get(&server, "/store/register/20261204T120000Z/report.html");
    assert_eq!(status, 200);
    assert!(head.contains("text/html"));
    assert!(body.contains("<section id=\"timeline\""));
    assert!(run.join("report.html").is_file());

    let (status, head, body) =
        get(&server, "/store/register/20261204T120000Z/history.jsonl");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/plain"));
    assert_eq!(
        body,
        std::fs::read_to_string(run.join("history.jsonl")).unwrap()
    );

    let (status, _, body) = get(&server, "/store/register/20261204T120000Z/");
    assert_eq!(status, 200);
    assert!(body.contains("observations.jsonl"));
}

#[test]
fn paths_outside_the_store_are_refused() {
    let layout = store_with_two_runs();
    let secret = layout.base.path().join("secret.txt");
    std::os::unix::fs::symlink(&secret, layout.store().join("link.txt")).unwrap();
    let server = start(&layout.store());
    for path in [
        "/store/../secret.txt",
        "/store/%2e%2e/secret.txt",
        "/store/register/..%2F..%2F..%2Fsecret.txt",
        "/store/link.txt",
        "/store//etc/passwd",
        "/../secret.txt",
    ] {
        let (status, _, body) = get(&server, path);
        assert!(status == 400 || status == 404, "{path} gave {status}");
        assert!(
            !body.contains("secret") && !body.contains("root:"),
            "{path} leaked"
        );
    }
}

#[test]
fn non_loopback_bind_is_refused_without_allow_remote() {
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--bind", "0.0.0.0:0", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-remote"), "{stderr}");
}
