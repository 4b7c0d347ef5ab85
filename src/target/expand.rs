//! Placeholder expansion: from a target's templates and a node's place in
//! the cluster to the exact program, arguments and environment.
//!
//! `{name}` is replaced by a variable; `{{` and `}}` stand for literal
//! braces. Node variables describe the node being started; inside a list
//! over peers or nodes, `peer_*` variables describe each one in turn, and
//! `peer_addr` is the address the started node dials to reach it (which,
//! under the proxy network, differs from the address it listens on).

use super::{ListOver, Target};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Names of the node variables, for error messages.
const NODE_VARS: &[&str] = &[
    "id",
    "index",
    "data_dir",
    "host",
    "client_port",
    "client_addr",
    "peer_port",
    "peer_addr",
];

/// Where every node of a run lives.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `n1`, `n2`, ...
    pub ids: Vec<String>,
    /// The address each node listens on.
    pub hosts: Vec<IpAddr>,
    pub client_ports: Vec<u16>,
    pub peer_ports: Vec<u16>,
    pub data_dirs: Vec<PathBuf>,
    /// `links[from][to]`: the address `from` dials to reach `to`'s peer port.
    pub links: Vec<Vec<SocketAddr>>,
    /// The `--bug` values.
    pub bugs: Vec<String>,
}

impl Layout {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// A layout on 127.0.0.1 with made-up ports, to check templates.
    fn sample(n: usize) -> Layout {
        let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let peer_ports: Vec<u16> = (0..n as u16).map(|i| 7200 + i).collect();
        Layout {
            ids: (1..=n).map(|i| format!("n{i}")).collect(),
            hosts: vec![host; n],
            client_ports: (0..n as u16).map(|i| 7100 + i).collect(),
            links: (0..n)
                .map(|_| {
                    peer_ports
                        .iter()
                        .map(|&p| SocketAddr::new(host, p))
                        .collect()
                })
                .collect(),
            peer_ports,
            data_dirs: (1..=n)
                .map(|i| PathBuf::from(format!("/data/n{i}")))
                .collect(),
            bugs: vec!["sample-bug".into()],
        }
    }
}

/// A node's exact command.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeCommand {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Checks every template of a target by expanding it for a sample cluster.
pub fn validate(target: &Target) -> Result<(), String> {
    command(target, &Layout::sample(3), 0).map(|_| ())
}

/// The command line and environment that start node `node` (0-based).
pub fn command(
    target: &Target,
    layout: &Layout,
    node: usize,
) -> Result<NodeCommand, String> {
    let vars = node_vars(layout, node);
    let mut joined = HashMap::new();
    let mut spliced = HashMap::new();
    for (name, list) in &target.lists {
        let items = list_items(list.over, layout, node);
        let mut parts = Vec::new();
        for item in &items {
            for template in list.each.parts() {
                let lookup = |k: &str| item.get(k).or_else(|| vars.get(k)).cloned();
                let context = format!("lists.{name}.each");
                parts.push(expand(template, &lookup, &context)?);
            }
        }
        match &list.join {
            Some(sep) => {
                joined.insert(name.clone(), parts.join(sep));
            }
            None => {
                spliced.insert(name.clone(), parts);
            }
        }
    }

    let lookup = |k: &str| vars.get(k).or_else(|| joined.get(k)).cloned();
    let mut args = Vec::new();
    for (i, arg) in target.args.iter().enumerate() {
        let whole = arg.strip_prefix('{').and_then(|a| a.strip_suffix('}'));
        if let Some(parts) = whole.and_then(|name| spliced.get(name)) {
            args.extend(parts.iter().cloned());
            continue;
        }
        let context = format!("args[{i}]");
        args.push(expand(arg, &lookup, &context).map_err(|e| {
            match whole.filter(|name| spliced.contains_key(*name)) {
                Some(_) => e,
                None if spliced.keys().any(|k| arg.contains(&format!("{{{k}}}"))) => {
                    format!("{e}; a list without `join` must be a whole argument")
                }
                None => e,
            }
        })?);
    }
    let mut env = Vec::new();
    for (key, value) in &target.env {
        let context = format!("env.{key}");
        env.push((key.clone(), expand(value, &lookup, &context)?));
    }
    Ok(NodeCommand { args, env })
}

