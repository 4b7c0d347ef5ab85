//! A synthetic run directory, as `faultline test` writes it: five nodes,
//! clients doing reads, writes and compare-and-sets on a few keys, faults
//! (partitions, kills, pauses), a term with two leaders, and a stale read
//! that the results name as the counterexample.
//!
//! Everything comes from a fixed seed, so a run is the same every time.

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::path::Path;

const NODES: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];
const CONCURRENCY: u64 = 10;
const SPLIT_TERM: u64 = 4;

/// A string that must come out escaped wherever it is shown.
pub const HOSTILE: &str = "<script>alert('x')</script>";

/// What the fixture put in, for tests to look for.
pub struct Fixture {
    pub client_ops: usize,
    pub stuck_index: u64,
    pub explanation: String,
}

/// Writes history.jsonl, observations.jsonl, test.json and results.json
/// for a run of about `client_ops` operations.
pub fn write_run(dir: &Path, client_ops: usize, seed: u64) -> Fixture {
    let mut rng = StdRng::seed_from_u64(seed);
    let faults = fault_schedule(client_ops);
    let end = faults
        .last()
        .map(|f| f.2 + 2_000_000_000)
        .unwrap_or(30_000_000_000);
    let mut events = client_events(&mut rng, client_ops, end, &faults);
    for (f, node, start, stop) in faults.iter().cloned() {
        events.push(nemesis(start, "invoke", &f, &node));
        events.push(nemesis(start + 3_000_000, "info", &f, &node));
        let undo = match f.as_str() {
            "partition" => "heal",
            "kill" => "restart",
            _ => "resume",
        };
        events.push(nemesis(stop, "invoke", undo, &node));
        events.push(nemesis(stop + 2_000_000, "info", undo, &node));
    }
    events.sort_by_key(|e| e["time"].as_u64().unwrap());
    for (index, event) in events.iter_mut().enumerate() {
        event["index"] = json!(index);
    }

    let (cx_ops, stuck_index, explanation) = plant_stale_read(&mut events);
    let observations = observations(&faults, end);
    write_lines(&dir.join("history.jsonl"), &events);
    write_lines(&dir.join("observations.jsonl"), &observations);

    let command = format!(
        "faultline test --target raft-kv --workload register --nodes 5 --time-limit {} \
         --nemesis partition,kill,pause --seed {seed} --bug stale-read",
        end / 1_000_000_000
    );
    let nodes: Vec<Value> = NODES
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"id": id, "client_addr": format!("127.0.0.1:{}", 7101 + i),
                              "command": format!("raft-kv --id {id} --bug stale-read")})
        })
        .collect();
    let test = json!({
        "name": "raft-kv-register",
        "seed": seed,
        "command": command,
        "options": {"target": "raft-kv", "workload": "register", "nodes": 5,
                    "time_limit": end / 1_000_000_000, "concurrency": CONCURRENCY,
                    "nemesis": ["partition", "kill", "pause"], "bugs": ["stale-read"],
                    "note": HOSTILE},
        "net": "proxy",
        "nodes": nodes,
        "started": "20261204T120000Z",
    });
    std::fs::write(
        dir.join("test.json"),
        serde_json::to_string_pretty(&test).unwrap(),
    )
    .unwrap();

    let split_evidence: Vec<Value> = observations
        .iter()
        .enumerate()
        .filter(|(_, o)| o["term"] == json!(SPLIT_TERM) && o["role"] == json!("leader"))
        .map(|(line, o)| json!({"line": line + 1, "observation": o}))
        .collect();
    let results = json!({
        "verdict": "invalid",
        "checkers": {"election-safety": "invalid", "linearizable": "invalid"},
        "figures": {"client_ops": client_ops, "nemesis_ops": faults.len() * 4,
                    "availability": 0.78, "elections": 7, "longest_without_leader_s": 0.9,
                    "crashed_nodes": []},
        "linear": {
            "verdict": "invalid",
            "model": "register",
            "operations": client_ops,
            "elapsed_ms": 812.5,
            "keys": [
                {"key": "k0", "verdict": "valid", "operations": client_ops / 5,
                 "elapsed_ms": 120.0, "reason": null, "counterexample": null},
                {"key": "k1", "verdict": "invalid", "operations": client_ops / 5,
                 "elapsed_ms": 300.0, "reason": null, "counterexample": {
                    "ops": cx_ops, "stuck": [stuck_index], "states": [7],
                    "explanation": explanation.clone()}},
            ],
        },
        "election": {
            "verdict": "invalid",
            "violations": [{"term": SPLIT_TERM, "leaders": ["n1", "n4"],
                            "evidence": split_evidence}],
            "regressions": [{
                "node": "n2",
                "before": {"line": 40, "observation":
                    {"time": 20_000_000_000u64, "node": "n2", "term": 5, "role": "follower"}},
                "after": {"line": 44, "observation":
                    {"time": 21_000_000_000u64, "node": "n2", "term": 2, "role": "candidate"}},
            }],
            "observations": observations.len(),
            "nodes": 5,
            "terms": 6,
            "elections": 7,
            "span_ns": end,
            "elections_per_minute": 14.0,
            "longest_without_leader_ns": 900_000_000u64,
            "longest_without_leader_from_ns": 5_100_000_000u64,
        },
    });
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();

    Fixture {
        client_ops,
        stuck_index,
        explanation,
    }
}

