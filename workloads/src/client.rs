//! The client interface every target protocol implements.

use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// One operation to perform: `f` is `read`, `write` or `cas`; `value` is
/// `null` for a read, the integer for a write, `[from, to]` for a cas.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub f: String,
    pub key: String,
    pub value: Value,
}

impl Invocation {
    pub fn new(f: &str, key: &str, value: Value) -> Self {
        Invocation {
            f: f.into(),
            key: key.into(),
            value,
        }
    }
}

/// How an operation ended, as the history records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// It took effect; the value is the result (the value read, or the
    /// invocation's value echoed for writes and cas).
    Ok(Value),
    /// It definitely did not take effect and never will.
    Fail(String),
    /// Unknown: it may take effect now, later, or never.
    Info(String),
}

/// A boxed future, so that clients of different protocols can sit behind
/// one trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A connection to one node. A client is used by one logical process at a
/// time; after an `info` the harness opens a new client under a new process.
pub trait Client: Send {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion>;
}
