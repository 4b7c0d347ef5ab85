//! A small HTTP/1.1 client: JSON `POST` requests over one keep-alive
//! connection, enough for etcd's v3 JSON gateway and status endpoints.
//!
//! It is hand-written rather than taken from a crate because it needs very
//! little (no TLS, no redirects, no pooling) and one thing general clients
//! hide: whether any byte of the request left this host. A request that
//! never got a connection cannot have taken effect, while one that was sent
//! and then lost its answer may have; [`HttpError::sent`] tells them apart.
//!
//! Bodies are framed by `Content-Length` or chunked transfer encoding
//! (trailers are read and dropped). The connection is reused until the
//! server asks to close it or an error leaves it in an unknown state.
//!
//! # Limits
//!
//! There is no timeout here: callers bound each call and drop the
//! connection on expiry, since a late answer may still arrive on it.

use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest status line, header line or chunk-size line accepted.
const MAX_LINE: usize = 8 * 1024;
/// The largest response body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why a request got no usable response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No connection: nothing of the request was sent.
    #[error("connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    /// Writing the request failed part way; some of it may have arrived.
    #[error("send: {0}")]
    Send(io::Error),
    /// The request went out but reading the response failed.
    #[error("receive: {0}")]
    Receive(io::Error),
    /// The connection closed before a whole response arrived.
    #[error("connection closed before a whole response arrived")]
    Closed,
    /// The response is not HTTP/1.1 as expected.
    #[error("malformed response: {0}")]
    Malformed(String),
}

impl HttpError {
    /// Whether any of the request may have reached the server.
    pub fn sent(&self) -> bool {
        !matches!(self, HttpError::Connect { .. })
    }
}

/// A whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive connection to one server, opened on first use.
pub struct HttpConn {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl HttpConn {
    /// A connection to `addr`; nothing is dialled until the first request.
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn { addr, stream: None }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `POST path` with a JSON body and reads the whole response. On
    /// any error the connection is dropped; the next call dials again.
    pub async fn post(&mut self, path: &str, body: &[u8]) -> Result<Response, HttpError> {
        let result = self.exchange(path, body).await;
        match &result {
            Ok((_, true)) | Err(_) => self.stream = None,
            Ok((_, false)) => {}
        }
        result.map(|(response, _)| response)
    }

    /// One request and response; also says whether the server asked to
    /// close the connection.
    async fn exchange(
        &mut self,
        path: &str,
        body: &[u8],
    ) -> Result<(Response, bool), HttpError> {
        if let Some(stream) = &self.stream {
            if closed_by_peer(stream).await {
                self.stream = None;
            }
        }
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await.map_err(|source| {
                HttpError::Connect {
                    addr: self.addr,
                    source,
                }
            })?;
            let _ = stream.set_nodelay(true);
            self.stream = Some(BufReader::new(stream));
        }
        let stream = self.stream.as_mut().expect("connected above");

        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        stream
            .get_mut()
            .write_all(&request)
            .await
            .map_err(HttpError::Send)?;

        read_response(stream).await
    }
}

/// Whether an idle kept-alive connection has been closed by the server (or
/// holds bytes nobody asked for). Checked before reuse, so that a request is
/// not sent into a connection the server already dropped: that would turn
/// a certainly-unsent request into one of unknown fate.
async fn closed_by_peer(stream: &BufReader<TcpStream>) -> bool {
    if !stream.buffer().is_empty() {
        return true;
    }
    let mut byte = [0u8; 1];
    // A zero timeout still polls the peek once: ready means EOF, an error
    // or stray bytes; pending means the connection is idle and open.
    let peek = stream.get_ref().peek(&mut byte);
    tokio::time::timeout(std::time::Duration::ZERO, peek)
        .await
        .is_ok()
}

/// Reads one response: status line, headers, body.
async fn read_response<R>(r: &mut R) -> Result<(Response, bool), HttpError>
where
    R: AsyncBufReadExt + Unpin,
{
    let status_line = read_line(r).await?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(malformed("status line", &status_line));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| malformed("status code", &status_line))?;

    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    loop {
        let line = read_line(r).await?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(malformed("header", &line));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| malformed("content-length", &line))?;
                length = Some(n);
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }

    let body = if chunked {
        read_chunked(r).await?
    } else if let Some(n) = length {
        read_exact(r, n).await?
    } else {
        // Without framing the body runs to the end of the connection.
        let mut body = Vec::new();
        r.take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body)
            .await
            .map_err(HttpError::Receive)?;
        close = true;
        body
    };
    if body.len() > MAX_BODY {
        return Err(HttpError::Malformed(format!(
            "a body of more than {MAX_BODY} bytes, expected a small JSON document"
        )));
    }
    Ok((Response { status, body }, close))
}

