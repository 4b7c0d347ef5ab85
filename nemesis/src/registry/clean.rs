//! Removing what runs whose owner died left behind.
//!
//! For each state file whose owner is dead (or every state file, with
//! `all`): kill the recorded processes that are still the same processes
//! (same start time, same program), kill whatever still runs inside the
//! recorded namespaces, delete namespaces, links and files, then the state
//! file. Then, with `orphans`, sweep namespaces and links named
//! `fl-<6 hex>-...` whose tag no live run claims (in this state dir,
//! `$FAULTLINE_STATE_DIR` or the default one), for runs whose state file was
//! lost. A namespace holding a process whose parent is alive (not init) is
//! spared unless `all`: its run may be alive and recorded elsewhere.

use super::{default_state_dir, same_process, state_dir, RunState, DEFAULT_STATE_DIR};
use crate::cmd;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What to clean.
#[derive(Debug, Clone, Default)]
pub struct CleanOptions {
    /// Also clean runs whose owner is alive.
    pub all: bool,
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
    /// Also sweep `fl-<tag>-` namespaces and links with no live owner.
    pub orphans: bool,
    /// Sweep only resources of this tag (for tests that must not touch
    /// other runs on the host).
    pub only_tag: Option<String>,
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
    };
    clean_in(&state_dir(), options)
}

/// Cleans the runs recorded in `dir`.
pub fn clean_in(dir: &Path, options: CleanOptions) -> CleanReport {
    let mut report = CleanReport::default();
    // Runs recorded anywhere we know of protect their resources from the
    // orphan sweep, whichever dir this call cleans; so do runs cleaned here.
    let mut spared = BTreeSet::new();
    for known in [
        dir.to_path_buf(),
        state_dir(),
        PathBuf::from(DEFAULT_STATE_DIR),
        default_state_dir(),
    ] {
        spared.extend(live_tags_in(&known));
    }
    for (path, state) in read_states(dir, &mut report) {
        let alive = same_process(state.owner_pid, state.owner_start);
        if alive && !options.all {
            report.live_runs.push(format!(
                "run {} (tag {}) owned by live pid {}",
                state.run_id, state.tag, state.owner_pid
            ));
            spared.insert(state.tag.clone());
            continue;
        }
        // Handled here, whatever the outcome: the sweep leaves it alone.
        spared.insert(state.tag.clone());
        let failures = report.failed.len();
        clean_run(&state, options.dry_run, &mut report);
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

fn read_states(
    dir: &Path,
    report: &mut CleanReport,
) -> Vec<(std::path::PathBuf, RunState)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut states = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<RunState>(&text).map_err(|e| e.to_string())
            });
        match parsed {
            Ok(state) => states.push((path, state)),
            Err(e) => report.failed.push(format!(
                "state file {}: {e}; expected a faultline run state",
                path.display()
            )),
        }
    }
    states
}

fn live_tags_in(dir: &Path) -> BTreeSet<String> {
    let mut ignored = CleanReport::default();
    read_states(dir, &mut ignored)
        .into_iter()
        .filter(|(_, s)| same_process(s.owner_pid, s.owner_start))
        .map(|(_, s)| s.tag)
        .collect()
}

fn clean_run(state: &RunState, dry_run: bool, report: &mut CleanReport) {
    for process in &state.processes {
        if !same_process(process.pid, process.start)
            || !runs(process.pid, &process.program)
        {
            continue;
        }
        let what = format!("process {} ({})", process.pid, process.program);
        act(report, what, dry_run, || crate::signal::kill(process.pid));
    }
    for ns in &state.namespaces {
        remove_namespace(ns, dry_run, report);
    }
    for link in &state.links {
        if link_exists(link) {
            let what = format!("link {link}");
            act(report, what, dry_run, || {
                cmd::run("ip", &["link", "del", link])
            });
        }
    }
    for file in &state.files {
        remove_file(file, dry_run, report);
    }
}

/// Whether the process's command line or command name shows `program`.
fn runs(pid: u32, program: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let in_cmdline = cmdline
        .split(|&b| b == 0)
        .filter_map(|arg| std::str::from_utf8(arg).ok())
        .any(|arg| Path::new(arg).file_name().is_some_and(|n| n == program));
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let short: String = program.chars().take(15).collect();
    in_cmdline || comm.trim() == short
}

fn remove_namespace(ns: &str, dry_run: bool, report: &mut CleanReport) {
    if !namespace_names().iter().any(|n| n == ns) {
        return;
    }
    // Anything still running inside was started by the run.
    let pids = cmd::run("ip", &["netns", "pids", ns]).unwrap_or_default();
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        let what = format!("process {pid} in namespace {ns}");
        act(report, what, dry_run, || crate::signal::kill(pid));
    }
    let what = format!("namespace {ns}");
    act(report, what, dry_run, || {
        cmd::run("ip", &["netns", "del", ns])
    });
}

fn remove_file(path: &Path, dry_run: bool, report: &mut CleanReport) {
    if path.exists() {
        let what = format!("file {}", path.display());
        act(report, what, dry_run, || std::fs::remove_file(path));
    }
}

fn sweep_orphans(
    live: &mut BTreeSet<String>,
    options: &CleanOptions,
    report: &mut CleanReport,
) {
    if !cmd::available("ip", "-V") {
        return;
    }
    let wanted = |tag: &str| {
        !live.contains(tag) && options.only_tag.as_deref().is_none_or(|t| t == tag)
    };
    let namespaces: Vec<String> = namespace_names()
        .into_iter()
        .filter(|ns| tag_of(ns).is_some_and(wanted))
        .collect();
    // A run whose state file we cannot see (another state dir) may still be
    // alive: its nodes then still have their parent. Orphaned nodes of a
    // crashed run were handed to init.
    if !options.all {
        for ns in &namespaces {
            if let Some(pid) =
                namespace_pids(ns).into_iter().find(|&p| has_live_parent(p))
            {
                report.live_runs.push(format!(
                    "namespace {ns}: process {pid} in it has a live parent; \
                     use --all to remove it anyway"
                ));
                live.extend(tag_of(ns).map(str::to_string));
            }
        }
    }
    let orphan = |name: &str| {
        let tag = tag_of(name);
        tag.is_some_and(|tag| {
            !live.contains(tag) && options.only_tag.as_deref().is_none_or(|t| t == tag)
        })
    };
    for ns in namespaces.iter().filter(|ns| orphan(ns)) {
        remove_namespace(ns, options.dry_run, report);
    }
    for link in link_names().into_iter().filter(|n| orphan(n)) {
        // A veth whose peer went with its namespace is already gone.
        if link_exists(&link) {
            let what = format!("link {link}");
            let dry_run = options.dry_run;
            act(report, what, dry_run, || {
                cmd::run("ip", &["link", "del", &link])
            });
        }
    }
}

fn namespace_pids(ns: &str) -> Vec<u32> {
    let pids = cmd::run("ip", &["netns", "pids", ns]).unwrap_or_default();
    pids.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether the process's parent is alive and is not init (pid 1).
fn has_live_parent(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let parent = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
        .and_then(|p| p.parse::<u32>().ok());
    parent.is_some_and(|ppid| ppid > 1 && same_process(ppid, 0))
}

/// The tag of a name of the form `fl-<6 hex>-...`.
pub(crate) fn tag_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("fl-")?;
    let (tag, tail) = rest.split_at_checked(6)?;
    let hex = tag
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex && tail.starts_with('-')).then_some(tag)
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

fn link_exists(name: &str) -> bool {
    cmd::run("ip", &["link", "show", "dev", name]).is_ok()
}

fn act<T, E: std::fmt::Display>(
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
