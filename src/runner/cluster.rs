//! The cluster: one real process per node, started from the target's
//! command templates, with its output captured in the run directory.
//!
//! Each node runs in its own process group with its stdout and stderr piped
//! to `nodes/<id>/stdout.log` and `stderr.log`; role observations on stderr
//! go to the [`Observer`]. A node is killed with SIGKILL to its process
//! group and restarted with the same command, environment and data
//! directory. Nothing outlives the harness: children are killed when their
//! handle drops (`kill_on_drop`), when [`Cluster`] drops, on
//! [`Cluster::shutdown`], and by the kernel when the harness dies
//! (`PR_SET_PDEATHSIG`).
//! Signals reach a node only through its [`Running`] handle, which refuses
//! them once the node was reaped.

use super::observe::Observer;
use super::observe_log::{LineParser, LogSource};
use super::process::Running;
use crate::target::{expand, Layout, NodeCommand, Observations, Target};
use anyhow::{bail, Context};
use nemesis::clock::FakeClock;
use nemesis::registry::Registry;
use nemesis::Network;
use nix::sys::signal::Signal;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// How long a killed node may take to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// The nodes of one run.
pub struct Cluster {
    target: Target,
    program: PathBuf,
    pub layout: Layout,
    net: Arc<dyn Network>,
    registry: Registry,
    run_dir: PathBuf,
    observer: Arc<Observer>,
    /// The target's log patterns, shared by all nodes' stderr readers.
    log_source: Option<Arc<LogSource>>,
    nodes: Vec<Node>,
    /// One libfaketime clock per node when clock faults are on.
    clocks: Vec<FakeClock>,
}

struct Node {
    command: NodeCommand,
    running: Option<Running>,
}

