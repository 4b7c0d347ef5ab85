//! The `faultline` command line: one binary for running tests, checking
//! histories, reporting and cleaning up.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod check;
mod clean;
mod exit;
mod report;
mod runner;
mod serve;
mod target;
mod test;

#[derive(Parser)]
#[command(
    name = "faultline",
    version,
    about = "A Jepsen-style correctness checker for consensus systems"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a cluster under faults, record a history, check it and store it
    Test(test::Args),
    /// Check history files, node observations or a stored run
    Check(check::Args),
    /// Write report.html for a stored run
    Report(report::Args),
    /// Serve the run store over HTTP on loopback
    Serve(serve::Args),
    /// Remove what a crashed run left behind: processes, namespaces, files
    Clean(clean::Args),
    /// Measure the harness's own ceiling against an instant in-process target
    #[command(name = "bench-harness", hide = true)]
    BenchHarness(runner::bench::Args),
    /// Run the reference raft-kv node (used by the harness)
    #[command(name = "raft-kv", hide = true, disable_help_flag = true)]
    RaftKv {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { exit::ERROR } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    exit::finish(match cli.command {
        Command::Test(args) => test::run(args),
        Command::Check(args) => check::run(args),
        Command::Report(args) => report::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Clean(args) => clean::run(args),
        Command::BenchHarness(args) => runner::bench::run(args),
        Command::RaftKv { args } => return raft_kv_main(args),
    })
}

/// The node runs inside this binary too, so that `cargo run -- test` needs
/// nothing else built.
fn raft_kv_main(args: Vec<String>) -> ExitCode {
    raft_kv::cli::main_as("faultline raft-kv", args)
}
