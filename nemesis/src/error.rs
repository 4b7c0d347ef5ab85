//! The crate's error type.

use std::io;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while injecting or undoing a fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `binding a proxy listener on 127.0.0.1:0`.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// An external command (`ip`, `nft`) exited unsuccessfully.
    #[error("`{command}` exited with {status}: {stderr}")]
    Command {
        /// The command line as run.
        command: String,
        /// Its exit status.
        status: String,
        /// The last lines of its standard error.
        stderr: String,
    },
    /// The host lacks what a backend needs (root, `ip`, `nft`, libfaketime).
    #[error("{0}")]
    Unsupported(String),
    /// A caller passed something out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// The state file of a run could not be read or written.
    #[error("state file {path}: {message}")]
    State {
        /// The state file.
        path: String,
        /// What was wrong with it.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
