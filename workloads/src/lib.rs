//! Operation generators and the clients for each target protocol.
//!
//! A client turns one [`Invocation`] into one [`Completion`] against one
//! node. Clients classify errors: only an answer that proves the operation
//! did not and will not take effect is a `fail`; timeouts, lost connections
//! and anything ambiguous are `info`.
//!
//! - [`register`]: the register workload's generator (read, write, cas).
//! - [`raftkv`]: the client of the reference raft-kv node.
//! - [`instant`]: an in-memory client that answers at once, to measure the
//!   harness itself.

pub mod client;
pub mod etcd;
pub mod http;
pub mod instant;
pub mod raftkv;
pub mod register;

pub use client::{Client, Completion, Invocation};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// How clients talk to a target's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// JSON lines over TCP, see [`raftkv`].
    RaftKv,
    /// etcd's v3 JSON gateway over HTTP, see [`etcd`].
    Etcd,
}

/// Client settings chosen per run on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// How etcd serves reads (`--read-mode`); other protocols ignore it.
    pub read_mode: etcd::ReadMode,
}

impl Protocol {
    /// A new client of the node whose client address is `addr`. It connects
    /// on its first call.
    pub fn client(self, addr: SocketAddr) -> Box<dyn Client> {
        self.client_with(addr, ClientOptions::default())
    }

    /// [`Protocol::client`] with settings other than the defaults.
    pub fn client_with(
        self,
        addr: SocketAddr,
        options: ClientOptions,
    ) -> Box<dyn Client> {
        match self {
            Protocol::RaftKv => Box::new(raftkv::RaftKvClient::new(addr)),
            Protocol::Etcd => Box::new(etcd::EtcdClient::new(addr, options.read_mode)),
        }
    }
}
