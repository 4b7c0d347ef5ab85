//! The one place where outcomes become exit codes, shared by every command.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | valid |
//! | 1 | invalid: a checker found a violation |
//! | 2 | error: usage, bad input, harness failure |
//! | 3 | unknown: a checker ran out of time or memory |

use std::process::ExitCode;

/// A checked outcome, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Valid,
    Unknown,
    Invalid,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Valid => 0,
            Outcome::Invalid => 1,
            Outcome::Unknown => 3,
        }
    }
}

/// Exit code for a command that failed to reach a verdict.
pub const ERROR: u8 = 2;

/// Maps a command's result to the process exit code, printing the error.
pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(ERROR)
        }
    }
}
