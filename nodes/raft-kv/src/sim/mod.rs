//! A deterministic simulated network that runs the same [`Core`] as the
//! real node: every random choice (latency, loss, partitions, crashes,
//! clock rates, client operations) comes from one seed, so a failing seed
//! replays exactly.
//!
//! Time is simulated in milliseconds. Each node ticks at its own rate (a
//! slow clock ticks less often), messages take 1 to `max_latency` ms (so
//! they reorder), may be lost, and are dropped across a partition. A
//! crashed node loses everything but its [`Disk`], which holds exactly
//! what the core asked to persist. The run ends with a quiet phase (all
//! healed and up) so that the final committed log can be checked against
//! the client history (see [`check`]).

pub mod check;
mod workload;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::bugs::Bugs;
use crate::core::{Config, Core, Entry, HardState, Message, Output, Persist};
use crate::kv::Reply;
use check::{Checker, ClientOp, Violation};

/// The shape of one simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed every random choice comes from.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Length of the faulty phase, in ms.
    pub duration: u64,
    /// Length of the final quiet phase, in ms.
    pub quiet: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Longest message latency, in ms.
    pub max_latency: u64,
    /// Mean time between faults, in ms; 0 for none.
    pub fault_every: u64,
    /// Time between client operations, in ms.
    pub op_every: u64,
    /// The most a fault may slow a node's clock (1 for no clock skew).
    pub max_slowdown: u64,
    /// Seeded bugs, on every node.
    pub bugs: Bugs,
}

impl SimConfig {
    /// A modest run for `seed`: 3 or 5 nodes (by the seed's parity),
    /// 1.2 s of faults and 0.8 s of quiet.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes: [5, 3][(seed % 2) as usize],
            duration: 1200,
            quiet: 800,
            loss: 0.02,
            max_latency: 8,
            fault_every: 120,
            op_every: 8,
            max_slowdown: 4,
            bugs: Bugs::none(),
        }
    }
}

/// The core's settings in the simulation: a tick is 10 ms of a normal
/// clock, heartbeats every 3 ticks, elections after 10 to 20.
const TICK_MS: u64 = 10;

/// What a crashed node keeps.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// Term and vote.
    pub hard: HardState,
    /// The log.
    pub log: Vec<Entry>,
}

struct Node {
    core: Option<Core>,
    disk: Disk,
    /// Milliseconds between ticks of this node's clock.
    tick_ms: u64,
    /// Bumped on every crash so that the dead node's ticks are dropped.
    epoch: u64,
    restarts: u64,
}

enum Event {
    Tick(usize, u64),
    Deliver(Message),
    Restart(usize),
    Invoke,
    Fault,
    Quiet,
}

