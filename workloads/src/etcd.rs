//! The etcd client: the register workload over etcd's v3 JSON gateway.
//!
//! Every operation is one HTTP `POST` to the member the client is bound to
//! (see [`crate::http`]). Keys and values travel base64-encoded; a register
//! value is the decimal text of an integer. 64-bit numbers in answers are
//! JSON strings, and fields equal to their default (`false`, `0`, empty)
//! are left out.
//!
//! | operation | request |
//! |---|---|
//! | `write k v` | `/v3/kv/put {key, value}` |
//! | `read k` | `/v3/kv/range {key}`, plus `serializable: true` in [`ReadMode::Serializable`] |
//! | `cas k [a b]` | `/v3/kv/txn`: compare `VALUE(k) == a`, on success put `b` |
//!
//! # Classifying answers
//!
//! | answer | recorded |
//! |---|---|
//! | HTTP 200 to a put | `ok` |
//! | HTTP 200 to a range | `ok` with the value, `null` if the key is absent |
//! | HTTP 200 to a txn with `succeeded: true` | `ok` |
//! | HTTP 200 to a txn without `succeeded` (its compare failed) | `fail` `cas-mismatch` |
//! | no connection (refused, unreachable, connect timed out): nothing was sent | `fail` |
//! | HTTP 400 (gRPC code 3, the gateway could not parse the request) | `fail` |
//! | gRPC code 8 `too many requests`: rejected before proposing | `fail` |
//! | any read that got no value | `fail`: a read changes nothing |
//! | HTTP 503 `request timed out` (code 14), `leader changed`, `no leader`, `server stopped` | `info` |
//! | the connection reset or closed after the request was sent | `info` |
//! | no answer before the harness's deadline | `info` (decided by the harness) |
//! | anything else: other statuses, unreadable bodies | `info` (`fail` for a read) |
//!
//! A refused connection is definite because the request never left this
//! host; a reset is not, because the member may have proposed the request
//! before it died. An unfinished read is recorded as `fail` rather than
//! `info`: it has no effect, so the checker loses nothing and has one open
//! operation fewer. A cas on a key that was never written fails its compare
//! (etcd compares the value of a missing key as false), as the register
//! model expects.
//!
//! # Limits
//!
//! The client has no timeout of its own; the harness bounds each call and
//! drops the client on expiry.

use crate::client::{BoxFuture, Client, Completion, Invocation};
use crate::http::{HttpConn, HttpError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// How reads are served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// Through the leader's read index: etcd's default, linearizable.
    #[default]
    Linearizable,
    /// From the member's local state, which may be stale.
    Serializable,
}

impl std::str::FromStr for ReadMode {
    type Err = String;

    fn from_str(s: &str) -> Result<ReadMode, String> {
        match s {
            "linearizable" => Ok(ReadMode::Linearizable),
            "serializable" => Ok(ReadMode::Serializable),
            _ => Err(format!(
                "read mode {s:?}, expected linearizable or serializable"
            )),
        }
    }
}

/// A client bound to one etcd member's client URL.
pub struct EtcdClient {
    conn: HttpConn,
    read_mode: ReadMode,
}

impl EtcdClient {
    /// A client of the member serving clients on `addr`; it connects on the
    /// first call.
    pub fn new(addr: SocketAddr, read_mode: ReadMode) -> EtcdClient {
        EtcdClient {
            conn: HttpConn::new(addr),
            read_mode,
        }
    }

    async fn call(&mut self, op: &Invocation) -> Completion {
        let (path, body) = match request(op, self.read_mode) {
            Ok(request) => request,
            Err(why) => return Completion::Fail(why),
        };
        let answer = self.conn.post(path, body.to_string().as_bytes()).await;
        match answer {
            Ok(response) => completion(op, response.status, &response.body),
            Err(err) => transport_failure(op, &err),
        }
    }
}

impl Client for EtcdClient {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        Box::pin(self.call(op))
    }
}

/// The gateway path and JSON body for an operation, or why it has none.
fn request(
    op: &Invocation,
    read_mode: ReadMode,
) -> Result<(&'static str, Value), String> {
    let key = encode(op.key.as_bytes());
    let int = |v: &Value| {
        v.as_i64()
            .map(|n| encode(n.to_string().as_bytes()))
            .ok_or_else(|| format!("{} argument {v}, expected an integer", op.f))
    };
    match op.f.as_str() {
        "read" => {
            let serializable = read_mode == ReadMode::Serializable;
            Ok((
                "/v3/kv/range",
                json!({"key": key, "serializable": serializable}),
            ))
        }
        "write" => Ok(("/v3/kv/put", json!({"key": key, "value": int(&op.value)?}))),
        "cas" => {
            let (from, to) = match op.value.as_array().map(Vec::as_slice) {
                Some([from, to]) => (int(from)?, int(to)?),
                _ => {
                    return Err(format!("cas argument {}, expected [from, to]", op.value))
                }
            };
            let compare =
                json!({"key": key, "target": "VALUE", "result": "EQUAL", "value": from});
            let put = json!({"requestPut": {"key": key, "value": to}});
            Ok((
                "/v3/kv/txn",
                json!({"compare": [compare], "success": [put]}),
            ))
        }
        f => Err(format!("operation {f:?}, expected read, write or cas")),
    }
}

