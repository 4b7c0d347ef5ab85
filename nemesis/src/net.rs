//! The network a run's nodes talk over, and the choice of backend.
//!
//! A [`Network`] tells the harness where each node listens, how each node
//! reaches each peer, how the harness's clients reach each node, and how to
//! start a node's process inside it; and it cuts and heals links as a
//! [`Grudge`] says. Two backends:
//!
//! - [`ProxyNet`](crate::proxy::ProxyNet): every node on 127.0.0.1, one
//!   userspace TCP proxy per directed peer link. Needs nothing, but works
//!   only for targets that take a separate address for each peer.
//! - [`NetnsNet`](crate::netns::NetnsNet): every node in its own network
//!   namespace with its own address, packets dropped by nftables. Needs root,
//!   `ip` and `nft`, and works for any target and any number of ports.

use crate::grudge::Grudge;
use crate::Result;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;

/// The network of one run.
pub trait Network: Send + Sync {
    /// `"proxy"` or `"netns"`.
    fn kind(&self) -> &'static str;

    /// The node's own address: it listens here, on any port.
    fn node_host(&self, node: usize) -> IpAddr;

    /// The address node `from` dials to reach the listener on `port` of node
    /// `to`. Partitions act on traffic sent to this address.
    fn peer_addr(&self, from: usize, to: usize, port: u16) -> SocketAddr;

    /// The address the harness's clients dial to reach `port` of `node`.
    /// Client traffic is never partitioned.
    fn client_addr(&self, node: usize, port: u16) -> SocketAddr;

    /// Turns the command that starts `node` into one that starts it inside
    /// this network. Program, arguments, environment and working directory
    /// carry over; set standard input and output after wrapping. The wrapped
    /// process has the same pid as the node (it `exec`s).
    fn wrap(&self, node: usize, cmd: Command) -> Command;

    /// Cuts exactly the links the grudge names and heals every other one.
    fn partition(&self, grudge: &Grudge) -> Result<()>;

    /// Heals every link.
    fn heal(&self) -> Result<()>;

    /// Removes everything the network created. Idempotent. Stop the node
    /// processes first: a process keeps its namespace alive.
    fn teardown(&self) -> Result<()>;
}

/// A free TCP port on 127.0.0.1, as the kernel hands out for port 0. Another
/// process may take it before it is used; bind soon.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| crate::Error::io("binding 127.0.0.1:0 to find a free port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| crate::Error::io("reading a listener's address", e))
}

/// Which backend fits this host: `("netns", why)` when running as root with
/// `ip` and `nft` available, else `("proxy", why not netns)`.
pub fn auto_select() -> (&'static str, String) {
    match crate::netns::check_support() {
        Ok(()) => ("netns", "running as root with ip and nft".to_string()),
        Err(err) => ("proxy", format!("netns unavailable: {err}")),
    }
}

/// Copies program, arguments, environment and working directory of `cmd`
/// into a new command that runs `prefix` first, e.g. `ip netns exec NS`.
pub(crate) fn prefixed(prefix: &[&str], cmd: &Command) -> Command {
    let mut wrapped = Command::new(prefix[0]);
    wrapped.args(&prefix[1..]);
    wrapped.arg(cmd.get_program());
    wrapped.args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}
