//! Peer transport: JSON-line messages over TCP. A node writes to peer `j`
//! only on the connection it opened to `j`'s address, and only reads from
//! the connections it accepts. Outbound links reconnect with backoff
//! forever; messages sent while a link is down are dropped, as a network
//! would drop them.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, trace};

use super::Event;
use crate::core::Message;

/// How many messages may wait for one outbound link.
const QUEUE: usize = 8192;

/// The sending end of one outbound link.
pub type Link = mpsc::Sender<Message>;

/// Starts the outbound link to `peer` at `addr`.
pub fn connect(peer: String, addr: String) -> Link {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(outbound(peer, addr, rx));
    tx
}

async fn outbound(peer: String, addr: String, mut rx: mpsc::Receiver<Message>) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&addr));
        let Some(result) = discarding(connect, &mut rx).await else {
            return;
        };
        let stream = match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                trace!(%peer, %addr, %err, "connect failed");
                if discarding(tokio::time::sleep(backoff), &mut rx)
                    .await
                    .is_none()
                {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
            Err(_) => continue,
        };
        debug!(%peer, %addr, "peer link up");
        backoff = Duration::from_millis(20);
        let _ = stream.set_nodelay(true);
        match send_all(stream, &mut rx).await {
            Ok(()) => return,
            Err(err) => debug!(%peer, %addr, %err, "peer link down"),
        }
    }
}

/// Runs `fut` while dropping queued messages; `None` if the queue closed.
async fn discarding<F: std::future::Future>(
    fut: F,
    rx: &mut mpsc::Receiver<Message>,
) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Some(out),
            msg = rx.recv() => { msg?; }
        }
    }
}

/// Writes messages until the queue closes (Ok) or the connection fails.
async fn send_all(stream: TcpStream, rx: &mut mpsc::Receiver<Message>) -> std::io::Result<()> {
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

async fn write_line<W: AsyncWriteExt + Unpin>(w: &mut W, msg: &Message) -> std::io::Result<()> {
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
