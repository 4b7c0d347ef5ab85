//! Targets: how to start the nodes of a system under test, how clients talk
//! to them, when they are ready, and where their observations come from.
//!
//! A target is a TOML file (see `examples/targets/raft-kv.toml`, which is
//! also the built-in target `raft-kv`). Node commands are templates with
//! placeholders such as `{id}`, `{data_dir}`, `{client_addr}` and lists such
//! as `{peers}` that expand once per peer; [`expand`] turns a template and a
//! node's place in the cluster into the exact command line.

pub mod expand;

use crate::runner::observe_log::{LogRegexConfig, LogSource};
use crate::runner::observe_status::{StatusConfig, StatusSource};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use workloads::Protocol;

pub use expand::{Layout, NodeCommand};

/// The built-in targets, by name.
const BUILT_IN: &[(&str, &str)] = &[
    ("raft-kv", include_str!("../examples/targets/raft-kv.toml")),
    ("etcd", include_str!("../examples/targets/etcd.toml")),
];

/// The `binary` value that means faultline's own executable.
pub const SELF_BINARY: &str = "@self";

/// A system under test, as a TOML file describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Names the run directory: `store/<name>-<workload>/...`.
    pub name: String,
    pub protocol: Protocol,
    /// A path, a program on `PATH`, or `@self` for faultline itself.
    pub binary: String,
    /// Arguments, with placeholders.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment added to the harness's own, with placeholders.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Templates that expand once per peer, node or bug.
    #[serde(default)]
    pub lists: BTreeMap<String, ListSpec>,
    #[serde(default)]
    pub ready: Ready,
    #[serde(default)]
    pub observations: Observations,
    /// The network backends the target can run on (`proxy`, `netns`);
    /// empty means any.
    #[serde(default)]
    pub networks: Vec<String>,
}

/// A template repeated over a set of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    pub over: ListOver,
    /// The arguments (or the text, with `join`) for one item.
    pub each: Each,
    /// When set, the items are joined into one text with this separator.
    #[serde(default)]
    pub join: Option<String>,
}

/// What a list is repeated over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListOver {
    /// Every node but the one being started.
    Peers,
    /// Every node, the one being started included.
    Nodes,
    /// Every `--bug` given on the command line.
    Bugs,
}

/// One item's template: a single text or several arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Each {
    One(String),
    Many(Vec<String>),
}

impl Each {
    pub fn parts(&self) -> &[String] {
        match self {
            Each::One(s) => std::slice::from_ref(s),
            Each::Many(v) => v,
        }
    }
}

/// When a freshly started cluster counts as ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// How long to wait before giving up, in seconds.
    #[serde(default = "default_ready_timeout")]
    pub timeout_secs: f64,
    /// Wait for an observation of a leader too, not only for every client
    /// port to accept connections.
    #[serde(default = "yes")]
    pub leader: bool,
}

fn default_ready_timeout() -> f64 {
    30.0
}

fn yes() -> bool {
    true
}

impl Default for Ready {
    fn default() -> Ready {
        Ready {
            timeout_secs: default_ready_timeout(),
            leader: true,
        }
    }
}

/// Where a target's role observations come from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Observations {
    /// None: election safety is not checked and nothing waits for a leader.
    #[default]
    None,
    /// JSON lines on the node's stderr starting `{"observation":"role"`,
    /// as raft-kv writes them (PROTOCOLS.md).
    StderrJson,
    /// Regular expressions over the node's stderr log lines.
    LogRegex(LogRegexConfig),
    /// A status endpoint on each node's client address, polled.
    Status(StatusConfig),
}