/// An event and when it happens; ordered by (time, scheduling order) so
/// that equal times keep a deterministic order.
struct Scheduled {
    at: (u64, u64),
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

/// What a run produced, for tests that want more than a verdict.
#[derive(Debug, Default)]
pub struct Report {
    /// Client operations answered with success.
    pub ok: usize,
    /// Client operations invoked at least 300 ms into the quiet phase
    /// that succeeded: the healed cluster serves again.
    pub ok_when_quiet: usize,
    /// Client operations answered at all (success or failure).
    pub answered: usize,
    /// Client operations invoked.
    pub invoked: usize,
    /// The highest term reached.
    pub max_term: u64,
    /// The length of the final committed log.
    pub committed: u64,
}

/// One simulated cluster.
pub struct Sim {
    config: SimConfig,
    rng: SmallRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: Vec<Node>,
    /// The partition side of each node; messages cross no side.
    side: Vec<u8>,
    quiet: bool,
    history: Vec<ClientOp>,
    next_value: i64,
    checker: Checker,
}

fn name(i: usize) -> String {
    format!("n{}", i + 1)
}

impl Sim {
    /// A cluster of fresh nodes.
    pub fn new(config: SimConfig) -> Sim {
        let mut sim = Sim {
            rng: SmallRng::seed_from_u64(config.seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: Vec::new(),
            side: vec![0; config.nodes],
            quiet: false,
            history: Vec::new(),
            next_value: 1,
            checker: Checker::default(),
            config,
        };
        for i in 0..sim.config.nodes {
            sim.nodes.push(Node {
                core: None,
                disk: Disk::default(),
                tick_ms: TICK_MS,
                epoch: 0,
                restarts: 0,
            });
            sim.start(i);
        }
        sim.schedule(1, Event::Invoke);
        if sim.config.fault_every > 0 {
            let first = sim.rng.gen_range(1..=2 * sim.config.fault_every);
            sim.schedule(first, Event::Fault);
        }
        sim.schedule(sim.config.duration, Event::Quiet);
        sim
    }

    fn schedule(&mut self, after: u64, event: Event) {
        self.seq += 1;
        let at = (self.now + after, self.seq);
        self.queue.push(Reverse(Scheduled { at, event }));
    }

    fn start(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let config = Config {
            id: name(i),
            peers: (0..self.config.nodes)
                .filter(|&j| j != i)
                .map(name)
                .collect(),
            election_ticks: (10, 20),
            heartbeat_ticks: 3,
            bugs: self.config.bugs.clone(),
            seed: self.config.seed ^ ((i as u64) << 32) ^ node.restarts,
        };
        node.core = Some(Core::new(
            config,
            node.disk.hard.clone(),
            node.disk.log.clone(),
        ));
        let (epoch, tick) = (node.epoch, node.tick_ms);
        self.schedule(tick, Event::Tick(i, epoch));
    }

    /// Runs to the end and returns the first violation found, if any.
    pub fn run(mut self) -> Result<Report, Violation> {
        self.advance(self.config.duration + self.config.quiet)?;
        self.finish()
    }

    /// Runs the events up to simulated time `until` (in ms), stopping at
    /// the first violation.
    pub fn advance(&mut self, until: u64) -> Result<(), Violation> {
        while self
            .queue
            .peek()
            .is_some_and(|Reverse(next)| next.at.0 <= until)
        {
            let Some(Reverse(Scheduled { at, event })) = self.queue.pop() else {
                break;
            };
            self.now = at.0;
            self.handle(event);
            if let Some(violation) = self.checker.violation.take() {
                return Err(violation);
            }
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Cuts `nodes` off from the rest (for scripted scenarios).
    pub fn partition(&mut self, nodes: &[usize]) {
        for (i, side) in self.side.iter_mut().enumerate() {
            *side = u8::from(nodes.contains(&i));
        }
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.side.iter_mut().for_each(|s| *s = 0);
    }

    /// The live leader of the highest term, with that term.
    pub fn leader(&self) -> Option<(usize, u64)> {
        let leader = self.current_leader()?;
        Some((leader, self.term(leader)?))
    }

    /// The current term of a live node.
    pub fn term(&self, node: usize) -> Option<u64> {
        self.nodes.get(node)?.core.as_ref().map(|c| c.term())
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick(i, epoch) => {
                if self.nodes[i].epoch != epoch {
                    return;
                }
                if let Some(core) = self.nodes[i].core.as_mut() {
                    core.tick();
                }
                self.drain(i);
                let tick = self.nodes[i].tick_ms;
                self.schedule(tick, Event::Tick(i, epoch));
            }
            Event::Deliver(msg) => {
                let to = node_index(&msg.to);
                if self.side[to] != self.side[node_index(&msg.from)] {
                    return;
                }
                if let Some(core) = self.nodes[to].core.as_mut() {
                    core.step(msg);
                    self.drain(to);
                }
            }
            Event::Restart(i) => {
                if self.nodes[i].core.is_none() {
                    self.nodes[i].restarts += 1;
                    self.start(i);
                }
            }
            Event::Invoke => self.invoke(),
            Event::Fault => {
                if !self.quiet {
                    self.fault();
                    let next = self.rng.gen_range(1..=2 * self.config.fault_every);
                    self.schedule(next, Event::Fault);
                }
            }
            Event::Quiet => {
                self.quiet = true;
                self.side.iter_mut().for_each(|s| *s = 0);
                for i in 0..self.nodes.len() {
                    self.nodes[i].tick_ms = TICK_MS;
                    if self.nodes[i].core.is_none() {
                        self.nodes[i].restarts += 1;
                        self.start(i);
                    }
                }
            }
        }
    }

    /// Carries out node `i`'s outputs: disk first, then the rest.
    fn drain(&mut self, i: usize) {
        let Some(core) = self.nodes[i].core.as_mut() else {
            return;
        };
        let outputs = core.take_output();
        let id = name(i);
        for output in &outputs {
            if let Output::Persist(p) = output {
                let disk = &mut self.nodes[i].disk;
                match p {
                    Persist::HardState(h) => disk.hard = h.clone(),
                    Persist::Truncate { from } => disk.log.truncate(*from as usize - 1),
                    Persist::Append(entries) => disk.log.extend(entries.iter().cloned()),
                }
            }
        }
        for output in outputs {
            match output {
                Output::Persist(_) => {}
                Output::Send(msg) => {
                    let lost = !self.quiet && self.rng.gen_bool(self.config.loss);
                    let (from, to) = (node_index(&msg.from), node_index(&msg.to));
                    if !lost && self.side[from] == self.side[to] {
                        let latency = self.rng.gen_range(1..=self.config.max_latency);
                        self.schedule(latency, Event::Deliver(msg));
                    }
                }
                Output::Reply { token, reply } => {
                    if let Some(op) = self.history.get_mut(token as usize) {
                        if op.completed.is_none() {
                            op.completed = Some((self.now, reply));
                        }
                    }
                }
                Output::Role { term, role, .. } => self.checker.saw_role(&id, term, role),
                Output::Applied {
                    index,
                    term,
                    digest,
                } => self.checker.saw_apply(&id, index, term, &digest),
            }
        }
    }

    fn finish(mut self) -> Result<Report, Violation> {
        let logs: Vec<(String, &[Entry])> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.core.as_ref().map(|c| (name(i), c.log().entries())))
            .collect();
        self.checker.check_logs(&logs);
        let best = self
            .nodes
            .iter()
            .filter_map(|n| n.core.as_ref())
            .max_by_key(|c| c.commit_index());
        let (committed, max_term) = match best {
            Some(core) => {
                let n = core.commit_index() as usize;
                (core.log().entries()[..n].to_vec(), core.term())
            }
            None => (Vec::new(), 0),
        };
        self.checker.check_history(&self.history, &committed);
        if let Some(violation) = self.checker.violation.take() {
            return Err(violation);
        }
        let succeeded = |op: &&ClientOp| matches!(op.completed, Some((_, ref reply)) if !matches!(reply, Reply::Failed(_)));
        let settled = self.config.duration + 300;
        Ok(Report {
            ok: self.history.iter().filter(succeeded).count(),
            ok_when_quiet: self
                .history
                .iter()
                .filter(|op| op.invoked >= settled)
                .filter(succeeded)
                .count(),
            answered: self
                .history
                .iter()
                .filter(|op| op.completed.is_some())
                .count(),
            invoked: self.history.len(),
            max_term,
            committed: committed.len() as u64,
        })
    }
}

fn node_index(id: &str) -> usize {
    id[1..].parse::<usize>().map_or(0, |n| n - 1)
}

/// Runs one simulation.
pub fn run(config: SimConfig) -> Result<Report, Violation> {
    Sim::new(config).run()
}
