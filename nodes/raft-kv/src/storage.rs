//! Durable node state in its data dir: an append-only log file of JSON
//! lines (`log.jsonl`) and a small state file with the term and vote
//! (`state.json`), replaced atomically by write-temp, fsync, rename.
//!
//! A crash can leave a torn last line in the log; recovery drops it, as
//! it was never fsynced and so never acknowledged to anyone.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::core::{Entry, HardState, Persist};
use crate::Error;

/// The files of one node.
pub struct Storage {
    dir: PathBuf,
    log: File,
    /// Byte offset of each entry's line; `offsets[i]` is entry `i + 1`.
    offsets: Vec<u64>,
    end: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Storage {
    /// Opens (or creates) the data dir and recovers what it holds.
    pub fn open(dir: &Path) -> Result<(Storage, HardState, Vec<Entry>), Error> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let state = read_state(&dir.join("state.json"))?;

        let path = dir.join("log.jsonl");
        let mut log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut entries = Vec::new();
        let mut offsets = Vec::new();
        let mut end = 0u64;
        let mut lines = BufReader::new(&log).lines().enumerate().peekable();
        while let Some((n, line)) = lines.next() {
            let line = line.map_err(io_err(&path))?;
            let is_last = lines.peek().is_none();
            let entry: Entry = match serde_json::from_str(&line) {
                Ok(entry) => entry,
                Err(_) if is_last => break,
                Err(err) => {
                    return Err(Error::Corrupt {
                        path: path.display().to_string(),
                        line: n + 1,
                        message: format!("expected a log entry, found {err}"),
                    })
                }
            };
            if entry.index != entries.len() as u64 + 1 {
                return Err(Error::Corrupt {
                    path: path.display().to_string(),
                    line: n + 1,
                    message: format!(
                        "expected entry {}, found entry {}",
                        entries.len() + 1,
                        entry.index
                    ),
                });
            }
            offsets.push(end);
            end += line.len() as u64 + 1;
            entries.push(entry);
        }
        log.set_len(end).map_err(io_err(&path))?;
        log.seek(SeekFrom::Start(end)).map_err(io_err(&path))?;
        log.sync_all().map_err(io_err(&path))?;
        // The log file's directory entry must be durable too.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
        let storage = Storage {
            dir: dir.to_path_buf(),
            log,
            offsets,
            end,
        };
        Ok((storage, state, entries))
    }

    /// Carries out the core's writes in order and makes them durable.
    pub fn persist(&mut self, ops: &[&Persist]) -> Result<(), Error> {
        let path = self.dir.join("log.jsonl");
        let mut log_dirty = false;
        let mut buf = Vec::new();
        for op in ops {
            match op {
                Persist::HardState(state) => {
                    self.flush_buf(&mut buf)?;
                    write_state(&self.dir, state)?;
                }
                Persist::Truncate { from } => {
                    self.flush_buf(&mut buf)?;
                    let keep = (*from).max(1) as usize - 1;
                    if keep < self.offsets.len() {
                        self.end = self.offsets[keep];
                        self.offsets.truncate(keep);
                        self.log.set_len(self.end).map_err(io_err(&path))?;
                        self.log
                            .seek(SeekFrom::Start(self.end))
                            .map_err(io_err(&path))?;
                        log_dirty = true;
                    }
                }
                Persist::Append(entries) => {
                    for entry in entries {
                        let line = serde_json::to_string(entry).unwrap_or_default();
                        self.offsets.push(self.end + buf.len() as u64);
                        buf.extend_from_slice(line.as_bytes());
                        buf.push(b'\n');
                    }
                    log_dirty = true;
                }
            }
        }
        self.flush_buf(&mut buf)?;
        if log_dirty {
            self.log.sync_data().map_err(io_err(&path))?;
        }
        Ok(())
    }

    fn flush_buf(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        if buf.is_empty() {
            return Ok(());
        }
        let path = self.dir.join("log.jsonl");
        self.log.write_all(buf).map_err(io_err(&path))?;
        self.end += buf.len() as u64;
        buf.clear();
        Ok(())
    }
}

fn read_state(path: &Path) -> Result<HardState, Error> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|err| Error::Corrupt {
            path: path.display().to_string(),
            line: err.line(),
            message: format!("expected {{\"term\":N,\"vote\":ID}}, found {err}"),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Ok(HardState::default())
        }
        Err(err) => Err(io_err(path)(err)),
    }
}

fn write_state(dir: &Path, state: &HardState) -> Result<(), Error> {
    let tmp = dir.join("state.json.tmp");
    let path = dir.join("state.json");
    let text = serde_json::to_string(state).unwrap_or_default();
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvOp;

    fn entry(index: u64, term: u64) -> Entry {
        let op = KvOp::Write {
            key: "k".into(),
            value: index as i64,
        };
        Entry {
            term,
            index,
            op: Some(op),
        }
    }

    #[test]
    fn recovers_state_and_log_after_truncation_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, state, entries) = Storage::open(dir.path()).unwrap();
        assert_eq!(state, HardState::default());
        assert!(entries.is_empty());

        let hard = HardState {
            term: 3,
            vote: Some("n2".into()),
        };
        let ops = [
            Persist::HardState(hard.clone()),
            Persist::Append(vec![entry(1, 1), entry(2, 1), entry(3, 2)]),
            Persist::Truncate { from: 2 },
            Persist::Append(vec![entry(2, 3)]),
        ];
        storage.persist(&ops.iter().collect::<Vec<_>>()).unwrap();
        drop(storage);

        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join("log.jsonl"))
            .unwrap();
        file.write_all(b"{\"term\":3,\"ind").unwrap();
        drop(file);

        let (_, state, entries) = Storage::open(dir.path()).unwrap();
        assert_eq!(state, hard);
        assert_eq!(entries, vec![entry(1, 1), entry(2, 3)]);
    }
}
