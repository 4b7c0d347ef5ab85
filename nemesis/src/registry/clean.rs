//! Removing what runs whose owner died left behind.
//!
//! For each state file whose owner is dead (or every state file, with
//! `all`): kill the recorded processes that are still the same processes
//! (same start time, same command line, same user), kill whatever still runs
//! inside the recorded namespaces, delete namespaces, links and files, then
//! the state file. Nothing is done for a state dir or state file that
//! someone else could have written, nor for an entry that is not named the
//! way a run of the file's tag names things (see the `trust` module): such
//! entries are reported as failed and the state file is kept.
//!
//! Then, with `orphans`, sweep namespaces and links of runs whose state
//! file was lost (see the `sweep` module).
//!
//! # Limits
//!
//! - Only the state dir itself is checked, not its parents: a dir below a
//!   directory that others can write to (other than sticky `/tmp`) can be
//!   swapped.
//! - A forged record of a process still needs a trusted state file, so it
//!   needs this user; the checks on processes only stop mistakes (a reused
//!   pid), not that user.

use super::sweep::sweep_orphans;
use super::trust::{self, is_link_of, is_namespace_of, tag_of_state_file};
use super::{default_state_dir, same_process, state_dir, RunState, DEFAULT_STATE_DIR};
use crate::cmd;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How old an unrecorded namespace must be before [`clean`] sweeps it.
pub const ORPHAN_MIN_AGE: Duration = Duration::from_secs(60);

/// What to clean.
#[derive(Debug, Clone, Default)]
pub struct CleanOptions {
    /// Also clean runs whose owner is alive, and sweep namespaces with
    /// processes inside or younger than `min_age`.
    pub all: bool,
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
    /// Also sweep `fl-<tag>-` namespaces and links with no state file.
    pub orphans: bool,
    /// Sweep only resources of this tag (for tests that must not touch
    /// other runs on the host).
    pub only_tag: Option<String>,
    /// Spare unrecorded namespaces younger than this: their run may be
    /// starting with a state dir we do not know.
    pub min_age: Duration,
}

/// What [`clean`] did, one human-readable line per item.
#[derive(Debug, Clone, Default)]
pub struct CleanReport {
    /// Removed (or, in a dry run, to be removed).
    pub removed: Vec<String>,
    /// Could not be removed, with the reason.
    pub failed: Vec<String>,
    /// Runs left alone because their owner is alive.
    pub live_runs: Vec<String>,
}

impl CleanReport {
    /// True when nothing failed.
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Cleans the default state dir and sweeps orphans.
pub fn clean(all: bool, dry_run: bool) -> CleanReport {
    let options = CleanOptions {
        all,
        dry_run,
        orphans: true,
        only_tag: None,
        min_age: ORPHAN_MIN_AGE,
    };
    clean_in(&state_dir(), options)
}

/// Cleans the runs recorded in `dir`.
pub fn clean_in(dir: &Path, options: CleanOptions) -> CleanReport {
    let mut report = CleanReport::default();
    let missing = std::fs::symlink_metadata(dir)
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
    if !missing {
        if let Err(why) = trust::check_dir(dir) {
            report.failed.push(why);
            return report;
        }
    }

    // A tag with a state file in any dir we know of is not an orphan,
    // whether its owner lives or not and whatever this call makes of it.
    let mut spared = BTreeSet::new();
    for known in [
        dir.to_path_buf(),
        state_dir(),
        PathBuf::from(DEFAULT_STATE_DIR),
        default_state_dir(),
    ] {
        spared.extend(recorded_tags(&known));
    }
    for (path, state) in read_states(dir, &mut report) {
        let alive = same_process(state.owner_pid, state.owner_start);
        if alive && !options.all {
            report.live_runs.push(format!(
                "run {} (tag {}) owned by live pid {}",
                state.run_id, state.tag, state.owner_pid
            ));
            continue;
        }
        let failures = report.failed.len();
        clean_run(dir, &state, options.dry_run, &mut report);
        // Keep the record of anything left, so that cleaning again retries.
        if report.failed.len() == failures {
            remove_file(&path, options.dry_run, &mut report);
        }
    }
    if options.orphans {
        sweep_orphans(&mut spared, &options, &mut report);
    }
    report
}

/// The state files in `dir` that this user wrote and that are named after
/// the tag they record; every other `.json` file is reported as failed.
fn read_states(dir: &Path, report: &mut CleanReport) -> Vec<(PathBuf, RunState)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut states = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        if let Err(why) = trust::check_state_file(&path) {
            report.failed.push(why);
            continue;
        }
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<RunState>(&text).map_err(|e| e.to_string())
            });
        let state = match parsed {
            Ok(state) => state,
            Err(e) => {
                report.failed.push(format!(
                    "state file {}: {e}; expected a faultline run state",
                    path.display()
                ));
                continue;
            }
        };
        if tag_of_state_file(&path) != Some(state.tag.as_str()) {
            report.failed.push(format!(
                "refusing state file {}: it records tag {:?}; expected a file named \
                 <tag>.json after the tag it records, a tag of 6 lowercase hex digits",
                path.display(),
                state.tag
            ));
            continue;
        }
        states.push((path, state));
    }
    states
}