impl Target {
    /// A built-in target by name, or a TOML file by path.
    pub fn load(spec: &str) -> anyhow::Result<Target> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(name, _)| *name == spec) {
            return Target::parse(text, &format!("built-in target {spec}"));
        }
        let path = Path::new(spec);
        if !path.exists() {
            let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            anyhow::bail!(
                "target {spec:?} is neither a file nor a built-in target; expected a \
                 .toml path or one of {}",
                names.join(", ")
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read target file {}", path.display()))?;
        Target::parse(&text, &path.display().to_string())
    }

    /// Parses and validates a target; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Target> {
        let target: Target = toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|s| line_of(text, s.start))
                .map_or(String::new(), |l| format!(":{l}"));
            anyhow::anyhow!("{origin}{place}: {}", e.message())
        })?;
        expand::validate(&target).map_err(|e| {
            let place =
                template_line(text, &e).map_or(String::new(), |l| format!(":{l}"));
            anyhow::anyhow!("{origin}{place}: {e}")
        })?;
        let timeout = target.ready.timeout_secs;
        if !(timeout.is_finite() && timeout > 0.0 && timeout <= crate::test::MAX_SECONDS)
        {
            let place = text
                .find("timeout_secs")
                .map_or(String::new(), |at| format!(":{}", line_of(text, at)));
            anyhow::bail!(
                "{origin}{place}: ready.timeout_secs = {timeout}; expected seconds above 0 \
                 and at most {} (a week)",
                crate::test::MAX_SECONDS
            );
        }
        let observations = match &target.observations {
            Observations::LogRegex(c) => LogSource::new(c).map(drop),
            Observations::Status(c) => StatusSource::new(c).map(drop),
            Observations::None | Observations::StderrJson => Ok(()),
        };
        observations.map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        Ok(target)
    }

    /// The program to run: faultline itself for `@self`.
    pub fn program(&self) -> anyhow::Result<PathBuf> {
        if self.binary == SELF_BINARY {
            return std::env::current_exe()
                .context("cannot find faultline's own executable");
        }
        Ok(PathBuf::from(&self.binary))
    }

    /// Whether the target reports roles, so that leaders can be awaited,
    /// targeted and checked.
    pub fn observes_roles(&self) -> bool {
        self.observations != Observations::None
    }
}

/// The line of the template an expansion error quotes (`in "..."`), found
/// by looking for the quoted template, or for the unknown placeholder, in
/// the TOML text.
fn template_line(text: &str, error: &str) -> Option<usize> {
    let quoted = error.find(" in \"").and_then(|at| {
        let rest = &error[at + 4..];
        let end = rest[1..].find("\";").or_else(|| rest[1..].rfind('"'))?;
        Some(&rest[..end + 2])
    });
    let placeholder = error.find("placeholder {").and_then(|at| {
        let rest = &error[at + 12..];
        Some(&rest[..=rest.find('}')?])
    });
    let at = quoted
        .and_then(|q| text.find(q))
        .or_else(|| placeholder.and_then(|p| text.find(p)))?;
    Some(line_of(text, at))
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_raft_kv_target_loads() {
        let t = Target::load("raft-kv").unwrap();
        assert_eq!(t.protocol, Protocol::RaftKv);
        assert_eq!(t.binary, SELF_BINARY);
        assert!(t.observes_roles());
    }

    #[test]
    fn unknown_field_is_reported_with_its_line() {
        let text = "name = \"x\"\nprotocol = \"raft-kv\"\nbinary = \"b\"\nargz = []\n";
        let err = Target::parse(text, "t.toml").unwrap_err().to_string();
        assert!(err.starts_with("t.toml:4: "), "{err}");
        assert!(err.contains("argz"), "{err}");
    }

    #[test]
    fn unknown_placeholder_is_rejected_at_load() {
        let text = "name = \"x\"\nprotocol = \"raft-kv\"\nbinary = \"b\"\n\
                    args = [\"--id\", \"{nodeid}\"]\n";
        let err = Target::parse(text, "t.toml").unwrap_err().to_string();
        assert!(err.contains("{nodeid}"), "{err}");
        assert!(err.starts_with("t.toml:4: "), "{err}");
    }

    #[test]
    fn unknown_placeholder_in_a_list_names_its_line() {
        let text = "name = \"x\"\nprotocol = \"raft-kv\"\nbinary = \"b\"\n\
                    args = [\"--id\", \"{id}\"]\n\n[lists.peers]\nover = \"peers\"\n\
                    each = \"{peer_idd}\"\n";
        let err = Target::parse(text, "t.toml").unwrap_err().to_string();
        assert!(err.starts_with("t.toml:8: "), "{err}");
    }

    #[test]
    fn ready_timeout_must_be_positive_and_finite() {
        for bad in ["-3", "0", "nan", "inf", "1e30"] {
            let text = format!(
                "name = \"x\"\nprotocol = \"raft-kv\"\nbinary = \"b\"\n\n\
                 [ready]\ntimeout_secs = {bad}\n"
            );
            let err = Target::parse(&text, "t.toml").unwrap_err().to_string();
            assert!(
                err.starts_with("t.toml:6: ready.timeout_secs"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn missing_target_names_the_built_in_ones() {
        let err = Target::load("/nonexistent/t.toml").unwrap_err().to_string();
        assert!(err.contains("raft-kv"), "{err}");
    }
}
