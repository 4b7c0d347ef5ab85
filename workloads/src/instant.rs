//! A client that answers at once from registers in memory.
//!
//! It measures the harness itself: with a target that costs nothing, the
//! rate at which operations are recorded is the ceiling of the clients, the
//! recorder and the disk. Its registers are shared by every client made from
//! one [`InstantStore`] and updated under one lock, so the histories it
//! produces are linearizable.

use crate::client::{BoxFuture, Client, Completion, Invocation};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Registers shared by a set of instant clients.
#[derive(Debug, Clone, Default)]
pub struct InstantStore {
    registers: Arc<Mutex<HashMap<String, i64>>>,
}

impl InstantStore {
    /// A client on these registers.
    pub fn client(&self) -> InstantClient {
        InstantClient {
            store: self.clone(),
        }
    }

    fn apply(&self, op: &Invocation) -> Completion {
        let mut registers = self.registers.lock().unwrap_or_else(|e| e.into_inner());
        let current = registers.get(&op.key).copied();
        match op.f.as_str() {
            "read" => Completion::Ok(current.map_or(Value::Null, Value::from)),
            "write" => match op.value.as_i64() {
                Some(v) => {
                    registers.insert(op.key.clone(), v);
                    Completion::Ok(op.value.clone())
                }
                None => Completion::Fail("expected an integer to write".into()),
            },
            "cas" => {
                let from = op.value.get(0).and_then(Value::as_i64);
                let to = op.value.get(1).and_then(Value::as_i64);
                match (from, to) {
                    (Some(from), Some(to)) if current == Some(from) => {
                        registers.insert(op.key.clone(), to);
                        Completion::Ok(op.value.clone())
                    }
                    (Some(_), Some(_)) => Completion::Fail("cas-mismatch".into()),
                    _ => Completion::Fail("expected [from, to] integers".into()),
                }
            }
            f => Completion::Fail(format!("unknown function {f:?}")),
        }
    }
}

/// One client of an [`InstantStore`].
#[derive(Debug, Clone)]
pub struct InstantClient {
    store: InstantStore,
}

impl Client for InstantClient {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        let done = self.store.apply(op);
        Box::pin(async move { done })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inv(f: &str, value: Value) -> Invocation {
        Invocation::new(f, "k1", value)
    }

    #[tokio::test]
    async fn behaves_as_a_register_shared_by_its_clients() {
        let store = InstantStore::default();
        let (mut a, mut b) = (store.client(), store.client());
        assert_eq!(
            a.invoke(&inv("read", Value::Null)).await,
            Completion::Ok(Value::Null)
        );
        assert_eq!(
            a.invoke(&inv("write", json!(2))).await,
            Completion::Ok(json!(2))
        );
        assert_eq!(
            b.invoke(&inv("read", Value::Null)).await,
            Completion::Ok(json!(2))
        );
        let cas = b.invoke(&inv("cas", json!([1, 3]))).await;
        assert_eq!(cas, Completion::Fail("cas-mismatch".into()));
        let cas = b.invoke(&inv("cas", json!([2, 3]))).await;
        assert_eq!(cas, Completion::Ok(json!([2, 3])));
        assert_eq!(
            a.invoke(&inv("read", Value::Null)).await,
            Completion::Ok(json!(3))
        );
    }
}