/// (f, node, start, stop): a fault every 6 s, alternating kinds.
fn fault_schedule(client_ops: usize) -> Vec<(String, Option<String>, u64, u64)> {
    let seconds = (client_ops as u64 / 100).clamp(20, 600);
    let kinds = ["partition", "kill", "partition", "pause"];
    (0..seconds / 6)
        .map(|i| {
            let start = (i * 6 + 3) * 1_000_000_000;
            let f = kinds[i as usize % kinds.len()];
            let node =
                (f != "partition").then(|| NODES[(i as usize * 2) % 5].to_string());
            (f.to_string(), node, start, start + 2_500_000_000)
        })
        .collect()
}

fn faulted(faults: &[(String, Option<String>, u64, u64)], t: u64) -> bool {
    faults.iter().any(|f| f.2 <= t && t < f.3)
}

/// Closed-loop clients: each invokes, waits for its completion, and after
/// an `info` continues as a new process, as in Jepsen.
fn client_events(
    rng: &mut StdRng,
    client_ops: usize,
    end: u64,
    faults: &[(String, Option<String>, u64, u64)],
) -> Vec<Value> {
    let mut events = Vec::new();
    let per_process = client_ops as u64 / CONCURRENCY;
    let gap = end / (per_process + 1);
    for lane in 0..CONCURRENCY {
        let mut process = lane;
        for n in 0..per_process {
            let key = format!("k{}", rng.gen_range(0..5));
            let node = NODES[rng.gen_range(0..5)];
            let (f, value) = match rng.gen_range(0..3) {
                0 => ("read", Value::Null),
                1 => ("write", json!(rng.gen_range(0..10))),
                _ => ("cas", json!([rng.gen_range(0..10), rng.gen_range(0..10)])),
            };
            let t = n * gap + rng.gen_range(0..gap / 10 + 1);
            let slow = faulted(faults, t);
            let latency = if slow {
                rng.gen_range(gap / 3..gap * 8 / 10 + 1)
            } else {
                (rng.gen::<f64>().powi(3) * gap as f64 * 0.6) as u64 + 300_000
            };
            let (kind, result, error) = match rng.gen_range(0..100) {
                _ if lane == 0 && n == 3 => ("fail", Value::Null, Some(HOSTILE)),
                0..=24 if slow => ("info", Value::Null, Some("timeout")),
                25..=49 if slow => ("fail", Value::Null, Some("not-leader")),
                0..=1 => ("fail", Value::Null, Some("cas-mismatch")),
                _ if f == "read" => ("ok", json!(rng.gen_range(0..10)), None),
                _ => ("ok", value.clone(), None),
            };
            let mut invoke = json!({"time": t, "process": process, "type": "invoke",
                                    "f": f, "key": key, "value": value, "node": node});
            let mut done = json!({"time": t + latency, "process": process, "type": kind,
                                  "f": f, "key": key, "value": result, "node": node});
            if let Some(error) = error {
                done["error"] = json!(error);
            }
            if f == "read" {
                invoke["value"] = Value::Null;
            }
            events.push(invoke);
            events.push(done);
            if kind == "info" {
                process += CONCURRENCY;
            }
        }
    }
    events
}

fn nemesis(time: u64, kind: &str, f: &str, node: &Option<String>) -> Value {
    let mut op = json!({"time": time, "process": "nemesis", "type": kind, "f": f,
                        "value": null});
    if let Some(node) = node {
        op["value"] = json!([node]);
    }
    if f == "partition" {
        op["value"] = json!({"grudge": [["n1", "n2"], ["n3", "n4", "n5"]]});
    }
    op
}