/// Reads a chunked body and its trailers.
async fn read_chunked<R>(r: &mut R) -> Result<Vec<u8>, HttpError>
where
    R: AsyncBufReadExt + Unpin,
{
    let mut body = Vec::new();
    loop {
        let line = read_line(r).await?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| malformed("chunk size", &line))?;
        if size == 0 {
            break;
        }
        if body.len() + size > MAX_BODY {
            return Err(HttpError::Malformed(format!(
                "chunks of more than {MAX_BODY} bytes, expected a small JSON document"
            )));
        }
        body.extend(read_exact(r, size).await?);
        if !read_line(r).await?.is_empty() {
            return Err(HttpError::Malformed("no CRLF after a chunk".into()));
        }
    }
    // Trailers, up to the empty line.
    while !read_line(r).await?.is_empty() {}
    Ok(body)
}

/// Reads one CRLF-terminated line, without its terminator.
async fn read_line<R>(r: &mut R) -> Result<String, HttpError>
where
    R: AsyncBufReadExt + Unpin,
{
    let mut line = Vec::new();
    let n = r
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await
        .map_err(HttpError::Receive)?;
    if n == 0 {
        return Err(HttpError::Closed);
    }
    if line.last() != Some(&b'\n') {
        return Err(if n >= MAX_LINE {
            HttpError::Malformed(format!("a line longer than {MAX_LINE} bytes"))
        } else {
            HttpError::Closed
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map_err(|_| HttpError::Malformed("a line that is not UTF-8".into()))
}

async fn read_exact<R>(r: &mut R, n: usize) -> Result<Vec<u8>, HttpError>
where
    R: AsyncBufReadExt + Unpin,
{
    if n > MAX_BODY {
        return Err(HttpError::Malformed(format!(
            "a body of {n} bytes, expected at most {MAX_BODY}"
        )));
    }
    let mut buf = vec![0; n];
    match r.read_exact(&mut buf).await {
        Ok(_) => Ok(buf),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(HttpError::Closed),
        Err(e) => Err(HttpError::Receive(e)),
    }
}

fn malformed(what: &str, line: &str) -> HttpError {
    HttpError::Malformed(format!("bad {what} in {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn parse(raw: &str) -> Result<(Response, bool), HttpError> {
        read_response(&mut BufReader::new(raw.as_bytes())).await
    }

    #[tokio::test]
    async fn reads_a_body_framed_by_content_length() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        let (response, close) = parse(raw).await.unwrap();
        assert_eq!(
            response,
            Response {
                status: 200,
                body: b"{}".to_vec()
            }
        );
        assert!(!close);
    }

    #[tokio::test]
    async fn reads_a_chunked_body_and_drops_its_trailers() {
        let raw =
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
                   3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\nGrpc-Trailer: x\r\n\r\n";
        let (response, _) = parse(raw).await.unwrap();
        assert_eq!(response.status, 503);
        assert_eq!(response.body, br#"{"a":1}"#.to_vec());
    }

    #[tokio::test]
    async fn rejects_what_is_not_http() {
        assert!(matches!(
            parse("SSH-2.0\r\n\r\n").await,
            Err(HttpError::Malformed(_))
        ));
        let cut = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}";
        assert!(matches!(parse(cut).await, Err(HttpError::Closed)));
    }

    #[tokio::test]
    async fn connect_failure_means_nothing_was_sent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = HttpConn::new(addr).post("/", b"{}").await.unwrap_err();
        assert!(!err.sent(), "{err}");
    }

    #[tokio::test]
    async fn redials_when_the_server_closed_an_idle_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await.unwrap();
                let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                stream.write_all(reply).await.unwrap();
                // Dropping the stream closes the kept-alive connection.
            }
        });
        let mut conn = HttpConn::new(addr);
        assert_eq!(conn.post("/", b"{}").await.unwrap().body, b"ok");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(conn.post("/", b"{}").await.unwrap().body, b"ok");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn reuses_one_connection_for_successive_requests() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            // One accept only: a second connection would hang the client.
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            for _ in 0..2 {
                let mut line = String::new();
                let mut length = 0;
                loop {
                    line.clear();
                    stream.read_line(&mut line).await.unwrap();
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let body = read_exact(&mut stream, length).await.unwrap();
                let head =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                stream.get_mut().write_all(head.as_bytes()).await.unwrap();
                stream.get_mut().write_all(&body).await.unwrap();
            }
        });
        let mut conn = HttpConn::new(addr);
        assert_eq!(conn.post("/a", b"[1]").await.unwrap().body, b"[1]");
        assert_eq!(conn.post("/b", b"[22]").await.unwrap().body, b"[22]");
        server.await.unwrap();
    }
}