impl Cluster {
    /// Prepares (but does not start) the nodes of `layout`.
    pub fn new(
        target: &Target,
        layout: Layout,
        net: Arc<dyn Network>,
        registry: Registry,
        run_dir: &Path,
        observer: Arc<Observer>,
    ) -> anyhow::Result<Cluster> {
        let program = target.program()?;
        let mut nodes = Vec::new();
        for i in 0..layout.len() {
            let command =
                expand::command(target, &layout, i).map_err(anyhow::Error::msg)?;
            std::fs::create_dir_all(&layout.data_dirs[i])?;
            std::fs::create_dir_all(run_dir.join("nodes").join(&layout.ids[i]))?;
            nodes.push(Node {
                command,
                running: None,
            });
        }
        let log_source = match &target.observations {
            Observations::LogRegex(config) => Some(Arc::new(
                LogSource::new(config).map_err(anyhow::Error::msg)?,
            )),
            _ => None,
        };
        Ok(Cluster {
            log_source,
            target: target.clone(),
            program,
            layout,
            net,
            registry,
            run_dir: run_dir.to_path_buf(),
            observer,
            nodes,
            clocks: Vec::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The exact command line of a node, for the run's record.
    pub fn command_line(&self, node: usize) -> Vec<String> {
        let mut line = vec![self.program.display().to_string()];
        line.extend(self.nodes[node].command.args.iter().cloned());
        line
    }

    /// Runs every node under its own libfaketime clock from its next start.
    pub fn set_clocks(&mut self, clocks: Vec<FakeClock>) {
        self.clocks = clocks;
    }

    /// A node's clock, when clock faults are on.
    pub fn clock(&self, node: usize) -> Option<&FakeClock> {
        self.clocks.get(node)
    }

    /// The address clients dial to reach `node`.
    pub fn client_addr(&self, node: usize) -> SocketAddr {
        self.net.client_addr(node, self.layout.client_ports[node])
    }

    /// Starts every node.
    pub async fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.len() {
            self.start(i)?;
        }
        Ok(())
    }

    /// Starts one node (again) with its command, environment and data dir.
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        if self.is_up(i) {
            return Ok(());
        }
        // A node that died on its own is started again like a killed one.
        if let Some(dead) = self.nodes[i].running.take() {
            let _ = self.registry.remove_process(dead.pid);
        }
        let node = &self.nodes[i];
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&node.command.args)
            .envs(node.command.env.iter().cloned())
            .current_dir(&self.layout.data_dirs[i]);
        if let Some(clock) = self.clocks.get(i) {
            cmd.envs(clock.env());
            clock.on_spawn()?;
        }
        let mut cmd = tokio::process::Command::from(self.net.wrap(i, cmd));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        // SAFETY: the closure only makes the prctl system call, which is
        // async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let id = &self.layout.ids[i];
        let mut child = cmd.spawn().with_context(|| {
            format!("cannot start node {id} ({})", self.program.display())
        })?;
        let pid = child
            .id()
            .context("a node exited before its pid was read")?;
        if let Err(e) = self
            .registry
            .add_process(pid, &self.program.display().to_string())
        {
            tracing::warn!(node = %id, error = %e, "cannot record the node in the run state");
        }

        let dir = self.run_dir.join("nodes").join(id);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(copy_lines(out, dir.join("stdout.log"), None));
        }
        if let Some(err) = child.stderr.take() {
            let parser = match (&self.target.observations, &self.log_source) {
                (Observations::StderrJson, _) => Some(LineParser::Json),
                (Observations::LogRegex(_), Some(source)) => Some(LineParser::Regex {
                    source: source.clone(),
                    node: id.clone(),
                }),
                _ => None,
            };
            let roles = parser.map(|p| (self.observer.clone(), p));
            tokio::spawn(copy_lines(err, dir.join("stderr.log"), roles));
        }
        tracing::info!(node = %id, pid, "node started");
        self.nodes[i].running = Some(Running::watch(child, pid, id.clone()));
        Ok(())
    }

    /// SIGKILLs a node's process group and waits for it to be reaped; an
    /// error when the node was not running any more.
    pub async fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if self.stop(i, "killed").await {
            Ok(())
        } else {
            bail!("node {} was not running", self.layout.ids[i])
        }
    }

    /// Kills a node; `event` says why in the observation log. Returns
    /// whether the node was still running to be killed.
    async fn stop(&mut self, i: usize, event: &str) -> bool {
        let Some(mut running) = self.nodes[i].running.take() else {
            return false;
        };
        let signalled = running.signal(Signal::SIGKILL).await;
        if !running.reaped(REAP_TIMEOUT).await {
            tracing::warn!(node = %self.layout.ids[i], pid = running.pid, "node not reaped");
        }
        let _ = self.registry.remove_process(running.pid);
        self.observer.node_down(i, event);
        signalled
    }

    /// SIGSTOPs a node; an error when it is not running.
    pub async fn pause(&self, i: usize) -> anyhow::Result<()> {
        self.signal_node(i, Signal::SIGSTOP).await
    }

    /// SIGCONTs a node; an error when it is not running.
    pub async fn resume(&self, i: usize) -> anyhow::Result<()> {
        self.signal_node(i, Signal::SIGCONT).await
    }

    async fn signal_node(&self, i: usize, sig: Signal) -> anyhow::Result<()> {
        match &self.nodes[i].running {
            Some(running) if running.signal(sig).await => Ok(()),
            _ => bail!("node {} is not running", self.layout.ids[i]),
        }
    }

    /// Whether a node runs: started, not killed, not exited.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i]
            .running
            .as_ref()
            .is_some_and(|r| !r.has_exited())
    }

    /// Nodes that exited without being killed by the harness.
    pub fn crashed(&self) -> Vec<usize> {
        let gone = |n: &Node| n.running.as_ref().is_some_and(Running::has_exited);
        (0..self.len()).filter(|&i| gone(&self.nodes[i])).collect()
    }

    /// How a node that exited ended, e.g. `exit status: 1`.
    fn exit_status(&self, i: usize) -> String {
        let status = self.nodes[i].running.as_ref().and_then(Running::status);
        status.unwrap_or_else(|| "status unknown".into())
    }

    /// Waits until every running node accepts client connections and, when
    /// the target reports roles and asks for it, a leader is observed.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let want_leader = self.target.ready.leader && self.target.observes_roles();
        loop {
            if let Some(&i) = self.crashed().first() {
                let (id, status) = (&self.layout.ids[i], self.exit_status(i));
                let tail = self.stderr_tail(i, 15);
                if tail.trim().is_empty() {
                    bail!("node {id} exited while starting ({status}, stderr was empty)");
                }
                bail!("node {id} exited while starting ({status}); the end of its stderr:\n{tail}");
            }
            let mut accepting = true;
            for i in (0..self.len()).filter(|&i| self.is_up(i)) {
                let connect = tokio::net::TcpStream::connect(self.client_addr(i));
                let ok = tokio::time::timeout(Duration::from_millis(200), connect).await;
                accepting &= matches!(ok, Ok(Ok(_)));
            }
            let leader = !want_leader || self.observer.leader().is_some();
            if accepting && leader {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let what = if accepting {
                    "no leader observed"
                } else {
                    "client ports closed"
                };
                bail!(
                    "cluster not ready after {:.0} s: {what}; node logs are in {}",
                    timeout.as_secs_f64(),
                    self.run_dir.join("nodes").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of a node's stderr log.
    pub fn stderr_tail(&self, i: usize, lines: usize) -> String {
        let path = self
            .run_dir
            .join("nodes")
            .join(&self.layout.ids[i])
            .join("stderr.log");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Kills every node and removes the network and the clock files.
    /// Idempotent.
    pub async fn shutdown(&mut self) {
        for i in 0..self.len() {
            self.stop(i, "stopped").await;
        }
        self.clocks.clear();
        if let Err(e) = self.net.teardown() {
            tracing::warn!(error = %e, "network teardown failed");
        }
    }
}

impl Drop for Cluster {
    /// The last line of defence, on error or panic: no node survives.
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(running) = &node.running {
                running.signal_soon(Signal::SIGKILL);
                let _ = self.registry.remove_process(running.pid);
            }
        }
        let _ = self.net.teardown();
    }
}

/// Appends a node's output to `path` line by line; stderr lines that are
/// role observations also go to the observer.
async fn copy_lines(
    stream: impl AsyncRead + Unpin,
    path: PathBuf,
    roles: Option<(Arc<Observer>, LineParser)>,
) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot open node log");
            return;
        }
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let _ = file.write_all(&line);
        if let (Some((observer, parser)), Ok(text)) = (&roles, std::str::from_utf8(&line))
        {
            if let Some(obs) = parser.parse(text.trim_end(), observer.now()) {
                observer.record(&obs);
            }
        }
    }
}