/// Classifies an HTTP answer, following the table in the module doc.
fn completion(op: &Invocation, status: u16, body: &[u8]) -> Completion {
    let read = op.f == "read";
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return unsure(read, format!("HTTP {status} with unreadable body {text:?}"));
    };
    if status != 200 {
        let message = answer["message"]
            .as_str()
            .unwrap_or("no message")
            .to_string();
        let code = answer["code"].as_i64();
        let definite = status == 400 || code == Some(3) || code == Some(8);
        return match definite {
            true => Completion::Fail(message),
            false => unsure(read, message),
        };
    }
    match op.f.as_str() {
        "read" => read_value(&answer),
        "write" => Completion::Ok(op.value.clone()),
        _ if answer["succeeded"].as_bool() == Some(true) => {
            Completion::Ok(op.value.clone())
        }
        _ => Completion::Fail("cas-mismatch".into()),
    }
}

/// The register value in a range answer.
fn read_value(answer: &Value) -> Completion {
    let Some(kv) = answer["kvs"].as_array().and_then(|kvs| kvs.first()) else {
        return Completion::Ok(Value::Null);
    };
    let text = kv["value"]
        .as_str()
        .and_then(decode)
        .and_then(|b| String::from_utf8(b).ok());
    match text.as_deref().map(str::parse::<i64>) {
        Some(Ok(n)) => Completion::Ok(json!(n)),
        _ => Completion::Fail(format!("read {} which is not an integer", kv["value"])),
    }
}

/// Classifies a request that got no HTTP answer.
fn transport_failure(op: &Invocation, err: &HttpError) -> Completion {
    if err.sent() {
        unsure(op.f == "read", err.to_string())
    } else {
        Completion::Fail(err.to_string())
    }
}

/// An outcome that is unknown for a write and a failure for a read.
fn unsure(read: bool, why: String) -> Completion {
    if read {
        Completion::Fail(why)
    } else {
        Completion::Info(why)
    }
}

const ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as the gateway expects for bytes.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` if it is not base64.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(f: &str, value: Value) -> Invocation {
        Invocation::new(f, "k1", value)
    }

    #[test]
    fn base64_round_trips_and_matches_known_text() {
        assert_eq!(encode(b"k1"), "azE=");
        assert_eq!(encode(b"5"), "NQ==");
        assert_eq!(encode(b"abc"), "YWJj");
        for len in 0..8 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 200) as u8).collect();
            assert_eq!(decode(&encode(&bytes)), Some(bytes));
        }
        assert_eq!(decode("a*"), None);
        assert_eq!(decode("a"), None);
    }

    #[test]
    fn cas_becomes_a_txn_comparing_the_value() {
        let (path, body) =
            request(&inv("cas", json!([1, 2])), ReadMode::Linearizable).unwrap();
        assert_eq!(path, "/v3/kv/txn");
        assert_eq!(body["compare"][0]["value"], "MQ==");
        assert_eq!(body["success"][0]["requestPut"]["value"], "Mg==");
        assert!(request(&inv("cas", json!([1])), ReadMode::Linearizable).is_err());
        assert!(request(&inv("append", json!(1)), ReadMode::Linearizable).is_err());
    }

    #[test]
    fn serializable_mode_asks_for_local_reads() {
        let (_, body) =
            request(&inv("read", Value::Null), ReadMode::Serializable).unwrap();
        assert_eq!(body["serializable"], true);
        let (_, body) =
            request(&inv("read", Value::Null), ReadMode::Linearizable).unwrap();
        assert_eq!(body["serializable"], false);
    }

    #[test]
    fn failed_compare_is_a_definite_failure() {
        let failed = br#"{"header":{"revision":"3"}}"#;
        let done = completion(&inv("cas", json!([1, 2])), 200, failed);
        assert_eq!(done, Completion::Fail("cas-mismatch".into()));
        let succeeded = br#"{"header":{},"succeeded":true}"#;
        let done = completion(&inv("cas", json!([1, 2])), 200, succeeded);
        assert_eq!(done, Completion::Ok(json!([1, 2])));
    }

    #[test]
    fn reads_decode_the_value_and_missing_keys_read_null() {
        let found = br#"{"kvs":[{"key":"azE=","value":"Nw=="}],"count":"1"}"#;
        assert_eq!(
            completion(&inv("read", Value::Null), 200, found),
            Completion::Ok(json!(7))
        );
        let missing = br#"{"header":{"revision":"1"}}"#;
        let done = completion(&inv("read", Value::Null), 200, missing);
        assert_eq!(done, Completion::Ok(Value::Null));
    }

    #[test]
    fn request_timeout_is_unknown_for_writes_and_a_failure_for_reads() {
        let body = br#"{"error":"etcdserver: request timed out","code":14,
                        "message":"etcdserver: request timed out"}"#;
        let done = completion(&inv("write", json!(3)), 503, body);
        assert_eq!(
            done,
            Completion::Info("etcdserver: request timed out".into())
        );
        let done = completion(&inv("read", Value::Null), 503, body);
        assert!(matches!(done, Completion::Fail(_)), "{done:?}");
    }

    #[test]
    fn rejected_requests_are_definite_failures() {
        let body = br#"{"error":"bad","message":"bad","code":3}"#;
        assert!(matches!(
            completion(&inv("write", json!(3)), 400, body),
            Completion::Fail(_)
        ));
        let busy = br#"{"message":"etcdserver: too many requests","code":8}"#;
        assert!(matches!(
            completion(&inv("write", json!(3)), 429, busy),
            Completion::Fail(_)
        ));
        let odd = b"<html>";
        assert!(matches!(
            completion(&inv("write", json!(3)), 502, odd),
            Completion::Info(_)
        ));
    }
}
