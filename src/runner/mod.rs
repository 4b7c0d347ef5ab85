//! The test runner: one run of `faultline test`, from an empty run
//! directory to a checked verdict.
//!
//! 1. Create the run directory, the log, the run's resource registry and
//!    the network (proxies on loopback, or network namespaces as root).
//! 2. Start the nodes and wait until they accept clients and one leads.
//! 3. For `time_limit`, drive client workers (two per node by default),
//!    each bound to one node, while the nemesis starts and stops faults.
//! 4. Stop the clients, undo every fault, wait for the cluster to recover
//!    and read every key through every node.
//! 5. Stop the nodes and the network, then check what was recorded.
//!
//! An interrupt (Ctrl-C) skips to step 5 without checking: the history on
//! disk is complete up to that moment and `faultline check` can read it.

pub mod bench;
pub mod check;
pub mod clients;
pub mod cluster;
pub mod nemesis;
pub mod observe;
pub mod observe_log;
pub mod observe_status;
mod phases;
pub mod process;
pub mod progress;
pub mod recorder;
mod setup;
pub mod store;

use crate::target::{Layout, Target};
use anyhow::Context;
use clap::ValueEnum;
use cluster::Cluster;
use nemesis::FaultKind;
use observe::Observer;
use recorder::Recorder;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Which network backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NetChoice {
    /// netns when running as root with `ip` and `nft`, else proxy.
    Auto,
    /// Userspace TCP proxies on loopback; needs nothing.
    Proxy,
    /// A network namespace per node with nftables rules; needs root.
    Netns,
}

/// Every option of one run, resolved; stored in `test.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub target: String,
    pub workload: String,
    pub nodes: usize,
    pub time_limit: f64,
    pub concurrency: usize,
    pub rate: f64,
    pub keys: usize,
    pub op_timeout: f64,
    pub nemesis: Vec<FaultKind>,
    pub nemesis_interval: f64,
    pub seed: u64,
    pub net: NetChoice,
    pub bugs: Vec<String>,
    pub store: PathBuf,
    pub check_time_limit: f64,
    pub read_mode: workloads::etcd::ReadMode,
}

impl Config {
    /// The command line that repeats this run.
    pub fn command(&self) -> String {
        let kinds: Vec<String> = self.nemesis.iter().map(|k| value_name(*k)).collect();
        let mut line = format!(
            "faultline test --target {} --workload {} --nodes {} --time-limit {} \
             --concurrency {} --rate {} --keys {} --op-timeout {} --nemesis {} \
             --nemesis-interval {} --seed {} --net {} --check-time-limit {} --store {}",
            self.target,
            self.workload,
            self.nodes,
            self.time_limit,
            self.concurrency,
            self.rate,
            self.keys,
            self.op_timeout,
            if kinds.is_empty() {
                "none".into()
            } else {
                kinds.join(",")
            },
            self.nemesis_interval,
            self.seed,
            value_name(self.net),
            self.check_time_limit,
            self.store.display(),
        );
        for bug in &self.bugs {
            line += &format!(" --bug {bug}");
        }
        if self.read_mode != workloads::etcd::ReadMode::default() {
            line += " --read-mode serializable";
        }
        line
    }

    /// A run directory name: `<target>-<workload>`.
    pub fn test_name(&self, target: &Target) -> String {
        format!("{}-{}", target.name, self.workload)
    }
}

/// The name clap knows a value by.
pub fn value_name<T: ValueEnum>(value: T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// How a run ended.
pub struct RunSummary {
    pub dir: PathBuf,
    /// The command line that repeats the run, with the network it used.
    pub command: String,
    /// `None` when interrupted before checking.
    pub results: Option<check::Results>,
    pub net: String,
    pub left_out: Vec<String>,
    pub report: Option<PathBuf>,
}

/// Runs one test; `interrupt` turns true on Ctrl-C.
///
/// The network is chosen and checked against the target before anything is
/// created; the run directory becomes `store/latest` once the run is
/// recorded in `test.json`, and is removed when setup fails before that.
pub async fn run_once(
    config: &Config,
    target: &Target,
    interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunSummary> {
    let (net, why) = choose_network(config.net, target)?;
    let config = &Config {
        net,
        ..config.clone()
    };
    let dir = store::create_run_dir(&config.store, &config.test_name(target))?;
    store::log_to(&dir.join("faultline.log"))?;
    tracing::info!(seed = config.seed, dir = %dir.display(), "run starting");
    let result = run_in(config, target, &dir, &why, interrupt).await;
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "run failed");
    }
    store::close_log();
    if result.is_err() && !dir.join("test.json").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        // The test's folder too, when this was its only run.
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    result
}

