//! `faultline serve`: a small HTTP/1.1 server over the run store, for
//! looking at runs in a browser.
//!
//! `/` lists the runs (`STORE/<test>/<timestamp>/`), newest first and
//! coloured by verdict; `/store/<path>` shows a folder of the store or one
//! of its files, as text unless it is HTML or an image. A run's
//! `report.html` is written on first request when it is missing.
//!
//! The server has no authentication and shows every file in the store, so
//! it binds to loopback unless told otherwise with `--allow-remote`. Only
//! paths inside the store are served: `..`, empty components and symbolic
//! links that lead out are refused.
//!
//! # Limits
//!
//! Each connection serves one request (`Connection: close`) on its own
//! thread, and files are read whole into memory: enough for one person
//! looking at runs, not for many.

use crate::exit::Outcome;
use crate::report;
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `faultline serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run store, holding <test>/<timestamp>/ folders
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Address to listen on; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Listen on an address other than loopback. Anyone who can reach it
    /// can read every file in the store: there is no authentication
    #[arg(long)]
    pub allow_remote: bool,
}

/// Serves until the process is stopped.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if !args.bind.ip().is_loopback() && !args.allow_remote {
        bail!(
            "refusing to listen on {}: the server has no authentication and would show \
             every file in the store to anyone who can reach it; expected a loopback \
             address such as 127.0.0.1:8080, or --allow-remote",
            args.bind
        );
    }
    let store = args
        .store
        .canonicalize()
        .with_context(|| format!("store {} not found", args.store.display()))?;
    if !store.is_dir() {
        bail!("store {} is not a directory", store.display());
    }
    let listener = TcpListener::bind(args.bind)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = listener.local_addr()?;
    println!("serving {} at http://{addr}/", store.display());
    std::io::stdout().flush()?;

    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let store = store.clone();
        std::thread::spawn(move || {
            if let Err(err) = handle(stream, &store) {
                eprintln!("serve: {err:#}");
            }
        });
    }
    Ok(Outcome::Valid)
}

/// A response before it is written.
struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn html(body: String) -> Response {
        Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: body.into(),
        }
    }

    fn error(status: u16, message: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{message}\n").into(),
        }
    }
}

fn handle(stream: TcpStream, store: &Path) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // A request is a line and headers; nothing here needs more than 64 KiB.
    let mut reader = BufReader::new(stream.try_clone()?.take(64 * 1024));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Read the headers up to the blank line; none of them matter here.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }

    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let response = match method {
        "GET" | "HEAD" => route(target, store),
        _ => Response::error(405, "only GET and HEAD are served"),
    };
    write_response(stream, &response, method == "HEAD")
}

fn write_response(
    mut stream: TcpStream,
    response: &Response,
    head: bool,
) -> anyhow::Result<()> {
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    write!(
        stream,
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    )?;
    if !head {
        stream.write_all(&response.body)?;
    }
    stream.flush()?;
    Ok(())
}

fn route(target: &str, store: &Path) -> Response {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path == "/" {
        return Response::html(index(store));
    }
    let Some(rest) = path.strip_prefix("/store/").or(path.strip_prefix("/store")) else {
        return Response::error(404, "not found; the runs are listed at /");
    };
    let Some(relative) = safe_relative(rest) else {
        return Response::error(400, "bad path: expected a path inside the store");
    };
    let full = store.join(&relative);
    // Symbolic links could lead out of the store: check where paths land.
    let report_wanted = full.file_name().is_some_and(|n| n == "report.html");
    if report_wanted && !full.exists() {
        let run_dir = full.parent().and_then(|dir| dir.canonicalize().ok());
        if let Some(run_dir) = run_dir.filter(|d| d.starts_with(store)) {
            if run_dir.join("history.jsonl").is_file() {
                if let Err(err) = report::write_report(&run_dir) {
                    return Response::error(
                        500,
                        &format!("cannot write the report: {err:#}"),
                    );
                }
            }
        }
    }
    match full.canonicalize() {
        Ok(real) if real.starts_with(store) => serve_path(&real, &relative),
        _ => Response::error(404, "not found in the store"),
    }
}

/// Decodes a URL path and keeps it only if every component is a plain name.
fn safe_relative(raw: &str) -> Option<PathBuf> {
    let decoded = percent_decode(raw)?;
    let mut path = PathBuf::new();
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.contains(['\\', '\0']) {
            return None;
        }
        path.push(part);
    }
    Some(path)
}

fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn serve_path(real: &Path, relative: &Path) -> Response {
    if real.is_dir() {
        return Response::html(listing(real, relative));
    }
    let content_type = match real.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    };
    match std::fs::read(real) {
        Ok(body) => Response {
            status: 200,
            content_type,
            body,
        },
        Err(err) => Response::error(500, &format!("cannot read the file: {err}")),
    }
}

mod pages;
use pages::{index, listing};