/// The tags named by `<tag>.json` files in `dir`, trusted or not: sparing
/// a resource from the sweep is always safe.
fn recorded_tags(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| tag_of_state_file(&e.path()).map(str::to_string))
        .collect()
}

fn clean_run(dir: &Path, state: &RunState, dry_run: bool, report: &mut CleanReport) {
    let tag = &state.tag;
    for process in &state.processes {
        let plausible = !process.program.is_empty()
            && !process.program.contains('/')
            && state.owner_start != 0
            && process.start >= state.owner_start;
        if !plausible {
            report.failed.push(format!(
                "refusing to kill process {} ({}): recorded start {} and owner start {}; \
                 expected a program name and a start no earlier than the owner's",
                process.pid, process.program, process.start, state.owner_start
            ));
            continue;
        }
        // Gone, or the pid now belongs to someone else: nothing to do.
        if !same_process(process.pid, process.start)
            || !runs(process.pid, &process.program, tag)
            || !trust::runs_as_me(process.pid)
        {
            continue;
        }
        let what = format!("process {} ({})", process.pid, process.program);
        act(report, what, dry_run, || crate::signal::kill(process.pid));
    }
    for ns in &state.namespaces {
        if is_namespace_of(ns, tag) {
            remove_namespace(ns, dry_run, report);
        } else {
            report.failed.push(format!(
                "refusing to remove namespace {ns}: not a faultline name for tag {tag}"
            ));
        }
    }
    for link in &state.links {
        if !is_link_of(link, tag) {
            report.failed.push(format!(
                "refusing to remove link {link}: not a faultline name for tag {tag}"
            ));
        } else if link_exists(link) {
            let what = format!("link {link}");
            act(report, what, dry_run, || {
                cmd::run("ip", &["link", "del", link])
            });
        }
    }
    for file in &state.files {
        match trust::clock_file(file, dir, tag) {
            Ok(Some(file)) => remove_file(&file, dry_run, report),
            Ok(None) => {}
            Err(why) => report.failed.push(why),
        }
    }
}

/// Whether the process's command line is `program ...`, or the
/// `ip netns exec fl-<tag>-nK program ...` that becomes it.
fn runs(pid: u32, program: &str, tag: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&str> = cmdline
        .split(|&b| b == 0)
        .filter_map(|arg| std::str::from_utf8(arg).ok())
        .collect();
    let is = |arg: Option<&&str>, name: &str| {
        arg.is_some_and(|a| Path::new(a).file_name().is_some_and(|n| n == name))
    };
    let wrapped = is(args.first(), "ip")
        && args.get(1..3) == Some(&["netns", "exec"][..])
        && args.get(3).is_some_and(|ns| is_namespace_of(ns, tag))
        && is(args.get(4), program);
    is(args.first(), program) || wrapped
}

pub(super) fn remove_namespace(ns: &str, dry_run: bool, report: &mut CleanReport) {
    if !namespace_names().iter().any(|n| n == ns) {
        return;
    }
    // Anything still running inside was started by the run.
    for pid in namespace_pids(ns) {
        let what = format!("process {pid} in namespace {ns}");
        act(report, what, dry_run, || crate::signal::kill(pid));
    }
    let what = format!("namespace {ns}");
    act(report, what, dry_run, || {
        cmd::run("ip", &["netns", "del", ns])
    });
}

fn remove_file(path: &Path, dry_run: bool, report: &mut CleanReport) {
    if std::fs::symlink_metadata(path).is_ok() {
        let what = format!("file {}", path.display());
        act(report, what, dry_run, || std::fs::remove_file(path));
    }
}

pub(super) fn namespace_pids(ns: &str) -> Vec<u32> {
    let pids = cmd::run("ip", &["netns", "pids", ns]).unwrap_or_default();
    pids.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

pub(crate) fn namespace_names() -> Vec<String> {
    let out = cmd::run("ip", &["netns", "list"]).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

pub(crate) fn link_names() -> Vec<String> {
    let out = cmd::run("ip", &["-o", "link", "show"]).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|name| name.trim().split('@').next().unwrap_or("").to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

pub(super) fn link_exists(name: &str) -> bool {
    cmd::run("ip", &["link", "show", "dev", name]).is_ok()
}

pub(super) fn act<T, E: std::fmt::Display>(
    report: &mut CleanReport,
    what: String,
    dry_run: bool,
    remove: impl FnOnce() -> Result<T, E>,
) {
    if dry_run {
        report.removed.push(format!("{what} (dry run)"));
        return;
    }
    match remove() {
        Ok(_) => report.removed.push(what),
        Err(e) => report.failed.push(format!("{what}: {e}")),
    }
}
