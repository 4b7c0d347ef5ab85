//! Histories of operations, the models they are checked against, and the
//! checkers: linearizability and Raft's election safety.
//!
//! This crate is pure: it does no process control and no async, and its only
//! IO is reading and writing history files. The harness (`faultline test`)
//! and `faultline check` both build on it.

pub mod election;
pub mod formats;
pub mod linear;
pub mod model;
pub mod observation;
pub mod op;
pub mod pair;
pub mod verdict;

pub use observation::{Observation, Role};
pub use op::{History, Op, OpType, Process};
pub use pair::{pair, Operation, PairError};
pub use verdict::Verdict;
