//! The nemesis schedule: which fault starts or stops when, drawn from the
//! run's seed, and how each [`Fault`] is carried out on the cluster.
//!
//! Every `interval` the nemesis either starts a fault of a kind that is not
//! active or stops an active one, chosen at random, so faults of different
//! kinds overlap (a skewed clock during a partition). Each fault and each
//! undo is recorded in the history as an operation of process `nemesis`:
//! an `invoke` with the fault's name and targets, then an `info` once it
//! was carried out (with `error` set when it could not be). The kinds and
//! their variants come from the seed; which node is the leader at the time
//! comes from observations, so the exact targets can differ between two
//! runs of one seed.

use super::cluster::Cluster;
use super::observe::Observer;
use super::recorder::Recorder;
use clap::ValueEnum;
use history::{OpType, Process};
use nemesis::{Fault, Grudge, Network};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The kinds of fault `--nemesis` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Network partitions: one node, the leader, halves, a ring of
    /// majorities, a bridge; then heal.
    Partition,
    /// SIGKILL some nodes, the leader among them; restart them later.
    Kill,
    /// SIGSTOP some nodes, the leader among them; SIGCONT them later.
    Pause,
    /// Clock offsets and rate skew through libfaketime; reset later.
    Clock,
}

/// Carries out faults on one cluster and records them.
pub struct Nemesis {
    pub cluster: Arc<tokio::sync::Mutex<Cluster>>,
    pub net: Arc<dyn Network>,
    pub observer: Arc<Observer>,
    pub recorder: Recorder,
    pub rng: StdRng,
    pub kinds: Vec<FaultKind>,
    /// Each active fault: its kind, its description and its undo.
    active: Vec<(FaultKind, String, Fault)>,
    /// Descriptions of the active faults, for the progress bar.
    pub shown: Arc<Mutex<Vec<String>>>,
}

