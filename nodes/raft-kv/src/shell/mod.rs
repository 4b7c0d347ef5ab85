//! The tokio shell that runs the core as a real process: a ticker, the
//! peer links, the client server, the disk, and the observation lines.
//!
//! One task owns the core. It takes a batch of events, feeds them in, then
//! carries out the outputs: first the disk writes (fsynced), then messages,
//! client answers and observations, so nothing leaves the node before the
//! state it depends on is durable.

mod clients;
mod peers;

pub use clients::{parse_line, parse_request, response};

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info};

use crate::bugs::Bugs;
use crate::core::{Body, Config, Core, Message, Output, Role};
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
    pub peers: Vec<(NodeId, SocketAddr)>,
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
    /// The forward of the local request `token` to the leader was dropped
    /// before any of it was written to a connection.
    Undelivered { token: u64 },
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
    tokio::spawn(clients::listen(client_listener, events_tx.clone()));
    let links: HashMap<NodeId, peers::Link> = options
        .peers
        .iter()
        .map(|(id, addr)| {
            let link = peers::connect(id.clone(), addr.to_string(), events_tx.clone());
            (id.clone(), link)
        })
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
            Event::Undelivered { token } => self.undelivered(token),
        }
    }

    /// Answers a request whose forward to the leader reached no one.
    ///
    /// A follower keeps no state for a request it forwards, so if the
    /// forward was never written to the leader's connection (no link, a
    /// full queue, or dropped while the link was down) the operation did
    /// not and will not take effect: a definite `not-leader`, without the
    /// unreachable leader's name. Once any byte of it may have left, only
    /// the leader's answer or the indefinite timeout is honest, so
    /// forwards handed to a connection are never reported here.
    fn undelivered(&mut self, token: u64) {
        if let Some(waiter) = self.waiting.remove(&token) {
            debug!(node = %self.id, token, "forward undelivered, answering not-leader");
            waiter.answer(&Reply::not_leader(None));
        }
    }

    /// Hands `msg` to its peer's link; a forward that cannot even be queued
    /// is answered at once (see [`Shell::undelivered`]).
    fn send(&mut self, msg: Message) {
        tracing::trace!(node = %self.id, ?msg, "send");
        let forward = match msg.body {
            Body::Forward { token, .. } => Some(token),
            _ => None,
        };
        let queued = match self.links.get(&msg.to) {
            Some(link) => link.try_send(msg).is_ok(),
            None => false,
        };
        if let (false, Some(token)) = (queued, forward) {
            self.undelivered(token);
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
                Output::Send(msg) => self.send(msg),
                Output::Reply { token, reply } => {
                    if let Some(waiter) = self.waiting.remove(&token) {
                        waiter.answer(&reply);
                    }
                }
                Output::Role { term, role, leader } => {
                    self.observe_role(term, role, leader)
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn shell() -> Shell {
        Shell {
            id: "n2".into(),
            links: HashMap::new(),
            waiting: HashMap::new(),
            deadlines: VecDeque::new(),
            request_timeout: Duration::from_secs(1),
        }
    }

    fn wait(shell: &mut Shell, token: u64) -> mpsc::UnboundedReceiver<String> {
        let (lines, rx) = mpsc::unbounded_channel();
        shell.waiting.insert(token, Waiter { id: token, lines });
        rx
    }

    #[test]
    fn unsendable_forward_is_answered_not_leader_definitely() {
        let mut shell = shell();
        let mut answers = wait(&mut shell, 5);
        let op = KvOp::Read { key: "k".into() };
        shell.send(Message {
            from: "n2".into(),
            to: "n1".into(),
            term: 1,
            body: Body::Forward { token: 5, op },
        });
        let answer: Value = serde_json::from_str(&answers.try_recv().unwrap()).unwrap();
        let expected =
            json!({"id": 5, "ok": false, "error": "not-leader", "definite": true});
        assert_eq!(answer, expected);
        assert!(shell.waiting.is_empty());
    }

    #[test]
    fn undelivered_report_answers_only_a_waiting_request() {
        let mut shell = shell();
        let mut answers = wait(&mut shell, 8);
        shell.undelivered(9);
        assert!(answers.try_recv().is_err());
        shell.undelivered(8);
        let answer: Value = serde_json::from_str(&answers.try_recv().unwrap()).unwrap();
        assert_eq!(answer["error"], "not-leader");
        assert_eq!(answer["definite"], true);
    }
}