fn node_vars(layout: &Layout, node: usize) -> HashMap<&'static str, String> {
    let host = layout.hosts[node];
    let mut vars = HashMap::new();
    vars.insert("id", layout.ids[node].clone());
    vars.insert("index", (node + 1).to_string());
    vars.insert("data_dir", layout.data_dirs[node].display().to_string());
    vars.insert("host", host.to_string());
    vars.insert("client_port", layout.client_ports[node].to_string());
    let client = SocketAddr::new(host, layout.client_ports[node]);
    vars.insert("client_addr", client.to_string());
    vars.insert("peer_port", layout.peer_ports[node].to_string());
    let peer = SocketAddr::new(host, layout.peer_ports[node]);
    vars.insert("peer_addr", peer.to_string());
    vars
}

fn list_items(
    over: ListOver,
    layout: &Layout,
    node: usize,
) -> Vec<HashMap<&'static str, String>> {
    if over == ListOver::Bugs {
        let bug = |b: &String| HashMap::from([("bug", b.clone())]);
        return layout.bugs.iter().map(bug).collect();
    }
    let others = (0..layout.len()).filter(|&j| over == ListOver::Nodes || j != node);
    others
        .map(|j| {
            let link = layout.links[node][j];
            let client = SocketAddr::new(layout.hosts[j], layout.client_ports[j]);
            HashMap::from([
                ("peer_id", layout.ids[j].clone()),
                ("peer_index", (j + 1).to_string()),
                ("peer_host", link.ip().to_string()),
                ("peer_port", link.port().to_string()),
                ("peer_addr", link.to_string()),
                ("peer_client_addr", client.to_string()),
            ])
        })
        .collect()
}

/// Replaces every `{name}` in `template`; `context` names the template in
/// errors.
pub fn expand(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    context: &str,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!(
                "{context}: unmatched `}}` in {template:?}; write `}}}}` for a brace"
            ));
        }
        let Some(end) = tail.find('}') else {
            return Err(format!(
                "{context}: unclosed `{{` in {template:?}; write `{{{{` for a brace"
            ));
        };
        let name = &tail[1..end];
        match lookup(name) {
            Some(value) => out.push_str(&value),
            None => {
                return Err(format!(
                    "{context}: unknown placeholder {{{name}}} in {template:?}; expected \
                     one of {}, a list name, or peer_*/bug inside a list",
                    NODE_VARS.join(", ")
                ))
            }
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;

    const ETCD: &str = r#"
        name = "etcd"
        protocol = "raft-kv"
        binary = "etcd"
        args = ["--name", "{id}", "--data-dir", "{data_dir}",
                "--listen-peer-urls", "http://{host}:{peer_port}",
                "--initial-cluster", "{cluster}"]
        [lists.cluster]
        over = "nodes"
        each = "{peer_id}=http://{peer_addr}"
        join = ","
    "#;

    #[test]
    fn raft_kv_peers_splice_one_pair_of_arguments_per_peer() {
        let target = Target::load("raft-kv").unwrap();
        let mut layout = Layout::sample(3);
        layout.bugs = vec!["stale-read".into()];
        let cmd = command(&target, &layout, 1).unwrap();
        let line = cmd.args.join(" ");
        assert_eq!(
            line,
            "raft-kv --id n2 --data-dir /data/n2 --client-addr 127.0.0.1:7101 \
             --peer-addr 127.0.0.1:7201 --peer n1=127.0.0.1:7200 \
             --peer n3=127.0.0.1:7202 --bug stale-read"
        );
    }

    #[test]
    fn joined_list_fits_etcd_initial_cluster() {
        let target = Target::parse(ETCD, "etcd.toml").unwrap();
        let cmd = command(&target, &Layout::sample(3), 0).unwrap();
        assert_eq!(
            cmd.args.last().unwrap(),
            "n1=http://127.0.0.1:7200,n2=http://127.0.0.1:7201,n3=http://127.0.0.1:7202"
        );
        assert_eq!(cmd.args[5], "http://127.0.0.1:7200");
    }

    #[test]
    fn peer_addr_in_a_list_is_the_dialled_address() {
        let target = Target::load("raft-kv").unwrap();
        let mut layout = Layout::sample(2);
        layout.links[0][1] = "127.0.0.1:9999".parse().unwrap();
        let cmd = command(&target, &layout, 0).unwrap();
        assert!(
            cmd.args.contains(&"n2=127.0.0.1:9999".to_string()),
            "{:?}",
            cmd.args
        );
    }

    #[test]
    fn braces_escape_and_bad_braces_are_errors() {
        let none = |_: &str| None;
        assert_eq!(expand("a{{b}}c", &none, "t").unwrap(), "a{b}c");
        assert!(expand("a{b", &none, "t").unwrap_err().contains("unclosed"));
        assert!(expand("a}b", &none, "t").unwrap_err().contains("unmatched"));
    }
}