impl Nemesis {
    pub fn new(
        cluster: Arc<tokio::sync::Mutex<Cluster>>,
        net: Arc<dyn Network>,
        observer: Arc<Observer>,
        recorder: Recorder,
        rng: StdRng,
        kinds: Vec<FaultKind>,
    ) -> Nemesis {
        Nemesis {
            cluster,
            net,
            observer,
            recorder,
            rng,
            kinds,
            active: Vec::new(),
            shown: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Starts and stops faults every `interval` until `deadline` or `stop`.
    pub async fn run(
        &mut self,
        interval: Duration,
        deadline: Instant,
        mut stop: watch::Receiver<bool>,
    ) {
        if self.kinds.is_empty() {
            return;
        }
        loop {
            let wake = tokio::time::sleep(interval);
            tokio::select! {
                _ = wake => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if Instant::now() + interval / 2 >= deadline {
                return;
            }
            let idle: Vec<FaultKind> = self
                .kinds
                .iter()
                .copied()
                .filter(|k| !self.active.iter().any(|(a, _, _)| a == k))
                .collect();
            let starts = idle.len();
            let pick = self.rng.gen_range(0..starts + self.active.len());
            if pick < starts {
                let kind = idle[pick];
                let fault = self.draw(kind).await;
                self.apply(&fault).await;
                if let Some(undo) = fault.undo() {
                    self.active.push((kind, fault.describe(), undo));
                }
            } else {
                let (_, _, undo) = self.active.remove(pick - starts);
                self.apply(&undo).await;
            }
            self.show();
        }
    }

    /// Undoes every active fault (healing the network, resuming, restarting,
    /// resetting clocks), then restarts any node that died on its own.
    pub async fn heal_all(&mut self) {
        while let Some((_, _, undo)) = self.active.pop() {
            self.apply(&undo).await;
        }
        let down: Vec<usize> = {
            let cluster = self.cluster.lock().await;
            (0..cluster.len()).filter(|&i| !cluster.is_up(i)).collect()
        };
        if !down.is_empty() {
            self.apply(&Fault::Restart { nodes: down }).await;
        }
        self.show();
    }

    /// A concrete fault of a kind, aimed from the current view of the cluster.
    async fn draw(&mut self, kind: FaultKind) -> Fault {
        let n = self.cluster.lock().await.len();
        let leader = self.observer.leader();
        let rng = &mut self.rng;
        let some_node = |rng: &mut StdRng| rng.gen_range(0..n);
        // `count` nodes, the leader (when known) first among them.
        let with_leader = |rng: &mut StdRng, count: usize| {
            let mut nodes: Vec<usize> = (0..n).collect();
            nodes.shuffle(rng);
            if let Some(l) = leader {
                nodes.retain(|&x| x != l);
                nodes.insert(0, l);
            }
            nodes.truncate(count.clamp(1, n));
            nodes.sort_unstable();
            nodes
        };
        match kind {
            FaultKind::Partition => {
                // Cutting off the leader is the partition that tests most.
                let grudge = match rng.gen_range(0..6) {
                    0 | 1 => Grudge::isolate(n, leader.unwrap_or_else(|| some_node(rng))),
                    2 => Grudge::isolate(n, some_node(rng)),
                    3 => Grudge::halves(n, rng),
                    4 if n >= 4 => Grudge::majorities_ring(n),
                    5 if n >= 3 => Grudge::bridge(n, rng),
                    _ => Grudge::halves(n, rng),
                };
                Fault::Partition { grudge }
            }
            FaultKind::Kill => {
                let count = match rng.gen_range(0..4) {
                    0 => 1,
                    1 => (n - 1) / 2,
                    2 => n / 2 + 1,
                    _ => n,
                };
                Fault::Kill {
                    nodes: with_leader(rng, count),
                }
            }
            FaultKind::Pause => {
                let count = if rng.gen_bool(0.5) { 1 } else { (n - 1) / 2 };
                Fault::Pause {
                    nodes: with_leader(rng, count),
                }
            }
            FaultKind::Clock => {
                // The leader's clock matters most: its timers and leases.
                let node = if rng.gen_bool(0.75) {
                    leader.unwrap_or_else(|| some_node(rng))
                } else {
                    some_node(rng)
                };
                let (offset_ms, rate) = match rng.gen_range(0..4) {
                    // A jump, keeping real rate.
                    0 => (rng.gen_range(-3000..=3000), 1.0),
                    // A fast clock.
                    1 => (0, rng.gen_range(1.5..4.0)),
                    // A slow clock: timers and leases last longer.
                    _ => (0, rng.gen_range(0.05..0.5)),
                };
                Fault::SkewClock {
                    node,
                    offset_ms,
                    rate,
                }
            }
        }
    }

    /// Carries out a fault, recording its invocation and completion.
    pub async fn apply(&mut self, fault: &Fault) {
        let mut invoke = Recorder::op(Process::Nemesis, OpType::Invoke, fault.name());
        invoke.value = fault.value();
        self.recorder.record(invoke).await;
        tracing::info!(fault = %fault.describe(), "nemesis");

        let result = self.carry_out(fault).await;
        let mut done = Recorder::op(Process::Nemesis, OpType::Info, fault.name());
        done.value = fault.value();
        if let Err(e) = result {
            tracing::warn!(fault = %fault.describe(), error = %e, "nemesis fault failed");
            done.error = Some(e.to_string());
        }
        self.recorder.record(done).await;
    }

    async fn carry_out(&mut self, fault: &Fault) -> anyhow::Result<()> {
        let mut cluster = self.cluster.lock().await;
        match fault {
            Fault::Partition { grudge } => self.net.partition(grudge)?,
            Fault::Heal => self.net.heal()?,
            Fault::Kill { nodes } => {
                for &i in nodes {
                    cluster.kill(i).await;
                }
            }
            Fault::Restart { nodes } => {
                for &i in nodes {
                    cluster.start(i)?;
                }
            }
            Fault::Pause { nodes } => {
                for &i in nodes {
                    cluster.pause(i)?;
                }
            }
            Fault::Resume { nodes } => {
                for &i in nodes {
                    cluster.resume(i)?;
                }
            }
            Fault::SkewClock {
                node,
                offset_ms,
                rate,
            } => {
                let clock = cluster
                    .clock(*node)
                    .ok_or_else(|| anyhow::anyhow!("clock faults are off in this run"))?;
                clock.set(*offset_ms, *rate)?;
            }
            Fault::ResetClock { nodes } => {
                for &i in nodes {
                    if let Some(clock) = cluster.clock(i) {
                        clock.reset()?;
                    }
                }
            }
        }
        Ok(())
    }

    fn show(&self) {
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        *shown = self
            .active
            .iter()
            .map(|(_, what, _)| what.clone())
            .collect();
    }
}