async fn run_in(
    config: &Config,
    target: &Target,
    dir: &std::path::Path,
    why: &str,
    interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunSummary> {
    let run_id = dir.display().to_string();
    // The shared state dir may belong to another user; the run dir will do,
    // though `faultline clean` then does not see the run.
    let registry = ::nemesis::registry::Registry::create(&run_id)
        .or_else(|e| {
            tracing::warn!(error = %e, "state dir not writable, keeping state in the run");
            ::nemesis::registry::Registry::create_in(&dir.join("state"), &run_id)
        })
        .context("cannot create the run's state file")?;
    // Everything recorded is undone by the time the guard drops, on success,
    // on error and on a panic: the state file goes then.
    let _finish = FinishOnDrop(&registry);
    run_registered(config, target, dir, why, &registry, interrupt).await
}

/// Clears the run's state file when dropped, unless something recorded in
/// it is still there to be cleaned by `faultline clean`.
struct FinishOnDrop<'a>(&'a ::nemesis::registry::Registry);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.finish() {
            tracing::warn!(error = %e, "run state not cleared");
        }
    }
}

/// The run, once its resources are recorded in `registry`.
async fn run_registered(
    config: &Config,
    target: &Target,
    dir: &std::path::Path,
    why: &str,
    registry: &::nemesis::registry::Registry,
    mut interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunSummary> {
    let n = config.nodes;

    // The network.
    let client_ports = (0..n)
        .map(|_| ::nemesis::net::free_port())
        .collect::<Result<Vec<_>, _>>()?;
    let peer_ports = (0..n)
        .map(|_| ::nemesis::net::free_port())
        .collect::<Result<Vec<_>, _>>()?;
    let net = make_net(config.net, registry, n, &peer_ports)?;
    println!("network: {} ({why})", net.kind());

    let mut kinds = config.nemesis.clone();
    let mut left_out = Vec::new();
    if n < 2 && kinds.contains(&FaultKind::Partition) {
        let why = "partitions need at least 2 nodes";
        println!("partition faults left out: {why}");
        left_out.push(format!("partition: {why}"));
        kinds.retain(|k| *k != FaultKind::Partition);
    }

    // Clock faults need libfaketime and a program it can wrap.
    let mut clocks = Vec::new();
    if kinds.contains(&FaultKind::Clock) {
        match setup::clock_support(target, registry, n) {
            Ok(made) => clocks = made,
            Err(why) => {
                println!("clock faults left out: {why}");
                left_out.push(format!("clock: {why}"));
                kinds.retain(|k| *k != FaultKind::Clock);
            }
        }
    }

    let ids: Vec<String> = (0..n).map(::nemesis::node_name).collect();
    let layout = Layout {
        hosts: (0..n).map(|i| net.node_host(i)).collect(),
        links: (0..n)
            .map(|from| {
                (0..n)
                    .map(|to| net.peer_addr(from, to, peer_ports[to]))
                    .collect()
            })
            .collect(),
        data_dirs: ids
            .iter()
            .map(|id| dir.join("nodes").join(id).join("data"))
            .collect(),
        ids: ids.clone(),
        client_ports,
        peer_ports,
        bugs: config.bugs.clone(),
    };

    let start = Instant::now();
    let (recorder, recorder_thread) = Recorder::start(&dir.join("history.jsonl"), start)?;
    let observer = Arc::new(Observer::create(
        &dir.join("observations.jsonl"),
        ids.clone(),
        start,
    )?);
    let mut cluster = Cluster::new(
        target,
        layout,
        net.clone(),
        registry.clone(),
        dir,
        observer.clone(),
    )?;
    cluster.set_clocks(clocks);

    setup::write_test_json(dir, config, target, &cluster, net.kind(), &kinds, &left_out)?;
    store::point_latest_at(&config.store, dir);

    cluster.start_all().await?;
    let (status_stop, polled) = watch::channel(false);
    if let crate::target::Observations::Status(status) = &target.observations {
        let source = Arc::new(
            observe_status::StatusSource::new(status).map_err(anyhow::Error::msg)?,
        );
        for (i, id) in ids.iter().enumerate() {
            let poll = source.clone().poll_node(
                id.clone(),
                cluster.client_addr(i),
                observer.clone(),
                polled.clone(),
            );
            tokio::spawn(poll);
        }
    }
    let cluster = Arc::new(tokio::sync::Mutex::new(cluster));
    let ready_timeout = Duration::from_secs_f64(target.ready.timeout_secs);
    let outcome = phases::drive(
        config,
        target,
        &cluster,
        &net,
        &observer,
        &recorder,
        kinds,
        ready_timeout,
        &mut interrupt,
    )
    .await;

    // Teardown happens whatever happened above.
    let _ = status_stop.send(true);
    cluster.lock().await.shutdown().await;
    let crashed: Vec<String> = match &outcome {
        Ok(c) => c.clone(),
        Err(_) => Vec::new(),
    };
    drop(recorder);
    let recorded =
        tokio::task::spawn_blocking(move || recorder_thread.finish()).await??;
    tracing::info!(operations = recorded, "history written");
    let crashed = outcome.map(|_| crashed)?;

    let interrupted = *interrupt.borrow();
    let mut summary = RunSummary {
        dir: dir.to_path_buf(),
        command: config.command(),
        results: None,
        net: net.kind().to_string(),
        left_out,
        report: None,
    };
    if interrupted {
        return Ok(summary);
    }
    let check_dir = dir.to_path_buf();
    let limit = Duration::from_secs_f64(config.check_time_limit);
    let elections = target.observes_roles();
    let results = tokio::task::spawn_blocking(move || {
        check::check_run(&check_dir, limit, elections, crashed)
    })
    .await??;
    summary.results = Some(results);
    let report_dir = dir.to_path_buf();
    summary.report =
        tokio::task::spawn_blocking(move || write_report(&report_dir)).await?;
    Ok(summary)
}

/// The network a run uses (never `auto`) and why, refusing one that cannot
/// be made here or that the target cannot run on.
fn choose_network(
    choice: NetChoice,
    target: &Target,
) -> anyhow::Result<(NetChoice, String)> {
    let (net, why) = match choice {
        NetChoice::Auto => match ::nemesis::net::auto_select() {
            ("netns", why) => (NetChoice::Netns, why),
            (_, why) => (NetChoice::Proxy, why),
        },
        NetChoice::Proxy => (NetChoice::Proxy, "asked for with --net proxy".to_string()),
        NetChoice::Netns => {
            ::nemesis::netns::check_support()
                .map_err(|e| anyhow::anyhow!("--net netns cannot run here: {e}"))?;
            (NetChoice::Netns, "asked for with --net netns".to_string())
        }
    };
    let kind = value_name(net);
    if target.networks.is_empty() || target.networks.contains(&kind) {
        return Ok((net, why));
    }
    let hint = if target.networks.iter().any(|k| k == "netns") {
        "; the netns network needs root with `ip` and `nft` installed (run as root, \
         where --net auto picks it)"
    } else {
        ""
    };
    anyhow::bail!(
        "target {} runs only on the {} network, but this run would use {kind} ({why}){hint}",
        target.name,
        target.networks.join(" or ")
    )
}

fn make_net(
    net: NetChoice,
    registry: &::nemesis::registry::Registry,
    n: usize,
    peer_ports: &[u16],
) -> anyhow::Result<Arc<dyn ::nemesis::Network>> {
    Ok(if net == NetChoice::Netns {
        Arc::new(::nemesis::netns::NetnsNet::create(registry, n)?)
    } else {
        Arc::new(::nemesis::proxy::ProxyNet::start(n, peer_ports)?)
    })
}

/// Writes report.html; a report that cannot be drawn does not change the
/// verdict, so the failure is only printed.
fn write_report(dir: &std::path::Path) -> Option<PathBuf> {
    match crate::report::write_report(dir) {
        Ok(path) => Some(path),
        Err(e) => {
            println!("report not written: {e:#}");
            None
        }
    }
}
