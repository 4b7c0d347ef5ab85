//! The client server: JSON-line requests in, JSON-line responses out, on
//! the node's client port (the protocol is in the crate docs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::debug;

use super::Event;
use crate::kv::{ErrorKind, KvOp, Reply};

/// Where the answer to one request goes.
pub struct Waiter {
    /// The client's request id, echoed back.
    pub id: u64,
    /// The connection's response queue.
    pub lines: mpsc::UnboundedSender<String>,
}

impl Waiter {
    /// Sends `reply` to the client; a closed connection is ignored.
    pub fn answer(self, reply: &Reply) {
        let _ = self.lines.send(response(Some(self.id), reply));
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
        tokio::spawn(serve(reader, tx, events.clone(), tokens.clone()));
    }
}

/// Reads one connection's request lines until it closes. Lines are read as
/// bytes and decoded one by one, so a line that is not UTF-8 gets its own
/// `bad-request` answer and the requests after it are still served.
async fn serve(
    reader: OwnedReadHalf,
    tx: mpsc::UnboundedSender<String>,
    events: mpsc::UnboundedSender<Event>,
    tokens: Arc<AtomicU64>,
) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok((id, op)) => {
                let token = tokens.fetch_add(1, Ordering::Relaxed);
                let waiter = Waiter {
                    id,
                    lines: tx.clone(),
                };
                if events.send(Event::Client { token, op, waiter }).is_err() {
                    return;
                }
            }
            Err((id, message)) => {
                let reply = Reply::failed(ErrorKind::BadRequest, true);
                let mut body = response_map(id, &reply);
                body.insert("message".into(), json!(message));
                let _ = tx.send(format!("{}\n", Value::Object(body)));
            }
        }
    }
}

/// Decodes and parses one raw request line. A line that is not UTF-8 is
/// refused; its id is still echoed when the rest of the line shows one.
pub fn parse_line(bytes: &[u8]) -> Result<(u64, KvOp), (Option<u64>, String)> {
    match std::str::from_utf8(bytes) {
        Ok(line) => parse_request(line),
        Err(err) => {
            let id = match parse_request(&String::from_utf8_lossy(bytes)) {
                Ok((id, _)) | Err((Some(id), _)) => Some(id),
                Err((None, _)) => None,
            };
            let column = err.valid_up_to() + 1;
            let message =
                format!("expected UTF-8, found an invalid byte at column {column}");
            Err((id, message))
        }
    }
}

/// Parses one request line into its id and operation. A refusal carries
/// the id when the line has a valid one, and says what was wrong.
pub fn parse_request(line: &str) -> Result<(u64, KvOp), (Option<u64>, String)> {
    let value: Value = serde_json::from_str(line).map_err(|err| {
        (
            None,
            format!("expected a JSON object, found invalid JSON: {err}"),
        )
    })?;
    if !value.is_object() {
        return Err((None, format!("expected a JSON object, found {value}")));
    }
    let id = match value.get("id") {
        None | Some(Value::Null) => {
            return Err((None, "id: expected a request id, found none".to_string()));
        }
        Some(id) => id.as_u64().ok_or_else(|| {
            let expected = format!("id: expected an integer from 0 to {}", u64::MAX);
            (None, format!("{expected}, found {id}"))
        })?,
    };
    let op = serde_json::from_value::<KvOp>(value).map_err(|err| {
        let expected = "expected op read/write/cas with key, value, from, to";
        (Some(id), format!("{expected}, found {err}"))
    })?;
    Ok((id, op))
}

/// Formats the response line for `reply` (with its newline); `None` stands
/// for a request without a usable id and is sent as `"id": null`.
pub fn response(id: Option<u64>, reply: &Reply) -> String {
    format!("{}\n", Value::Object(response_map(id, reply)))
}

