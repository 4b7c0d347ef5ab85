//! raft-kv: the reference Raft key-value node, faultline's default system
//! under test.
//!
//! The consensus [`core`] does no IO; [`shell`] runs it as a real process
//! (TCP and disk, on tokio) and [`sim`] runs it in a deterministic
//! simulated network for tests.
//!
//! # Command line
//!
//! ```text
//! raft-kv --id n1 --data-dir DIR --client-addr 127.0.0.1:7101 \
//!         --peer-addr 127.0.0.1:7201 --peer n2=127.0.0.1:7202 ... \
//!         [--election-timeout 300..600] [--heartbeat 50] [--bug NAME]...
//! ```
//!
//! A node sends to peer `j` only over the TCP connection it opened to the
//! address given for `j`; connections it accepts are only read from, so a
//! proxy on each directed link sees exactly one direction of traffic.
//! Client requests a follower forwards to the leader travel the same links.
//!
//! # Client protocol
//!
//! JSON lines over TCP on `--client-addr`. Requests carry an `id` chosen by
//! the client (an integer from 0 to 2^64-1) and echoed in the response;
//! responses to pipelined requests may come out of order. A line that is
//! not UTF-8 or not a request, or has no valid id, gets a `bad-request`
//! answer (with `"id": null` when it has no valid id and a `message`
//! saying what was expected) and the connection stays open.
//!
//! ```text
//! {"id": 1, "op": "read",  "key": "k1"}
//! {"id": 2, "op": "write", "key": "k1", "value": 3}
//! {"id": 3, "op": "cas",   "key": "k1", "from": 3, "to": 4}
//!
//! {"id": 1, "ok": true, "value": 3}       read; "value": null if never written
//! {"id": 2, "ok": true}                   write, or cas that took effect
//! {"id": 3, "ok": false, "error": "cas-mismatch", "definite": true, "value": 5}
//! {"id": 4, "ok": false, "error": "not-leader", "definite": true, "leader": "n2"}
//! {"id": 5, "ok": false, "error": "timeout", "definite": false}
//! ```
//!
//! `definite: true` means the operation did not and will not take effect;
//! `definite: false` means it may or may not have. Errors: `cas-mismatch`
//! (definite), `not-leader` (definite, `leader` when known; also when a
//! follower could not hand the request to its leader at all),
//! `leader-changed` (indefinite for writes, definite for reads), `timeout`
//! (always indefinite: every request is answered within the request
//! deadline, 1.5 s by default), `bad-request` (definite).
//!
//! Reads are linearizable: the leader answers them by ReadIndex, after a
//! heartbeat round acknowledged by a majority; never from local state
//! alone (unless a seeded bug says otherwise, see [`bugs`]).
//!
//! # Observations
//!
//! Lines on stderr starting with `{"observation":` mark every role change
//! (`"role"`: time, node, term, role, and for a follower the leader it
//! knows) and every applied entry (`"apply"`: index, term, digest). A node
//! also writes a follower line with its recovered term when it starts, and
//! after a restart it applies the log again from index 1 (the same
//! digests). The rest of stderr is human-readable tracing, filtered by
//! `RUST_LOG`.

pub mod bugs;
pub mod cli;
pub mod core;
pub mod kv;
pub mod shell;
pub mod sim;
pub mod storage;

/// A node's name, such as `n1`.
pub type NodeId = String;

/// Errors of the node's library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad command-line option or setting.
    #[error("{0}")]
    Config(String),
    /// A storage file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A storage file holds something unexpected.
    #[error("{path}:{line}: {message}")]
    Corrupt {
        /// The file involved.
        path: String,
        /// The line of the file.
        line: usize,
        /// What was found and what was expected.
        message: String,
    },
}