/// Makes a read of k1 in the middle of the run return the value written
/// before the last completed write: the stale read of the counterexample.
fn plant_stale_read(events: &mut [Value]) -> (Vec<Value>, u64, String) {
    let middle = events.len() / 2;
    let is = |e: &Value, f: &str, kind: &str| {
        e["key"] == json!("k1") && e["f"] == json!(f) && e["type"] == json!(kind)
    };
    let completion = |events: &[Value], from: usize| {
        let p = events[from]["process"].clone();
        (from + 1..events.len())
            .find(|&j| events[j]["process"] == p)
            .unwrap()
    };
    let mut writes = (0..middle).rev().filter(|&i| is(&events[i], "write", "ok"));
    let (w2_ok, w1_ok) = (writes.next().unwrap(), writes.next().unwrap());
    let find_invoke = |events: &[Value], done: usize| {
        let p = events[done]["process"].clone();
        (0..done)
            .rev()
            .find(|&j| events[j]["process"] == p)
            .unwrap()
    };
    let (w1, w2) = (find_invoke(events, w1_ok), find_invoke(events, w2_ok));
    events[w1]["value"] = json!(3);
    events[w1_ok]["value"] = json!(3);
    events[w2]["value"] = json!(7);
    events[w2_ok]["value"] = json!(7);
    let read = (w2_ok..events.len())
        .find(|&i| {
            is(&events[i], "read", "invoke")
                && completion(events, i) > i
                && events[completion(events, i)]["type"] == json!("ok")
        })
        .unwrap();
    let read_ok = completion(events, read);
    events[read_ok]["value"] = json!(3);

    // Keep k1's history consistent around the planted operations: no other
    // writes of k1 between the first write and the read.
    for (i, event) in events.iter_mut().enumerate().take(read_ok).skip(w1_ok + 1) {
        let planted = [w2, w2_ok, read].contains(&i);
        if !planted && event["key"] == json!("k1") {
            event["key"] = json!("k0");
        }
    }
    let ops: Vec<Value> = [w1, w1_ok, w2, w2_ok, read, read_ok]
        .iter()
        .map(|&i| events[i].clone())
        .collect();
    let stuck = events[read]["index"].as_u64().unwrap();
    let explanation = format!(
        "read of k1 by process {} returned 3, but the write of 7 completed before \
         the read began, so the register held 7",
        events[read]["process"]
    );
    (ops, stuck, explanation)
}

/// Role changes: a new term at every fault; in term 4, n1 keeps leading
/// while n4 is elected too.
fn observations(faults: &[(String, Option<String>, u64, u64)], end: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let elect = |out: &mut Vec<Value>, t: u64, term: u64, leader: &str, skip: &str| {
        for node in NODES.into_iter().filter(|n| *n != skip) {
            if node == leader {
                out.push(
                    json!({"time": t, "node": node, "term": term, "role": "candidate"}),
                );
                out.push(json!({"time": t + 150_000_000, "node": node, "term": term,
                                "role": "leader"}));
            } else {
                out.push(json!({"time": t + 160_000_000, "node": node, "term": term,
                                "role": "follower", "leader": leader}));
            }
        }
    };
    elect(&mut out, 200_000_000, 1, "n1", "");
    for (i, fault) in faults.iter().enumerate() {
        let term = i as u64 + 2;
        let leader = NODES[(i * 3 + 1) % 5];
        if term == SPLIT_TERM {
            // n1 believes it still leads term 4 while n4 wins term 4 too.
            out.push(
                json!({"time": fault.2 + 100_000_000, "node": "n1", "term": term,
                            "role": "leader"}),
            );
            elect(&mut out, fault.2 + 600_000_000, term, "n4", "n1");
        } else {
            // Nobody leads between the fault and the end of the election.
            for node in NODES {
                out.push(json!({"time": fault.2 + 50_000_000, "node": node,
                                "term": term, "role": "follower"}));
            }
            elect(&mut out, fault.2 + 900_000_000, term, leader, "");
        }
    }
    out.retain(|o| o["time"].as_u64().unwrap() < end);
    out.sort_by_key(|o| o["time"].as_u64().unwrap());
    out
}

fn write_lines(path: &Path, values: &[Value]) {
    let mut text = String::new();
    for value in values {
        text.push_str(&serde_json::to_string(value).unwrap());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}
