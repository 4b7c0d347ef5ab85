//! The `raft-kv` binary: one node of the reference Raft key-value store.

use std::process::ExitCode;

fn main() -> ExitCode {
    raft_kv::cli::main_from_args(std::env::args().skip(1).collect())
}
