//! The tokio shell that runs the core as a real process: a ticker, the
//! peer links, the client server, the disk, and the observation lines.
//!
//! One task owns the core. It takes a batch of events, feeds them in, then
//! carries out the outputs: first the disk writes (fsynced), then messages,
//! client answers and observations, so nothing leaves the node before the
//! state it depends on is durable.

mod clients;
mod peers;

pub use clients::{parse_request, response};

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{error, info};

use crate::bugs::Bugs;
use crate::core::{Config, Core, Message, Output, Role};
use crate::kv::{ErrorKind, KvOp, Reply};
use crate::storage::Storage;
use crate::{Error, NodeId};
use clients::Waiter;

/// The core's clock tick.
pub const TICK: Duration = Duration::from_millis(10);

/// Everything a node process needs to run.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// This node's id.
    pub id: NodeId,
    /// Where term, vote and log live.
    pub data_dir: PathBuf,
    /// Where clients connect.
    pub client_addr: SocketAddr,
    /// Where peers connect.
    pub peer_addr: SocketAddr,
    /// How this node reaches each peer.
    pub peers: Vec<(NodeId, String)>,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// How long a client request may wait before a timeout answer.
    pub request_timeout: Duration,
    /// Seeded bugs switched on.
    pub bugs: Bugs,
}

/// What the core's task is told.
pub enum Event {
    /// A message from a peer.
    Peer(Message),
    /// A client request, numbered by the client server.
    Client {
        token: u64,
        op: KvOp,
        waiter: Waiter,
    },
}

fn ticks(d: Duration) -> u64 {
    (d.as_millis() / TICK.as_millis()).max(1) as u64
}

/// Runs the node until the process is killed.
pub async fn run(options: NodeOptions) -> Result<(), Error> {
    let (mut storage, state, entries) = Storage::open(&options.data_dir)?;
    info!(node = %options.id, term = state.term, entries = entries.len(), "recovered");
    let config = Config {
        id: options.id.clone(),
        peers: options.peers.iter().map(|(id, _)| id.clone()).collect(),
        election_ticks: (
            ticks(options.election_timeout.0),
            ticks(options.election_timeout.1),
        ),
        heartbeat_ticks: ticks(options.heartbeat),
        bugs: options.bugs.clone(),
        seed: rand::random(),
    };
    let mut core = Core::new(config, state, entries);

    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|source| Error::Io {
            path: addr.to_string(),
            source,
        })
    };
    let peer_listener = bind(options.peer_addr).await?;
    let client_listener = bind(options.client_addr).await?;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    tokio::spawn(peers::listen(peer_listener, events_tx.clone()));
    tokio::spawn(clients::listen(client_listener, events_tx));
    let links: HashMap<NodeId, peers::Link> = options
        .peers
        .iter()
        .map(|(id, addr)| (id.clone(), peers::connect(id.clone(), addr.clone())))
        .collect();
    info!(node = %options.id, client = %options.client_addr,
        peer = %options.peer_addr, "listening");

    let mut shell = Shell {
        id: options.id.clone(),
        links,
        waiting: HashMap::new(),
        deadlines: VecDeque::new(),
        request_timeout: options.request_timeout,
    };
    // A first role line says the node is up and which term it recovered.
    shell.observe_role(core.term(), Role::Follower, None);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                core.tick();
                shell.expire();
            }
            event = events.recv() => {
                let Some(event) = event else { return Ok(()) };
                shell.feed(&mut core, event);
                for _ in 0..512 {
                    match events.try_recv() {
                        Ok(event) => shell.feed(&mut core, event),
                        Err(_) => break,
                    }
                }
            }
        }
        shell.carry_out(&mut core, &mut storage)?;
    }
}

struct Shell {
    id: NodeId,
    links: HashMap<NodeId, peers::Link>,
    waiting: HashMap<u64, Waiter>,
    deadlines: VecDeque<(Instant, u64)>,
    request_timeout: Duration,
}

impl Shell {
    fn feed(&mut self, core: &mut Core, event: Event) {
        match event {
            Event::Peer(msg) => core.step(msg),
            Event::Client { token, op, waiter } => {
                self.waiting.insert(token, waiter);
                self.deadlines
                    .push_back((Instant::now() + self.request_timeout, token));
                core.request(token, op);
            }
        }
    }

    /// Answers requests past their deadline with an indefinite timeout.
    fn expire(&mut self) {
        let now = Instant::now();
        while let Some(&(deadline, token)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if let Some(waiter) = self.waiting.remove(&token) {
                waiter.answer(&Reply::failed(ErrorKind::Timeout, false));
            }
        }
    }

    fn carry_out(&mut self, core: &mut Core, storage: &mut Storage) -> Result<(), Error> {
        let outputs = core.take_output();
        if outputs.is_empty() {
            return Ok(());
        }
        let persists: Vec<_> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Persist(p) => Some(p),
                _ => None,
            })
            .collect();
        if !persists.is_empty() {
            if let Err(err) = storage.persist(&persists) {
                error!(node = %self.id, %err, "cannot persist, stopping");
                return Err(err);
            }
        }
        for output in outputs {
            match output {
                Output::Persist(_) => {}
                Output::Send(msg) => {
                    tracing::trace!(node = %self.id, ?msg, "send");
                    if let Some(link) = self.links.get(&msg.to) {
                        let _ = link.try_send(msg);
                    }
                }
                Output::Reply { token, reply } => {
                    if let Some(waiter) = self.waiting.remove(&token) {
                        waiter.answer(&reply);
                    }
                }
                Output::Role { term, role, leader } => self.observe_role(term, role, leader),
                Output::Applied {
                    index,
                    term,
                    digest,
                } => {
                    let fields = format!(
                        r#""index":{index},"term":{term},"digest":{}"#,
                        json!(digest)
                    );
                    observe("apply", &self.id, &fields);
                }
            }
        }
        Ok(())
    }

    fn observe_role(&self, term: u64, role: Role, leader: Option<NodeId>) {
        let mut fields = format!(r#""term":{term},"role":"{}""#, role.name());
        if role != Role::Leader {
            if let Some(leader) = leader {
                fields.push_str(&format!(r#","leader":{}"#, json!(leader)));
            }
        }
        observe("role", &self.id, &fields);
    }
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Writes one observation line to stderr in a single write; the line
/// starts with `{"observation":` so it can be told from tracing output.
fn observe(kind: &str, node: &str, fields: &str) {
    use std::io::Write;
    let line = format!(
        "{{\"observation\":\"{kind}\",\"time\":{},\"node\":{},{fields}}}\n",
        unix_nanos(),
        json!(node)
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
