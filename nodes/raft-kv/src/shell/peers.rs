//! Peer transport: JSON-line messages over TCP. A node writes to peer `j`
//! only on the connection it opened to `j`'s address, and only reads from
//! the connections it accepts. Outbound links reconnect with backoff
//! forever; messages sent while a link is down are dropped, as a network
//! would drop them.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, trace, warn};

use super::Event;
use crate::core::{Body, Message};

/// How many messages may wait for one outbound link.
const QUEUE: usize = 8192;

/// How long a link must fail to connect before it is worth a warning.
const WARN_AFTER: Duration = Duration::from_secs(2);

/// The least time between two warnings about the same link.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The sending end of one outbound link.
pub type Link = mpsc::Sender<Message>;

/// Starts the outbound link to `peer` at `addr`. Forwarded client requests
/// the link drops without writing them are reported on `events` as
/// [`Event::Undelivered`].
pub fn connect(peer: String, addr: String, events: mpsc::UnboundedSender<Event>) -> Link {
    let (tx, rx) = mpsc::channel(QUEUE);
    let span = tracing::Span::current();
    tokio::spawn(tracing::Instrument::instrument(
        outbound(peer, addr, rx, events),
        span,
    ));
    tx
}

/// Whether a link that keeps failing is due a warning, and when it last
/// had one: at most one every [`WARN_EVERY`], so a misconfigured or dead
/// peer shows at the default log level without flooding it.
#[derive(Default)]
struct Failing {
    since: Option<Instant>,
    warned: Option<Instant>,
}

impl Failing {
    fn failed(&mut self, peer: &str, addr: &str, err: &dyn std::fmt::Display) {
        trace!(%peer, %addr, %err, "connect failed");
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        let due = self.warned.is_none_or(|t| now - t >= WARN_EVERY);
        if now - since >= WARN_AFTER && due {
            let failing_ms = (now - since).as_millis() as u64;
            warn!(%peer, %addr, %err, failing_ms, "cannot connect to peer");
            self.warned = Some(now);
        }
    }

    fn connected(&mut self, peer: &str, addr: &str) {
        if self.warned.is_some() {
            info!(%peer, %addr, "peer link up again");
        } else {
            debug!(%peer, %addr, "peer link up");
        }
        *self = Failing::default();
    }
}

async fn outbound(
    peer: String,
    addr: String,
    mut rx: mpsc::Receiver<Message>,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut backoff = Duration::from_millis(20);
    let mut failing = Failing::default();
    loop {
        let connect =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&addr));
        let Some(result) = discarding(connect, &mut rx, &events).await else {
            return;
        };
        let stream = match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                failing.failed(&peer, &addr, &err);
                let pause = tokio::time::sleep(backoff);
                if discarding(pause, &mut rx, &events).await.is_none() {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
            Err(_) => {
                failing.failed(&peer, &addr, &"no answer within 1 s");
                continue;
            }
        };
        failing.connected(&peer, &addr);
        backoff = Duration::from_millis(20);
        let _ = stream.set_nodelay(true);
        match send_all(stream, &mut rx).await {
            Ok(()) => return,
            Err(err) => debug!(%peer, %addr, %err, "peer link down"),
        }
    }
}

/// Runs `fut` while dropping queued messages; `None` if the queue closed.
///
/// A dropped message never reached any socket, so a forwarded client
/// request among them was delivered to no one: it is reported as
/// undelivered, and the node may answer its client with a definite error.
/// Messages handed to a connection are never reported, even if the
/// connection fails right after: some of their bytes may have arrived.
async fn discarding<F: std::future::Future>(
    fut: F,
    rx: &mut mpsc::Receiver<Message>,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Some(out),
            msg = rx.recv() => {
                if let Body::Forward { token, .. } = msg?.body {
                    let _ = events.send(Event::Undelivered { token });
                }
            }
        }
    }
}

/// Writes messages until the queue closes (Ok) or the connection fails.
async fn send_all(
    stream: TcpStream,
    rx: &mut mpsc::Receiver<Message>,
) -> std::io::Result<()> {
    let (mut reader, writer) = stream.into_split();
    let mut writer = BufWriter::new(writer);
    let mut scratch = [0u8; 64];
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            // The peer never writes here; a read returning means it closed.
            _ = tokio::io::AsyncReadExt::read(&mut reader, &mut scratch) => {
                return Err(std::io::ErrorKind::ConnectionReset.into());
            }
        };
        let Some(msg) = msg else {
            return Ok(());
        };
        write_line(&mut writer, &msg).await?;
        while let Ok(msg) = rx.try_recv() {
            write_line(&mut writer, &msg).await?;
        }
        writer.flush().await?;
    }
}

async fn write_line<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    msg: &Message,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).unwrap_or_default();
    line.push(b'\n');
    w.write_all(&line).await
}

/// Accepts peer connections and feeds their messages to the node.
pub async fn listen(listener: TcpListener, events: mpsc::UnboundedSender<Event>) {
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        trace!(%from, "peer connected");
        let events = events.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Message>(&line) {
                    Ok(msg) => {
                        if events.send(Event::Peer(msg)).is_err() {
                            return;
                        }
                    }
                    Err(err) => debug!(%from, %err, "dropping a malformed peer message"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvOp;

    fn message(body: Body) -> Message {
        Message {
            from: "n2".into(),
            to: "n1".into(),
            term: 1,
            body,
        }
    }

    fn forward(token: u64) -> Message {
        let op = KvOp::Read { key: "k".into() };
        message(Body::Forward { token, op })
    }

    /// A loopback address nothing listens on.
    async fn refused_addr() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().to_string()
    }

    #[tokio::test]
    async fn forward_dropped_while_link_is_down_is_reported_undelivered() {
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let link = connect("n1".into(), refused_addr().await, events_tx);
        let heartbeat = Body::PreVoteResp { granted: true };
        link.send(message(heartbeat)).await.unwrap();
        link.send(forward(42)).await.unwrap();

        let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
        match event {
            Ok(Some(Event::Undelivered { token })) => assert_eq!(token, 42),
            _ => panic!("the dropped forward was not reported"),
        }
        assert!(events.try_recv().is_err(), "only forwards are reported");
    }

    #[tokio::test]
    async fn forward_written_to_a_connection_is_not_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let link = connect("n1".into(), addr, events_tx);
        let (stream, _) = listener.accept().await.unwrap();
        let mut lines = BufReader::new(stream).lines();

        // Probes until one comes through: until then the link may still be
        // connecting and would rightly drop (and report) the forward.
        let probe = || message(Body::PreVoteResp { granted: true });
        let mut up = false;
        for _ in 0..50 {
            link.send(probe()).await.unwrap();
            let next =
                tokio::time::timeout(Duration::from_millis(100), lines.next_line());
            if let Ok(line) = next.await {
                assert!(line.unwrap().is_some(), "the link closed");
                up = true;
                break;
            }
        }
        assert!(up, "the link never came up");

        // The peer receives the forward, then goes away: it stays unknown.
        link.send(forward(7)).await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) if line.contains("Forward") => return true,
                    Ok(Some(_)) => {}
                    _ => return false,
                }
            }
        });
        assert!(read.await.unwrap_or(false), "the forward was not written");
        drop(lines);
        drop(listener);
        let late = tokio::time::timeout(Duration::from_millis(300), events.recv()).await;
        assert!(late.is_err(), "a written forward was reported undelivered");
    }
}
