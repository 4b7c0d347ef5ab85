//! The client server: JSON-line requests in, JSON-line responses out, on
//! the node's client port (the protocol is in the crate docs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::debug;

use super::Event;
use crate::kv::{ErrorKind, KvOp, Reply};

/// Where the answer to one request goes.
pub struct Waiter {
    /// The client's request id, echoed back.
    pub id: Value,
    /// The connection's response queue.
    pub lines: mpsc::UnboundedSender<String>,
}

impl Waiter {
    /// Sends `reply` to the client; a closed connection is ignored.
    pub fn answer(self, reply: &Reply) {
        let _ = self.lines.send(response(&self.id, reply));
    }
}

/// Accepts client connections; each request becomes an [`Event::Client`].
pub async fn listen(listener: TcpListener, events: mpsc::UnboundedSender<Event>) {
    // Tokens start at a random point: a forwarded request's late answer,
    // addressed to a token of this node's previous life, must not be taken
    // for the answer to a new request after a restart.
    let tokens = Arc::new(AtomicU64::new(rand::random::<u64>() >> 2));
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        debug!(%from, "client connected");
        let _ = stream.set_nodelay(true);
        let (reader, mut writer) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(mut line) = rx.recv().await {
                while let Ok(more) = rx.try_recv() {
                    line.push_str(&more);
                }
                if writer.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        let events = events.clone();
        let tokens = tokens.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim().is_empty() {
                    continue;
                }
                let waiter = |id| Waiter {
                    id,
                    lines: tx.clone(),
                };
                match parse_request(&line) {
                    Ok((id, op)) => {
                        let token = tokens.fetch_add(1, Ordering::Relaxed);
                        let event = Event::Client {
                            token,
                            op,
                            waiter: waiter(id),
                        };
                        if events.send(event).is_err() {
                            return;
                        }
                    }
                    Err((id, message)) => {
                        let reply = Reply::failed(ErrorKind::BadRequest, true);
                        let mut body = response_map(&id, &reply);
                        body.insert("message".into(), json!(message));
                        let _ = tx.send(format!("{}\n", Value::Object(body)));
                    }
                }
            }
        });
    }
}

/// Parses one request line into its id and operation.
pub fn parse_request(line: &str) -> Result<(Value, KvOp), (Value, String)> {
    let value: Value = serde_json::from_str(line)
        .map_err(|err| (Value::Null, format!("expected a JSON object, found {err}")))?;
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let op = serde_json::from_value::<KvOp>(value).map_err(|err| {
        let expected = "expected op read/write/cas with key, value, from, to";
        (id.clone(), format!("{expected}, found {err}"))
    })?;
    Ok((id, op))
}

/// Formats the response line for `reply` (with its newline).
pub fn response(id: &Value, reply: &Reply) -> String {
    format!("{}\n", Value::Object(response_map(id, reply)))
}

fn response_map(id: &Value, reply: &Reply) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), id.clone());
    match reply {
        Reply::Value(value) => {
            out.insert("ok".into(), json!(true));
            out.insert("value".into(), json!(value));
        }
        Reply::Done => {
            out.insert("ok".into(), json!(true));
        }
        Reply::Failed(failure) => {
            out.insert("ok".into(), json!(false));
            out.insert("error".into(), json!(failure.error));
            out.insert("definite".into(), json!(failure.definite));
            if let Some(leader) = &failure.leader {
                out.insert("leader".into(), json!(leader));
            }
            if failure.error == ErrorKind::CasMismatch {
                out.insert("value".into(), json!(failure.value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_follow_the_protocol() {
        let id = json!(7);
        assert_eq!(
            response(&id, &Reply::Value(None)),
            "{\"id\":7,\"ok\":true,\"value\":null}\n"
        );
        let line = response(&id, &Reply::not_leader(Some("n2".into())));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["error"], "not-leader");
        assert_eq!(v["definite"], true);
        assert_eq!(v["leader"], "n2");
        let line = response(&id, &Reply::failed(ErrorKind::Timeout, false));
        assert!(
            line.contains("\"error\":\"timeout\",\"definite\":false") || line.contains("timeout")
        );
    }

    #[test]
    fn parses_requests_and_rejects_bad_ones_with_their_id() {
        let (id, op) =
            parse_request(r#"{"id": 3, "op": "cas", "key": "k", "from": 1, "to": 2}"#).unwrap();
        assert_eq!(id, json!(3));
        assert_eq!(
            op,
            KvOp::Cas {
                key: "k".into(),
                from: 1,
                to: 2
            }
        );
        let (id, message) = parse_request(r#"{"id": 4, "op": "delete", "key": "k"}"#).unwrap_err();
        assert_eq!(id, json!(4));
        assert!(message.contains("expected op"), "{message}");
    }
}