fn response_map(id: Option<u64>, reply: &Reply) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
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

    fn parsed(line: &str) -> Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn responses_follow_the_protocol() {
        assert_eq!(
            response(Some(7), &Reply::Value(None)),
            "{\"id\":7,\"ok\":true,\"value\":null}\n"
        );
        let v = parsed(&response(Some(7), &Reply::not_leader(Some("n2".into()))));
        assert_eq!(v["error"], "not-leader");
        assert_eq!(v["definite"], true);
        assert_eq!(v["leader"], "n2");
        let v = parsed(&response(
            Some(7),
            &Reply::failed(ErrorKind::Timeout, false),
        ));
        assert_eq!(
            v,
            json!({"id": 7, "ok": false, "error": "timeout", "definite": false})
        );
    }

    #[test]
    fn parses_requests_and_rejects_bad_ones_with_their_id() {
        let (id, op) =
            parse_request(r#"{"id": 3, "op": "cas", "key": "k", "from": 1, "to": 2}"#)
                .unwrap();
        assert_eq!(id, 3);
        assert_eq!(
            op,
            KvOp::Cas {
                key: "k".into(),
                from: 1,
                to: 2
            }
        );
        let (id, message) =
            parse_request(r#"{"id": 4, "op": "delete", "key": "k"}"#).unwrap_err();
        assert_eq!(id, Some(4));
        assert!(message.contains("expected op"), "{message}");
    }

    #[test]
    fn invalid_utf8_line_is_refused_with_its_id() {
        let line = b"{\"id\":1,\"op\":\"read\",\"key\":\"\xff\"}";
        let (id, message) = parse_line(line).unwrap_err();
        assert_eq!(id, Some(1));
        assert!(message.contains("expected UTF-8"), "{message}");
        let (id, _) = parse_line(b"\xff\xfe").unwrap_err();
        assert_eq!(id, None);
    }

    #[test]
    fn huge_request_id_is_refused_naming_the_field() {
        let line = r#"{"id": 123456789012345678901234567890, "op": "read", "key": "k"}"#;
        let (id, message) = parse_request(line).unwrap_err();
        assert_eq!(id, None);
        assert!(message.starts_with("id: expected an integer"), "{message}");
        for id in ["-1", "1.5", "\"7\""] {
            let line = format!(r#"{{"id": {id}, "op": "read", "key": "k"}}"#);
            let (_, message) = parse_request(&line).unwrap_err();
            assert!(message.contains(&format!("found {id}")), "{message}");
        }
        let max = format!(r#"{{"id": {}, "op": "read", "key": "k"}}"#, u64::MAX);
        let (id, _) = parse_request(&max).unwrap();
        assert_eq!(id, u64::MAX);
    }

    #[test]
    fn request_without_id_is_refused_not_executed() {
        for line in [
            r#"{"op": "write", "key": "k", "value": 1}"#,
            r#"{"id": null, "op": "write", "key": "k", "value": 1}"#,
        ] {
            let (id, message) = parse_request(line).unwrap_err();
            assert_eq!(id, None);
            assert!(message.contains("id: expected a request id"), "{message}");
        }
        let reply = Reply::failed(ErrorKind::BadRequest, true);
        assert_eq!(parsed(&response(None, &reply))["id"], Value::Null);
    }

    /// Runs the client server on a loopback port and sends `input` on one
    /// connection; returns the response lines (the core is not running, so
    /// only refusals come back) and the operations it handed to the core.
    async fn exchange(input: &[u8], answers: usize) -> (Vec<Value>, Vec<(u64, KvOp)>) {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let server = tokio::spawn(listen(listener, events_tx));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(input).await.unwrap();

        let mut ops = Vec::new();
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        // At most about 5 s; the answers come within milliseconds.
        for _ in 0..100 {
            if lines.len() >= answers {
                break;
            }
            if let Ok(Event::Client { op, waiter, .. }) = events.try_recv() {
                ops.push((waiter.id, op));
                waiter.answer(&Reply::Value(Some(9)));
            }
            let mut chunk = [0u8; 512];
            let read = tokio::time::timeout(
                std::time::Duration::from_millis(50),
                stream.read(&mut chunk),
            );
            match read.await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(err)) => panic!("read failed: {err}"),
                Err(_) => {}
            }
            lines = String::from_utf8_lossy(&buf).lines().map(parsed).collect();
        }
        server.abort();
        (lines, ops)
    }

    #[tokio::test]
    async fn invalid_utf8_keeps_the_connection_and_later_requests() {
        let input = b"{\"id\":1,\"op\":\"read\",\"key\":\"\xff\"}\n\
                      {\"id\":2,\"op\":\"read\",\"key\":\"k\"}\n";
        let (lines, ops) = exchange(input, 2).await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["id"], 1);
        assert_eq!(lines[0]["error"], "bad-request");
        assert_eq!(lines[0]["definite"], true);
        assert_eq!(lines[1], json!({"id": 2, "ok": true, "value": 9}));
        assert_eq!(ops, vec![(2, KvOp::Read { key: "k".into() })]);
    }
}
