//! The proxy backend: every node on 127.0.0.1, one userspace TCP proxy per
//! directed peer link.
//!
//! Node `j` listens for peers on `127.0.0.1:peer_ports[j]`. For each ordered
//! pair `(i, j)`, a proxy listens on a port of its own and forwards to node
//! `j`'s peer port; node `i` is told to reach `j` at that proxy
//! ([`Network::peer_addr`]). Cutting the link `i -> j` closes every
//! connection through its proxy and closes new ones as soon as they are
//! accepted; healing lets connections through again. [`ProxyNet::set_delay`]
//! adds latency to every link. Nothing needs root.
//!
//! # Limits
//!
//! - Only targets that take a separate address per peer can be proxied this
//!   way (raft-kv's `--peer nJ=ADDR`). A target that tells every member the
//!   same advertised URL for a node (etcd) needs the netns backend.
//! - Only the peer port given to [`ProxyNet::start`] is proxied; any other
//!   port of a node is reached directly and never partitioned.
//! - A cut is a closed connection, not silently lost packets: peers learn of
//!   a partition at once instead of by timeout. Which direction a message
//!   travels is decided by who dialled: a node that answers over a
//!   connection it accepted is cut only when the dialling direction is.
//! - The proxies run on the caller's tokio runtime and die with the process.

use crate::grudge::Grudge;
use crate::net::Network;
use crate::{Error, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a proxy waits to connect to its target before giving up on a
/// connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Chunks a delayed direction may hold before reading stops (backpressure).
const QUEUE_CHUNKS: usize = 256;

/// Userspace proxies on loopback; see the module docs.
pub struct ProxyNet {
    n: usize,
    peer_ports: Vec<u16>,
    /// Indexed by `from * n + to`; `None` on the diagonal.
    links: Vec<Option<Link>>,
    /// Added one-way delay in microseconds, shared by every connection.
    delay: Arc<AtomicU64>,
}

struct Link {
    listen: SocketAddr,
    cut: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl ProxyNet {
    /// Starts `n * (n - 1)` proxies, one per directed link, all healed.
    /// `peer_ports[j]` is the port node `j` listens on for peers. Must be
    /// called inside a tokio runtime, whose tasks run the proxies.
    pub fn start(n: usize, peer_ports: &[u16]) -> Result<ProxyNet> {
        if peer_ports.len() != n {
            return Err(Error::Invalid(format!(
                "got {} peer ports for {n} nodes; expected one per node",
                peer_ports.len()
            )));
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Unsupported(
                "the proxy network needs a tokio runtime; found none".into(),
            )
        })?;
        let _entered = handle.enter();
        let delay = Arc::new(AtomicU64::new(0));
        let mut links = Vec::with_capacity(n * n);
        for from in 0..n {
            for (to, &port) in peer_ports.iter().enumerate() {
                let link = if from == to {
                    None
                } else {
                    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                    Some(Link::start(target, delay.clone())?)
                };
                links.push(link);
            }
        }
        tracing::info!(
            nodes = n,
            proxies = n * n.saturating_sub(1),
            "proxy network started"
        );
        Ok(ProxyNet {
            n,
            peer_ports: peer_ports.to_vec(),
            links,
            delay,
        })
    }

    /// Holds every byte on every peer link for `delay` before passing it on,
    /// from now on (bytes already waiting keep their old delay). Zero turns
    /// the delay off. A round trip through two proxies takes twice as long.
    pub fn set_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.delay.store(micros, Ordering::Relaxed);
        tracing::info!(delay_ms = delay.as_millis() as u64, "proxy delay");
    }

    /// Whether the directed link `from -> to` is cut.
    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        self.link(from, to).is_some_and(|l| *l.cut.borrow())
    }

    fn link(&self, from: usize, to: usize) -> Option<&Link> {
        if from >= self.n || to >= self.n {
            return None;
        }
        self.links[from * self.n + to].as_ref()
    }
}

impl Link {
    fn start(target: SocketAddr, delay: Arc<AtomicU64>) -> Result<Link> {
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| Error::io("binding a proxy listener on 127.0.0.1:0", e))?;
        let listen = std_listener
            .local_addr()
            .map_err(|e| Error::io("reading a proxy listener's address", e))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("making a proxy listener non-blocking", e))?;
        let listener = TcpListener::from_std(std_listener)
            .map_err(|e| Error::io("registering a proxy listener with tokio", e))?;
        let (cut, cut_rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, target, cut_rx, delay));
        Ok(Link {
            listen,
            cut,
            accept,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    cut: watch::Receiver<bool>,
    delay: Arc<AtomicU64>,
) {
    loop {
        let inbound = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::debug!(%target, %err, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if *cut.borrow() {
            drop(inbound);
            continue;
        }
        tokio::spawn(forward(inbound, target, cut.clone(), delay.clone()));
    }
}

/// Forwards both ways between the accepted connection and a new one to
/// the target, until both sides close or the link is cut.
async fn forward(
    inbound: TcpStream,
    target: SocketAddr,
    mut cut: watch::Receiver<bool>,
    delay: Arc<AtomicU64>,
) {
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target));
    let outbound = match connect.await {
        Ok(Ok(stream)) => stream,
        _ => return,
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let both = async {
        tokio::join!(
            pump(in_read, out_write, delay.clone()),
            pump(out_read, in_write, delay),
        )
    };
    tokio::select! {
        _ = both => {}
        _ = cut.wait_for(|cut| *cut) => {
            tracing::trace!(%target, "proxy connection cut");
        }
    }
}

/// Copies one direction, holding each chunk until the delay in force when
/// it was read has passed; order is kept. An end of stream is passed on as
/// a shutdown of the writing side.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Arc<AtomicU64>) {
    let (queue, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            let hold = Duration::from_micros(delay.load(Ordering::Relaxed));
            if queue
                .send((Instant::now() + hold, buf[..n].to_vec()))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let write = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

impl Network for ProxyNet {
    fn kind(&self) -> &'static str {
        "proxy"
    }

    fn node_host(&self, _node: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    /// The proxy of the link `from -> to` when `port` is `to`'s peer port,
    /// else `to`'s own address (not partitioned).
    fn peer_addr(&self, from: usize, to: usize, port: u16) -> SocketAddr {
        match self.link(from, to) {
            Some(link) if self.peer_ports.get(to) == Some(&port) => link.listen,
            _ => SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        }
    }

    fn client_addr(&self, _node: usize, port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    fn wrap(&self, _node: usize, cmd: Command) -> Command {
        cmd
    }

    fn partition(&self, grudge: &Grudge) -> Result<()> {
        grudge.expect_nodes(self.n)?;
        for from in 0..self.n {
            for to in 0..self.n {
                if let Some(link) = self.link(from, to) {
                    link.cut.send_replace(grudge.cuts(from, to));
                }
            }
        }
        tracing::info!(grudge = %grudge.describe(), "proxy partition");
        Ok(())
    }

    fn heal(&self) -> Result<()> {
        for link in self.links.iter().flatten() {
            link.cut.send_replace(false);
        }
        tracing::info!("proxy heal");
        Ok(())
    }

    /// Cuts every link (closing all connections) and stops accepting.
    fn teardown(&self) -> Result<()> {
        for link in self.links.iter().flatten() {
            link.cut.send_replace(true);
            link.accept.abort();
        }
        Ok(())
    }
}

impl Drop for ProxyNet {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}
