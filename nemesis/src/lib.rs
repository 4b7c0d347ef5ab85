//! Faults and their undo, in one vocabulary: partition / heal, kill / restart,
//! pause / resume, skew-clock / reset-clock.
//!
//! The harness owns node processes and the schedule; this crate owns the
//! mechanisms:
//!
//! - [`grudge`]: who drops whose packets during a partition.
//! - [`net`]: the [`Network`] trait a run talks to, with two backends:
//!   [`proxy`] (userspace TCP proxies on loopback, no root, optional added
//!   delay) and [`netns`] (a network namespace per node, nftables drop
//!   rules, root); [`net::auto_select`] picks one.
//! - [`signal`]: SIGKILL, SIGSTOP, SIGCONT, SIGTERM.
//! - [`clock`]: per-node clock skew and rate through libfaketime.
//! - [`registry`]: a state file listing every resource a run creates, so that
//!   `faultline clean` can remove what a crashed run left behind.
//!
//! The [`Fault`] enum is the vocabulary the harness schedules and records;
//! this crate does not schedule anything itself.
//!
//! Nodes are numbered from 0 in this API; their names are `n1`, `n2`, ...
//! ([`node_name`]). Functions taking a node index panic when it is out of
//! range for the network. The one invariant: whatever a run does, it undoes
//! (teardown on every exit path, and `faultline clean` after a crash).

#![deny(missing_docs)]

pub mod clock;
mod cmd;
mod error;
mod fault;
pub mod grudge;
pub mod net;
pub mod netns;
pub mod proxy;
pub mod registry;
pub mod signal;

pub use error::{Error, Result};
pub use fault::Fault;
pub use grudge::Grudge;
pub use net::Network;

/// The name of node `index` (0-based): `n1`, `n2`, ...
pub fn node_name(index: usize) -> String {
    format!("n{}", index + 1)
}
