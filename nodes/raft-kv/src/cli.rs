//! The node's command line, shared by the `raft-kv` binary and
//! `faultline raft-kv`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::bugs::{Bug, Bugs};
use crate::shell::NodeOptions;
use crate::Error;

/// Exit code for a bad command line or a failure while running.
const EXIT_ERROR: u8 = 2;

/// Runs one Raft key-value node until it is killed.
#[derive(Parser, Debug)]
#[command(name = "raft-kv", version)]
pub struct Args {
    /// This node's id, such as n1
    #[arg(long)]
    pub id: String,
    /// Directory holding the node's term, vote and log
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address to listen on for clients (JSON lines)
    #[arg(long)]
    pub client_addr: SocketAddr,
    /// Address to listen on for peers
    #[arg(long)]
    pub peer_addr: SocketAddr,
    /// How this node reaches a peer: ID=HOST:PORT (repeat per peer)
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(String, String)>,
    /// Election timeout range in milliseconds: MIN..MAX
    #[arg(long, default_value = "300..600", value_parser = parse_range)]
    pub election_timeout: (u64, u64),
    /// Heartbeat interval in milliseconds
    #[arg(long, default_value_t = 50)]
    pub heartbeat: u64,
    /// Milliseconds a client request may wait before a timeout answer
    #[arg(long, default_value_t = 1500)]
    pub request_timeout: u64,
    /// Switch on a seeded bug (repeatable): stale-read, forget-vote,
    /// minority-quorum, ack-before-commit, lease-read, eager-election
    #[arg(long = "bug")]
    pub bugs: Vec<Bug>,
}

fn parse_peer(text: &str) -> Result<(String, String), Error> {
    match text.split_once('=') {
        Some((id, addr)) if !id.is_empty() && !addr.is_empty() => {
            Ok((id.to_string(), addr.to_string()))
        }
        _ => Err(Error::Config(format!(
            "expected ID=HOST:PORT, found {text:?}"
        ))),
    }
}

fn parse_range(text: &str) -> Result<(u64, u64), Error> {
    let bad = || Error::Config(format!("expected MIN..MAX in milliseconds, found {text:?}"));
    let (lo, hi) = text.split_once("..").ok_or_else(bad)?;
    let lo: u64 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u64 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl Args {
    /// The shell's settings.
    pub fn options(&self) -> NodeOptions {
        NodeOptions {
            id: self.id.clone(),
            data_dir: self.data_dir.clone(),
            client_addr: self.client_addr,
            peer_addr: self.peer_addr,
            peers: self.peers.clone(),
            election_timeout: (
                Duration::from_millis(self.election_timeout.0),
                Duration::from_millis(self.election_timeout.1),
            ),
            heartbeat: Duration::from_millis(self.heartbeat),
            request_timeout: Duration::from_millis(self.request_timeout),
            bugs: Bugs::of(&self.bugs),
        }
    }
}

/// Parses `args` (without the program name), runs the node, and returns
/// the exit code: 2 for a bad command line or a fatal error.
pub fn main_from_args(args: Vec<String>) -> ExitCode {
    let argv = std::iter::once("raft-kv".to_string()).chain(args);
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        Err(err) => {
            let code = if err.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("raft-kv: cannot start the runtime: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let span = tracing::info_span!("node", id = %args.id);
    let options = args.options();
    match runtime.block_on(tracing::Instrument::instrument(
        crate::shell::run(options),
        span,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("raft-kv: {err}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_agreed_command_line() {
        let args = Args::try_parse_from([
            "raft-kv",
            "--id",
            "n1",
            "--data-dir",
            "/tmp/x",
            "--client-addr",
            "127.0.0.1:7101",
            "--peer-addr",
            "127.0.0.1:7201",
            "--peer",
            "n2=127.0.0.1:9012",
            "--peer",
            "n3=127.0.0.1:9013",
            "--election-timeout",
            "200..400",
            "--bug",
            "stale-read",
        ])
        .unwrap();
        assert_eq!(args.peers.len(), 2);
        assert_eq!(args.election_timeout, (200, 400));
        assert_eq!(args.bugs, vec![Bug::StaleRead]);
    }

    #[test]
    fn rejects_a_backwards_range() {
        let err = parse_range("600..300").unwrap_err().to_string();
        assert!(err.contains("expected MIN..MAX"), "{err}");
    }
}
