//! Write throughput and latency of a 3-node raft-kv cluster on loopback,
//! 10 concurrent clients for 10 s; and, where etcd is installed, of a
//! 3-node etcd cluster through its v3 JSON gateway, side by side.
//!
//! Run with `cargo bench -p raft-kv`. `BENCH_SECS` changes the duration.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: usize = 10;
const ETCD: &str = "/usr/bin/etcd";

/// Child processes killed on drop, even when the bench panics.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One client's connection: sends a write, waits for its answer.
trait Writer: Send {
    fn write(&mut self, key: &str, value: i64) -> bool;
}

struct RaftClient(BufReader<TcpStream>);

impl Writer for RaftClient {
    fn write(&mut self, key: &str, value: i64) -> bool {
        let line = format!(
            "{{\"id\":{value},\"op\":\"write\",\"key\":\"{key}\",\"value\":{value}}}\n"
        );
        if self.0.get_mut().write_all(line.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        self.0.read_line(&mut answer).is_ok() && answer.contains("\"ok\":true")
    }
}

struct EtcdClient {
    addr: String,
    conn: BufReader<TcpStream>,
}

impl Writer for EtcdClient {
    fn write(&mut self, key: &str, value: i64) -> bool {
        let body = format!(
            "{{\"key\":\"{}\",\"value\":\"{}\"}}",
            base64(key.as_bytes()),
            base64(value.to_string().as_bytes())
        );
        let request = format!(
            "POST /v3/kv/put HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        if self.conn.get_mut().write_all(request.as_bytes()).is_err() {
            return false;
        }
        read_http(&mut self.conn).is_some_and(|(status, _)| status == 200)
    }
}

/// Reads one HTTP/1.1 response: status and body.
fn read_http(conn: &mut BufReader<TcpStream>) -> Option<(u16, Vec<u8>)> {
    let mut line = String::new();
    conn.read_line(&mut line).ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let (mut length, mut chunked) = (0usize, false);
    loop {
        line.clear();
        conn.read_line(&mut line).ok()?;
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(v) = header.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if header.starts_with("transfer-encoding:") && header.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            conn.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        conn.read_exact(&mut body).ok()?;
    }
    Some((status, body))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs `CLIENTS` clients for `secs` and prints writes/s and latencies.
fn measure(name: &str, secs: u64, connect: &(dyn Fn(usize) -> Box<dyn Writer> + Sync)) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                scope.spawn(move || {
                    let mut client = connect(c);
                    let (mut latencies, mut failed) = (Vec::new(), 0);
                    let mut value = 0;
                    while Instant::now() < deadline {
                        value += 1;
                        let start = Instant::now();
                        if client.write(&format!("key{c}"), value) {
                            latencies.push(start.elapsed());
                        } else {
                            failed += 1;
                            client = connect(c);
                        }
                    }
                    (latencies, failed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: usize = results.iter().map(|r| r.1).sum();
    let mut all: Vec<Duration> = results.into_iter().flat_map(|r| r.0).collect();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
    };
    println!(
        "{name:8} {:>9.0} writes/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ok, {failed} failed, {CLIENTS} clients, {secs} s)",
        all.len() as f64 / secs as f64,
        pct(0.5).map_or(0.0, |d| d.as_secs_f64() * 1e3),
        pct(0.99).map_or(0.0, |d| d.as_secs_f64() * 1e3),
        all.len()
    );
}

/// Retries `probe` for up to 15 s.
fn await_ready(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !probe() {
        assert!(Instant::now() < deadline, "{what} did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bench_raft_kv(dir: &Path, secs: u64) {
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let mut procs = Procs(Vec::new());
    for (i, (client, peer)) in ports.iter().enumerate() {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_raft-kv"));
        cmd.args(["--id", &format!("n{i}")])
            .arg("--data-dir")
            .arg(dir.join(format!("raft-n{i}")))
            .args(["--client-addr", &format!("127.0.0.1:{client}")])
            .args(["--peer-addr", &format!("127.0.0.1:{peer}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (j, (_, other)) in ports.iter().enumerate() {
            if j != i {
                cmd.args(["--peer", &format!("n{j}=127.0.0.1:{other}")]);
            }
        }
        procs.0.push(cmd.spawn().expect("cannot start raft-kv"));
    }
    let connect = |c: usize| -> Box<dyn Writer> {
        loop {
            let addr = format!("127.0.0.1:{}", ports[c % 3].0);
            if let Ok(stream) = TcpStream::connect(addr) {
                let _ = stream.set_nodelay(true);
                return Box::new(RaftClient(BufReader::new(stream)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    await_ready("raft-kv", || (0..3).all(|i| connect(i).write("ready", 1)));
    measure("raft-kv", secs, &connect);
}

fn bench_etcd(dir: &Path, secs: u64) {
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let cluster: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
        .collect();
    let mut procs = Procs(Vec::new());
    for (i, (client, peer)) in ports.iter().enumerate() {
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new(ETCD)
            .args(["--name", &format!("e{i}")])
            .arg("--data-dir")
            .arg(dir.join(format!("etcd-e{i}")))
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &cluster.join(",")])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "bench",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start etcd");
        procs.0.push(child);
    }
    let connect = |c: usize| -> Box<dyn Writer> {
        loop {
            let addr = format!("127.0.0.1:{}", ports[c % 3].0);
            if let Ok(stream) = TcpStream::connect(&addr) {
                let _ = stream.set_nodelay(true);
                return Box::new(EtcdClient {
                    addr,
                    conn: BufReader::new(stream),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    await_ready("etcd", || (0..3).all(|i| connect(i).write("ready", 1)));
    measure("etcd", secs, &connect);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run us.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("cannot make a tempdir");
    println!("3-node clusters on loopback, {CLIENTS} clients writing, fsync on");
    bench_raft_kv(dir.path(), secs);
    if Path::new(ETCD).exists() {
        bench_etcd(dir.path(), secs);
    } else {
        println!("etcd   skipped: needs {ETCD}");
    }
}
