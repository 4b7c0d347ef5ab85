//! Real raft-kv processes on loopback: elections, failover after SIGKILL
//! and SIGSTOP, and recovery from the data dir after restarts. Every
//! process is killed when the test ends, even on panic.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

/// The latest role line of each node: (term, role).
type Roles = Arc<Mutex<HashMap<String, (u64, String)>>>;

struct Node {
    id: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// A cluster of node processes; dropping it kills them all.
struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    roles: Roles,
    applied: Arc<Mutex<HashMap<String, u64>>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        let nodes = (1..=n)
            .map(|i| Node {
                id: format!("n{i}"),
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            nodes,
            roles: Roles::default(),
            applied: Arc::default(),
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_raft-kv"));
        cmd.arg("--id")
            .arg(&node.id)
            .arg("--data-dir")
            .arg(self.dir.path().join(&node.id))
            .arg("--client-addr")
            .arg(format!("127.0.0.1:{}", node.client))
            .arg("--peer-addr")
            .arg(format!("127.0.0.1:{}", node.peer))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for other in &self.nodes {
            if other.id != node.id {
                cmd.arg("--peer")
                    .arg(format!("{}=127.0.0.1:{}", other.id, other.peer));
            }
        }
        let mut child = cmd.spawn().expect("cannot start raft-kv");
        let stderr = child.stderr.take().unwrap();
        let (roles, applied, id) =
            (self.roles.clone(), self.applied.clone(), node.id.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Ok(obs) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                match obs["observation"].as_str() {
                    Some("role") => {
                        let role = obs["role"].as_str().unwrap_or("").to_string();
                        let term = obs["term"].as_u64().unwrap_or(0);
                        roles.lock().unwrap().insert(id.clone(), (term, role));
                    }
                    Some("apply") => {
                        let index = obs["index"].as_u64().unwrap_or(0);
                        let mut applied = applied.lock().unwrap();
                        let entry = applied.entry(id.clone()).or_default();
                        *entry = (*entry).max(index);
                    }
                    _ => {}
                }
            }
        });
        self.nodes[i].child = Some(child);
    }

    fn pid(&self, i: usize) -> Pid {
        Pid::from_raw(self.nodes[i].child.as_ref().unwrap().id() as i32)
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.roles.lock().unwrap().remove(&self.nodes[i].id);
        self.applied.lock().unwrap().remove(&self.nodes[i].id);
    }

    /// A live node that says it leads a term no live node is past.
    fn leader(&self, excluding: &[usize]) -> Option<(usize, u64)> {
        let roles = self.roles.lock().unwrap();
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].child.is_some() && !excluding.contains(i))
            .collect();
        let max_term = live
            .iter()
            .filter_map(|&i| roles.get(&self.nodes[i].id))
            .map(|r| r.0)
            .max()?;
        live.into_iter()
            .find_map(|i| match roles.get(&self.nodes[i].id) {
                Some((term, role)) if role == "leader" && *term == max_term => {
                    Some((i, *term))
                }
                _ => None,
            })
    }

    fn await_leader(&self, excluding: &[usize], within: Duration) -> (usize, u64) {
        wait_for(within, || self.leader(excluding)).unwrap_or_else(|| {
            panic!(
                "no leader within {within:?}: {:?}",
                self.roles.lock().unwrap()
            )
        })
    }

    /// Sends one request to node `i`; `None` if there was no answer.
    fn request(&self, i: usize, request: Value) -> Option<Value> {
        let addr = format!("127.0.0.1:{}", self.nodes[i].client);
        let mut stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        writeln!(stream, "{request}").ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        serde_json::from_str(&line).ok()
    }

    /// Writes through node `i`, retrying until some attempt succeeds.
    fn write(&self, i: usize, key: &str, value: i64) {
        let request = json!({"id": 1, "op": "write", "key": key, "value": value});
        let done = wait_for(Duration::from_secs(10), || {
            self.request(i, request.clone()).filter(|r| r["ok"] == true)
        });
        assert!(
            done.is_some(),
            "write {key}={value} through n{} never succeeded",
            i + 1
        );
    }

    fn read(&self, i: usize, key: &str) -> Value {
        let request = json!({"id": 2, "op": "read", "key": key});
        let answer = wait_for(Duration::from_secs(10), || {
            self.request(i, request.clone()).filter(|r| r["ok"] == true)
        });
        answer
            .unwrap_or_else(|| panic!("read of {key} through n{} never succeeded", i + 1))
            ["value"]
            .clone()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let pid = Pid::from_raw(child.id() as i32);
                let _ = kill(pid, Signal::SIGCONT);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn wait_for<T>(within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn five_nodes_elect_a_leader_and_replace_a_killed_one() {
    let mut cluster = Cluster::start(5);
    let (leader, term) = cluster.await_leader(&[], Duration::from_secs(5));
    cluster.write((leader + 1) % 5, "k", 1);

    cluster.kill(leader);
    let (next, next_term) = cluster.await_leader(&[leader], Duration::from_secs(5));
    assert_ne!(next, leader);
    assert!(
        next_term > term,
        "new leader's term {next_term} is not past {term}"
    );
    let followers: Vec<usize> = (0..5).filter(|&i| i != leader && i != next).collect();
    cluster.write(followers[0], "k", 2);
    assert_eq!(cluster.read(followers[1], "k"), json!(2));
}

#[test]
fn a_restarted_node_rejoins_with_its_data() {
    let mut cluster = Cluster::start(3);
    let (leader, _) = cluster.await_leader(&[], Duration::from_secs(5));
    for value in 1..=5 {
        cluster.write(leader, "k", value);
    }

    // A follower that missed writes catches up after a restart.
    let follower = (leader + 1) % 3;
    cluster.kill(follower);
    for value in 6..=10 {
        cluster.write(leader, "k", value);
    }
    let last = cluster.applied.lock().unwrap()[&cluster.nodes[leader].id];
    cluster.spawn(follower);
    let id = cluster.nodes[follower].id.clone();
    let caught_up = wait_for(Duration::from_secs(5), || {
        cluster
            .applied
            .lock()
            .unwrap()
            .get(&id)
            .filter(|&&i| i >= last)
            .copied()
    });
    assert!(
        caught_up.is_some(),
        "{id} did not apply up to index {last} after restart"
    );

    // The whole cluster killed at once keeps every acknowledged write.
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.spawn(i);
    }
    cluster.await_leader(&[], Duration::from_secs(5));
    assert_eq!(cluster.read(follower, "k"), json!(10));
}

#[test]
fn a_paused_leader_is_replaced_and_steps_down_after_resume() {
    let mut cluster = Cluster::start(3);
    let (leader, term) = cluster.await_leader(&[], Duration::from_secs(5));
    kill(cluster.pid(leader), Signal::SIGSTOP).unwrap();
    let (next, next_term) = cluster.await_leader(&[leader], Duration::from_secs(5));
    assert_ne!(next, leader);
    cluster.write(next, "k", 1);

    kill(cluster.pid(leader), Signal::SIGCONT).unwrap();
    let id = cluster.nodes[leader].id.clone();
    let stepped_down = wait_for(Duration::from_secs(5), || {
        let roles = cluster.roles.lock().unwrap();
        roles
            .get(&id)
            .filter(|(t, role)| *t >= next_term && role != "leader")
            .cloned()
    });
    assert!(
        stepped_down.is_some(),
        "{id} (leader of term {term}) did not step down"
    );
    assert_eq!(cluster.read(leader, "k"), json!(1));
    cluster.kill(leader);
}

#[test]
fn a_forward_to_a_killed_leader_is_answered_definitely() {
    let mut cluster = Cluster::start(3);
    let (leader, _) = cluster.await_leader(&[], Duration::from_secs(5));
    cluster.write(leader, "k", 1);

    // Killed, the leader's connections close at once, while the followers
    // still name it as leader until their election timeout (300 ms or
    // more) runs out: a forward now reaches no one.
    cluster.kill(leader);
    std::thread::sleep(Duration::from_millis(100));
    let follower = (leader + 1) % 3;
    let request = json!({"id": 5, "op": "write", "key": "k", "value": 2});
    let answer = cluster.request(follower, request).expect("no answer");
    assert_eq!(answer["id"], 5);
    if answer["ok"] != true {
        assert_eq!(answer["error"], "not-leader", "{answer}");
        assert_eq!(answer["definite"], true, "{answer}");
    }
}
