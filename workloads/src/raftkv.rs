//! The raft-kv client: JSON lines over TCP, one request at a time.
//!
//! The protocol is in docs/protocols.md: a request names its `id`, `op`, `key`
//! and arguments; the answer echoes the `id` and says `ok`, or gives an
//! `error` with `definite` telling whether the operation surely did not take
//! effect. The client connects lazily; a refused connection is a `fail`
//! (nothing was sent), while a connection lost after the request went out
//! is `info`.
//!
//! # Limits
//!
//! The client has no timeout of its own: the harness bounds each call and
//! drops the client when the bound is hit, since the connection may then
//! hold a late answer.

use crate::client::{BoxFuture, Client, Completion, Invocation};
use serde_json::{json, Value};
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A connection to one raft-kv node.
pub struct RaftKvClient {
    addr: SocketAddr,
    conn: Option<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
    next_id: u64,
    line: String,
}

impl RaftKvClient {
    /// A client for the node listening for clients on `addr`; it connects
    /// on the first call.
    pub fn new(addr: SocketAddr) -> RaftKvClient {
        RaftKvClient {
            addr,
            conn: None,
            next_id: 0,
            line: String::new(),
        }
    }

    async fn call(&mut self, op: &Invocation) -> Completion {
        if self.conn.is_none() {
            match TcpStream::connect(self.addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let (r, w) = stream.into_split();
                    self.conn = Some((BufReader::new(r), w));
                }
                // Nothing reached the node: the operation cannot take effect.
                Err(e) => return Completion::Fail(format!("connect: {}", e.kind())),
            }
        }
        self.next_id += 1;
        let id = self.next_id;
        let mut request = request(id, op).to_string();
        request.push('\n');

        let (reader, writer) = self.conn.as_mut().expect("connected above");
        if let Err(e) = writer.write_all(request.as_bytes()).await {
            self.conn = None;
            return Completion::Info(format!("send: {}", e.kind()));
        }
        loop {
            self.line.clear();
            match reader.read_line(&mut self.line).await {
                Ok(0) => {
                    self.conn = None;
                    return Completion::Info("connection closed".into());
                }
                Err(e) => {
                    self.conn = None;
                    return Completion::Info(format!("receive: {}", e.kind()));
                }
                Ok(_) => {}
            }
            let Ok(answer) = serde_json::from_str::<Value>(&self.line) else {
                self.conn = None;
                return Completion::Info(format!(
                    "unreadable answer {:?}",
                    self.line.trim()
                ));
            };
            // Answers to requests this client gave up on may still arrive.
            if answer.get("id").and_then(Value::as_u64) == Some(id) {
                return completion(op, &answer);
            }
        }
    }
}

impl Client for RaftKvClient {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        Box::pin(self.call(op))
    }
}

/// The request line for an operation.
fn request(id: u64, op: &Invocation) -> Value {
    match op.f.as_str() {
        "write" => json!({"id": id, "op": "write", "key": op.key, "value": op.value}),
        "cas" => {
            let from = op.value.get(0).cloned().unwrap_or(Value::Null);
            let to = op.value.get(1).cloned().unwrap_or(Value::Null);
            json!({"id": id, "op": "cas", "key": op.key, "from": from, "to": to})
        }
        f => json!({"id": id, "op": f, "key": op.key}),
    }
}

/// Classifies an answer.
fn completion(op: &Invocation, answer: &Value) -> Completion {
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        return match op.f.as_str() {
            "read" => Completion::Ok(answer.get("value").cloned().unwrap_or(Value::Null)),
            _ => Completion::Ok(op.value.clone()),
        };
    }
    let error = answer
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown error")
        .to_string();
    if answer.get("definite").and_then(Value::as_bool) == Some(true) {
        Completion::Fail(error)
    } else {
        Completion::Info(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn inv(f: &str, value: Value) -> Invocation {
        Invocation::new(f, "k1", value)
    }

    #[test]
    fn cas_request_names_from_and_to() {
        let r = request(3, &inv("cas", json!([1, 2])));
        assert_eq!(
            r,
            json!({"id": 3, "op": "cas", "key": "k1", "from": 1, "to": 2})
        );
    }

    #[test]
    fn only_definite_errors_are_failures() {
        let op = inv("write", json!(1));
        let definite =
            json!({"id": 1, "ok": false, "error": "not-leader", "definite": true});
        let unsure = json!({"id": 1, "ok": false, "error": "timeout", "definite": false});
        let bare = json!({"id": 1, "ok": false, "error": "odd"});
        assert_eq!(
            completion(&op, &definite),
            Completion::Fail("not-leader".into())
        );
        assert_eq!(completion(&op, &unsure), Completion::Info("timeout".into()));
        assert_eq!(completion(&op, &bare), Completion::Info("odd".into()));
    }

    #[test]
    fn reads_return_the_value_and_writes_echo_their_argument() {
        let read = json!({"id": 1, "ok": true, "value": 4});
        assert_eq!(
            completion(&inv("read", Value::Null), &read),
            Completion::Ok(json!(4))
        );
        let ok = json!({"id": 1, "ok": true});
        assert_eq!(
            completion(&inv("cas", json!([1, 2])), &ok),
            Completion::Ok(json!([1, 2]))
        );
    }

    #[tokio::test]
    async fn refused_connection_is_a_failure_and_lost_one_is_unknown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut client = RaftKvClient::new(addr);
        let done = client.invoke(&inv("read", Value::Null)).await;
        assert!(matches!(done, Completion::Fail(_)), "{done:?}");

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut lines = BufReader::new(stream);
            let mut line = String::new();
            lines.read_line(&mut line).await.unwrap();
        });
        let mut client = RaftKvClient::new(addr);
        let done = client.invoke(&inv("write", json!(2))).await;
        assert!(matches!(done, Completion::Info(_)), "{done:?}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn skips_answers_to_abandoned_requests() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let req: Value = serde_json::from_str(&line).unwrap();
                let stale = json!({"id": 0, "ok": true, "value": 9}).to_string() + "\n";
                let reply =
                    json!({"id": req["id"], "ok": true, "value": 1}).to_string() + "\n";
                w.write_all(stale.as_bytes()).await.unwrap();
                w.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let mut client = RaftKvClient::new(addr);
        let done = client.invoke(&inv("read", Value::Null)).await;
        assert_eq!(done, Completion::Ok(json!(1)));
    }
}
