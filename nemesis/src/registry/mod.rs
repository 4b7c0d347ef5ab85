//! A state file per run listing every resource the run creates, so that
//! [`clean`] can remove what a crashed run left behind.
//!
//! The file lives at `<state dir>/<tag>.json`, where the state dir is
//! `$FAULTLINE_STATE_DIR` or `/tmp/faultline-state`, and the tag is six hex
//! digits that also prefix the run's namespaces, bridge and veths
//! (`fl-<tag>-...`). It records the owner (the faultline process, with its
//! start time so a reused pid is not mistaken for it), the pids of spawned
//! nodes with their program name and start time, namespaces, links and
//! files. It is rewritten on every change and removed by [`Registry::finish`]
//! after a clean teardown. Proxies live inside the owner process and die
//! with it, so they are not recorded.
//!
//! The state dir is created with mode 0700, and a dir (or state file) that
//! is a symlink, belongs to another user or is writable by group or others
//! is refused, both here and by [`clean`]: see the `trust` module.

mod clean;
mod sweep;
mod trust;

pub use clean::{clean, clean_in, CleanOptions, CleanReport};
pub(crate) use clean::{
    link_names as link_names_now, namespace_names as namespace_names_now,
};

use crate::{Error, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The state dir of root when `$FAULTLINE_STATE_DIR` is not set. Other
/// users get a dir of their own beside it (see [`default_state_dir`]).
pub const DEFAULT_STATE_DIR: &str = "/tmp/faultline-state";

/// The state dir when `$FAULTLINE_STATE_DIR` is not set: [`DEFAULT_STATE_DIR`]
/// for root, `/tmp/faultline-state-<uid>` for anyone else, so that a user
/// never depends on a dir another user created.
pub fn default_state_dir() -> PathBuf {
    let uid = nix::unistd::getuid();
    if uid.is_root() {
        PathBuf::from(DEFAULT_STATE_DIR)
    } else {
        PathBuf::from(format!("{DEFAULT_STATE_DIR}-{uid}"))
    }
}

/// The state dir: `$FAULTLINE_STATE_DIR`, else [`default_state_dir`].
pub fn state_dir() -> PathBuf {
    std::env::var_os("FAULTLINE_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(default_state_dir)
}

/// What a run has created, as stored in its state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    /// The harness's run id.
    pub run_id: String,
    /// Six hex digits naming the run's resources.
    pub tag: String,
    /// The faultline process that owns the run.
    pub owner_pid: u32,
    /// The owner's start time (`/proc/PID/stat` field 22).
    pub owner_start: u64,
    /// Node processes.
    pub processes: Vec<ProcessRecord>,
    /// Network namespaces.
    pub namespaces: Vec<String>,
    /// Links in the root namespace: the bridge and host ends of veths.
    pub links: Vec<String>,
    /// Files such as libfaketime timestamp files.
    pub files: Vec<PathBuf>,
}

/// A spawned node process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessRecord {
    /// Its pid.
    pub pid: u32,
    /// The file name of the program it runs, e.g. `raft-kv` or `etcd`.
    pub program: String,
    /// Its start time (`/proc/PID/stat` field 22), 0 if unknown.
    pub start: u64,
}

/// The live record of one run; cheap to clone, all clones share the file.
#[derive(Clone, Debug)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    path: PathBuf,
    state: Mutex<RunState>,
    /// Set by [`Registry::finish`]: the state file is gone for good.
    finished: AtomicBool,
}

impl Registry {
    /// Starts the record of a run in [`state_dir`], with a fresh random tag.
    pub fn create(run_id: &str) -> Result<Registry> {
        Registry::create_in(&state_dir(), run_id)
    }

