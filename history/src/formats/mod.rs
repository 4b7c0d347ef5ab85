//! Reading and writing histories in the formats faultline understands.
//!
//! | format | what it is |
//! |---|---|
//! | `jsonl` | the native form: one [`Op`] per line as JSON, see [`crate::op`] |
//! | `edn` | Jepsen's `history.edn`: op maps in a vector, a list or bare |
//! | `porcupine-etcd` | the etcd logs of Porcupine's test corpus |
//! | `porcupine-kv` | the key/value histories of Porcupine's test corpus |
//!
//! [`Format::Auto`] looks at the first characters that are not blank: a map
//! whose first key is a string (`{"`) is JSON Lines, `INFO` followed by
//! `jepsen.util` is an etcd log, and `[`, `(`, `#`, a `;` comment or a map
//! whose first key is a keyword (`{:`) is EDN. Porcupine's key/value files are
//! EDN maps one per line, so they are read as EDN, which gives the same
//! history.
//!
//! Every reader checks that the history pairs up (see [`crate::pair`]) and
//! reports the line of the operation at fault. Errors name the file, the
//! line, and, where it is known, the column.

use crate::op::{History, Op};
use crate::pair::{pair, PairError};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub mod edn;
pub mod jsonl;
pub mod porcupine;

pub use edn::write_edn;
pub use jsonl::{append_op, write_jsonl};

/// A history file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Guess from the content.
    #[default]
    Auto,
    Jsonl,
    Edn,
    PorcupineEtcd,
    PorcupineKv,
}

impl Format {
    /// The names accepted by [`Format::from_str`].
    pub const NAMES: [&'static str; 5] =
        ["auto", "jsonl", "edn", "porcupine-etcd", "porcupine-kv"];

    /// Guesses the format from the first characters that are not blank.
    /// `None` when nothing matches.
    pub fn detect(text: &str) -> Option<Format> {
        let start = text.trim_start_matches(BOM).trim_start();
        if start.is_empty() {
            // An empty history is the same in every format.
            return Some(Format::Jsonl);
        }
        // A map: JSON when its first key is a string, EDN when a keyword.
        if let Some(inside) = start.strip_prefix('{') {
            return match inside.trim_start().chars().next() {
                Some('"') => Some(Format::Jsonl),
                Some(':') => Some(Format::Edn),
                _ => None,
            };
        }
        let mut words = start.split_whitespace();
        if words.next() == Some("INFO") && words.next() == Some("jepsen.util") {
            return Some(Format::PorcupineEtcd);
        }
        let edn_start = ["[", "(", "#", ";"];
        if edn_start.iter().any(|s| start.starts_with(s)) {
            return Some(Format::Edn);
        }
        None
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "auto" => Ok(Format::Auto),
            "jsonl" => Ok(Format::Jsonl),
            "edn" => Ok(Format::Edn),
            "porcupine-etcd" => Ok(Format::PorcupineEtcd),
            "porcupine-kv" => Ok(Format::PorcupineKv),
            _ => Err(format!(
                "expected a format, one of {}, found {s:?}",
                Format::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::PorcupineEtcd => "porcupine-etcd",
            Format::PorcupineKv => "porcupine-kv",
        })
    }
}

/// Bad input: what was found where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FormatError {
    /// The file, or whatever the text came from; empty when unknown.
    pub origin: String,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// 1-based column in characters, when known.
    pub column: Option<usize>,
    pub message: String,
}

impl FormatError {
    /// An error about the input as a whole.
    pub fn whole(message: impl Into<String>) -> FormatError {
        FormatError {
            origin: String::new(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// An error at a line.
    pub fn at(line: usize, message: impl Into<String>) -> FormatError {
        FormatError {
            line: Some(line),
            ..FormatError::whole(message)
        }
    }

    /// An error at a line and column.
    pub fn at_column(
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> FormatError {
        FormatError {
            line: Some(line),
            column: Some(column),
            ..FormatError::whole(message)
        }
    }

    /// Names the file the error is in.
    pub fn in_file(mut self, origin: impl Into<String>) -> FormatError {
        self.origin = origin.into();
        self
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut place = self.origin.clone();
        match (self.line, self.column, place.is_empty()) {
            (Some(l), Some(c), false) => place += &format!(":{l}:{c}"),
            (Some(l), None, false) => place += &format!(":{l}"),
            (Some(l), Some(c), true) => place = format!("line {l}, column {c}"),
            (Some(l), None, true) => place = format!("line {l}"),
            (None, _, _) => {}
        }
        if place.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{place}: {}", self.message)
        }
    }
}

/// Reads a history file.
pub fn read_path(path: &Path, format: Format) -> Result<History, FormatError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        FormatError::whole(format!("cannot read the history: {e}")).in_file(&origin)
    })?;
    read_str(&text, format, &origin)
}

/// Reads a history from text; `origin` names it in errors.
pub fn read_str(
    text: &str,
    format: Format,
    origin: &str,
) -> Result<History, FormatError> {
    read_str_numbered(text, format, origin).map(|(history, _)| history)
}

/// The byte order mark some editors write first; readers skip it.
const BOM: char = '\u{feff}';

/// Reads a history and the 1-based line of each of its operations, so that
/// a later complaint about an operation can point at its line.
pub fn read_str_numbered(
    text: &str,
    format: Format,
    origin: &str,
) -> Result<(History, Vec<usize>), FormatError> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let format = match format {
        Format::Auto => Format::detect(text).ok_or_else(|| {
            FormatError::whole(format!(
                "cannot tell the format from {:?}; expected JSON Lines (`{{\"`), \
                 EDN (`[`, `(`, `{{:`) or an etcd log (`INFO  jepsen.util`)",
                first_chars(text)
            ))
            .in_file(origin)
        })?,
        other => other,
    };
    let (history, lines) = match format {
        Format::Jsonl => jsonl::read(text),
        Format::Edn => edn::read(text),
        Format::PorcupineEtcd => porcupine::read_etcd(text),
        Format::PorcupineKv => porcupine::read_kv(text),
        Format::Auto => unreachable!("auto was resolved above"),
    }
    .map_err(|e| e.in_file(origin))?;
    check_pairs(&history, &lines).map_err(|e| e.in_file(origin))?;
    Ok((history, lines))
}

/// Checks that invocations and completions pair up; the error names the
/// line of the operation at fault. `lines[i]` is the line of `history[i]`.
pub(crate) fn check_pairs(history: &[Op], lines: &[usize]) -> Result<(), FormatError> {
    let Err(err) = pair(history) else {
        return Ok(());
    };
    let index = match &err {
        PairError::DoubleInvoke { index, .. }
        | PairError::Orphan { index, .. }
        | PairError::Mismatch { index, .. } => *index,
    };
    let position = history.iter().position(|op| op.index == index);
    match position.and_then(|p| lines.get(p)) {
        Some(&line) => Err(FormatError::at(line, err.to_string())),
        None => Err(FormatError::whole(err.to_string())),
    }
}

/// The start of a text, for error messages.
fn first_chars(text: &str) -> String {
    text.trim_start().chars().take(20).collect()
}
