//! Operation generators and the clients for each target protocol.
//!
//! A client turns one [`Invocation`] into one [`Completion`] against one
//! node. Clients classify errors: only an answer that proves the operation
//! did not and will not take effect is a `fail`; timeouts, lost connections
//! and anything ambiguous are `info`.

pub mod client;

pub use client::{Client, Completion, Invocation};