    /// Starts the record of a run in `dir`.
    pub fn create_in(dir: &Path, run_id: &str) -> Result<Registry> {
        prepare_state_dir(dir)?;
        let mut rng = rand::thread_rng();
        let (tag, path) = loop {
            let tag = format!("{:06x}", rng.gen_range(0..0x100_0000u32));
            let path = dir.join(format!("{tag}.json"));
            if !path.exists() {
                break (tag, path);
            }
        };
        let pid = std::process::id();
        let state = RunState {
            run_id: run_id.to_string(),
            tag,
            owner_pid: pid,
            owner_start: process_start(pid).unwrap_or(0),
            ..RunState::default()
        };
        let registry = Registry {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                path,
                state: Mutex::new(state),
                finished: AtomicBool::new(false),
            }),
        };
        registry.save(&registry.lock())?;
        Ok(registry)
    }

    /// The six hex digits naming this run's resources.
    pub fn tag(&self) -> String {
        self.lock().tag.clone()
    }

    /// The state dir this run's file is in; clock files go here too.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A copy of the current record.
    pub fn snapshot(&self) -> RunState {
        self.lock().clone()
    }

    /// Records a spawned node process; `program` is the program's path or
    /// file name (only the file name is kept).
    pub fn add_process(&self, pid: u32, program: &str) -> Result<()> {
        let program = Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.to_string());
        let start = process_start(pid).unwrap_or(0);
        self.update(|s| {
            s.processes.retain(|p| p.pid != pid);
            s.processes.push(ProcessRecord {
                pid,
                program,
                start,
            });
        })
    }

    /// Forgets a process that has exited and been reaped.
    pub fn remove_process(&self, pid: u32) -> Result<()> {
        self.update(|s| s.processes.retain(|p| p.pid != pid))
    }

    /// Records a network namespace.
    pub fn add_namespace(&self, name: &str) -> Result<()> {
        self.update(|s| push_unique(&mut s.namespaces, name.to_string()))
    }

    /// Forgets a deleted network namespace.
    pub fn remove_namespace(&self, name: &str) -> Result<()> {
        self.update(|s| s.namespaces.retain(|n| n != name))
    }

    /// Records a link (bridge or veth) in the root namespace.
    pub fn add_link(&self, name: &str) -> Result<()> {
        self.update(|s| push_unique(&mut s.links, name.to_string()))
    }

    /// Forgets a deleted link.
    pub fn remove_link(&self, name: &str) -> Result<()> {
        self.update(|s| s.links.retain(|n| n != name))
    }

    /// Records a file to delete.
    pub fn add_file(&self, path: &Path) -> Result<()> {
        self.update(|s| push_unique(&mut s.files, path.to_path_buf()))
    }

    /// Forgets a deleted file.
    pub fn remove_file(&self, path: &Path) -> Result<()> {
        self.update(|s| s.files.retain(|p| p != path))
    }

    /// Removes the state file: call after the nodes were stopped and the
    /// network torn down. Recorded files (clock files) still present are
    /// deleted here; later changes are no longer saved. Fails, keeping the
    /// file, when processes, namespaces or links are still recorded.
    pub fn finish(&self) -> Result<()> {
        let mut state = self.lock();
        let left = state.processes.len() + state.namespaces.len() + state.links.len();
        if left > 0 {
            return Err(Error::State {
                path: self.inner.path.display().to_string(),
                message: format!(
                    "still records {} processes, {} namespaces, {} links, {} files; \
                     expected nothing at finish",
                    state.processes.len(),
                    state.namespaces.len(),
                    state.links.len(),
                    state.files.len()
                ),
            });
        }
        for file in std::mem::take(&mut state.files) {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    let what = format!("removing {}", file.display());
                    state.files.push(file);
                    self.save(&state)?;
                    return Err(Error::io(what, e));
                }
                _ => {}
            }
        }
        self.inner.finished.store(true, Ordering::SeqCst);
        match std::fs::remove_file(&self.inner.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(
                format!("removing {}", self.inner.path.display()),
                e,
            )),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RunState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut RunState)) -> Result<()> {
        let mut state = self.lock();
        change(&mut state);
        if self.inner.finished.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.save(&state)
    }

    fn save(&self, state: &RunState) -> Result<()> {
        let path = &self.inner.path;
        let text = serde_json::to_string_pretty(state).map_err(|e| Error::State {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let tmp = path.with_extension("json.tmp");
        // A fresh file, so that it gets mode 0600 whatever a leftover had.
        let _ = std::fs::remove_file(&tmp);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(text.as_bytes())?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }
}

/// Creates `dir` (and missing parents) with mode 0700 if needed, then
/// checks that it is a directory, not a symlink, owned by this user and not
/// writable by group or others: a state dir anyone else could write to
/// could make `clean` remove what it names.
pub fn prepare_state_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating state dir {}", dir.display()), e))?;
    trust::check_dir(dir).map_err(Error::Invalid)
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// A process's start time in clock ticks since boot (`/proc/PID/stat` field
/// 22), which together with the pid identifies it across pid reuse.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it do not.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is alive and started at `start` (0: any start time).
/// A zombie counts as dead.
pub(crate) fn same_process(pid: u32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .is_some_and(|state| state == "Z");
    !zombie && process_start(pid).is_some_and(|now| start == 0 || now == start)
}
