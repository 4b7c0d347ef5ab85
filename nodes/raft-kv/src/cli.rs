//! The node's command line, shared by the `raft-kv` binary and
//! `faultline raft-kv`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use crate::bugs::{Bug, Bugs};
use crate::shell::NodeOptions;
use crate::{Error, NodeId};

/// Exit code for a bad command line or a failure while running.
const EXIT_ERROR: u8 = 2;

/// Run the reference raft-kv node until it is killed
#[derive(Parser, Debug)]
#[command(name = "raft-kv", version)]
pub struct Args {
    /// This node's id, such as n1
    #[arg(long, value_parser = parse_id)]
    pub id: NodeId,
    /// Directory holding the node's term, vote and log
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address to listen on for clients (JSON lines): IP:PORT
    #[arg(long, value_parser = parse_addr)]
    pub client_addr: SocketAddr,
    /// Address to listen on for peers: IP:PORT
    #[arg(long, value_parser = parse_addr)]
    pub peer_addr: SocketAddr,
    /// How this node reaches a peer: ID=IP:PORT (repeat per peer)
    #[arg(long = "peer", value_name = "ID=IP:PORT", value_parser = parse_peer)]
    pub peers: Vec<(NodeId, SocketAddr)>,
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

fn parse_id(text: &str) -> Result<NodeId, Error> {
    if text.is_empty() || text.contains('=') || text.contains(char::is_whitespace) {
        return Err(Error::Config(format!(
            "expected a node id such as n1 (no '=' or spaces), found {text:?}"
        )));
    }
    Ok(text.to_string())
}

/// An address as HOST:PORT where HOST is an IP address or `localhost`
/// (taken as 127.0.0.1); other host names are not resolved, so that a
/// node never depends on a name service. The port may not be 0.
fn parse_addr(text: &str) -> Result<SocketAddr, Error> {
    let localhost = || {
        let port = text.strip_prefix("localhost:")?.parse().ok()?;
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    };
    match text.parse().ok().or_else(localhost) {
        Some(addr) if addr.port() != 0 => Ok(addr),
        _ => Err(Error::Config(format!(
            "expected HOST:PORT with an IP address or localhost and a port \
             from 1, found {text:?}"
        ))),
    }
}

/// What `HOST` may be in `--peer`.
const HOST: &str = "HOST an IP address or localhost";

fn parse_peer(text: &str) -> Result<(NodeId, SocketAddr), Error> {
    let bad = || Error::Config(format!("expected ID=HOST:PORT ({HOST}), found {text:?}"));
    let (id, addr) = text.split_once('=').ok_or_else(bad)?;
    let id = parse_id(id).map_err(|_| bad())?;
    let addr = parse_addr(addr).map_err(|_| bad())?;
    Ok((id, addr))
}

fn parse_range(text: &str) -> Result<(u64, u64), Error> {
    let bad =
        || Error::Config(format!("expected MIN..MAX in milliseconds, found {text:?}"));
    let (lo, hi) = text.split_once("..").ok_or_else(bad)?;
    let lo: u64 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u64 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl Args {
    /// Checks what no single option can: each peer once and never this
    /// node itself, and a heartbeat shorter than the election timeout
    /// (unless the `eager-election` bug asks for the opposite).
    pub fn validate(&self) -> Result<(), Error> {
        let mut seen = BTreeSet::new();
        for (id, _) in &self.peers {
            if *id == self.id {
                return Err(Error::Config(format!(
                    "--peer: expected the other nodes, found this node's own id {id:?}"
                )));
            }
            if !seen.insert(id) {
                return Err(Error::Config(format!(
                    "--peer: expected each peer once, found {id:?} twice"
                )));
            }
        }
        if self.heartbeat == 0 {
            return Err(Error::Config(
                "--heartbeat: expected at least 1 millisecond, found 0".into(),
            ));
        }
        let min = self.election_timeout.0;
        if self.heartbeat >= min && !self.bugs.contains(&Bug::EagerElection) {
            return Err(Error::Config(format!(
                "--heartbeat: expected less than the election timeout's minimum \
                 of {min} ms, found {} ms",
                self.heartbeat
            )));
        }
        Ok(())
    }

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
    main_as("raft-kv", args)
}

/// [`main_from_args`] for a node run as `program`, the name its usage and
/// error messages show (such as `faultline raft-kv`).
pub fn main_as(program: &str, args: Vec<String>) -> ExitCode {
    let argv = std::iter::once(program.to_string()).chain(args);
    let parsed = Args::try_parse_from(argv).and_then(|args| match args.validate() {
        Ok(()) => Ok(args),
        Err(err) => {
            let mut command = Args::command().bin_name(program);
            Err(command.error(clap::error::ErrorKind::ValueValidation, err))
        }
    });
    let args = match parsed {
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

    /// Parses and validates a command line of node n1 with `extra`.
    fn check(extra: &[&str]) -> Result<Args, String> {
        let base = [
            "raft-kv",
            "--id",
            "n1",
            "--data-dir",
            "/tmp/x",
            "--client-addr",
            "127.0.0.1:7101",
            "--peer-addr",
            "127.0.0.1:7201",
        ];
        let args =
            Args::try_parse_from(base.iter().chain(extra)).map_err(|e| e.to_string())?;
        args.validate().map_err(|e| e.to_string())?;
        Ok(args)
    }

    #[test]
    fn peer_without_ip_and_port_is_rejected() {
        for bad in [
            "n2=127.0.0.1",
            "n2=notaddr",
            "=127.0.0.1:9",
            "n2",
            "n2=127.0.0.1:0",
        ] {
            let err = parse_peer(bad).unwrap_err().to_string();
            let expected = format!("expected ID=HOST:PORT ({HOST}), found {bad:?}");
            assert_eq!(err, expected);
            assert!(check(&["--peer", bad]).is_err());
        }
        let (id, addr) = parse_peer("n2=localhost:9012").unwrap();
        assert_eq!(
            (id.as_str(), addr.to_string().as_str()),
            ("n2", "127.0.0.1:9012")
        );
        assert!(parse_peer("n2=[::1]:9012").is_ok());
    }

    #[test]
    fn duplicate_or_own_peer_is_rejected() {
        let twice = check(&["--peer", "n2=127.0.0.1:1", "--peer", "n2=127.0.0.1:2"]);
        assert!(twice
            .unwrap_err()
            .contains(r#"--peer: expected each peer once, found "n2" twice"#));
        let own = check(&["--peer", "n1=127.0.0.1:1"]).unwrap_err();
        assert!(own.contains(r#"found this node's own id "n1""#), "{own}");
    }

    #[test]
    fn empty_id_is_rejected() {
        let err = Args::try_parse_from(["raft-kv", "--id", "", "--data-dir", "d"])
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"expected a node id such as n1"#), "{err}");
    }

    #[test]
    fn heartbeat_not_shorter_than_election_timeout_is_rejected() {
        let err = check(&["--heartbeat", "1000"]).unwrap_err();
        let expected = "--heartbeat: expected less than the election timeout's \
                        minimum of 300 ms, found 1000 ms";
        assert!(err.contains(expected), "{err}");
        assert!(check(&["--heartbeat", "0"]).is_err());
        assert!(check(&["--heartbeat", "299"]).is_ok());
        assert!(check(&["--heartbeat", "1000", "--bug", "eager-election"]).is_ok());
    }

    #[test]
    fn help_about_is_imperative() {
        let help = Args::command().render_help().to_string();
        assert!(help.starts_with("Run the reference raft-kv node"), "{help}");
        let usage = Args::command()
            .bin_name("faultline raft-kv")
            .render_usage()
            .to_string();
        assert!(usage.starts_with("Usage: faultline raft-kv "), "{usage}");
    }

    #[test]
    fn rejects_a_backwards_range() {
        let err = parse_range("600..300").unwrap_err().to_string();
        assert!(err.contains("expected MIN..MAX"), "{err}");
    }
}
