//! The run registry and `clean`, with real processes but no namespaces.

use nemesis::registry::{
    clean_in, process_start, CleanOptions, ProcessRecord, Registry, RunState,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const CLEAN: CleanOptions = CleanOptions {
    all: false,
    dry_run: false,
    orphans: false,
    only_tag: None,
    min_age: Duration::ZERO,
};

/// A `sleep` child, killed and reaped on drop whatever the test did.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(Command::new("sleep").arg("30").spawn().unwrap())
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Whether it still runs; reaps it if it died.
    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_state(path: &Path) -> RunState {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The pid of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Makes the run look as if its owner died (its start time stays).
fn orphan(registry: &Registry) {
    let mut state = read_state(registry.path());
    state.owner_pid = dead_pid();
    std::fs::write(registry.path(), serde_json::to_string(&state).unwrap()).unwrap();
}

/// A state dir as `Registry` makes it, inside a temporary dir.
fn private_dir(parent: &Path) -> PathBuf {
    let dir = parent.join("state");
    nemesis::registry::prepare_state_dir(&dir).unwrap();
    dir
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_state_file_records_the_owner_and_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "run-1").unwrap();
    assert_eq!(registry.tag().len(), 6);
    registry.add_namespace("fl-x-n1").unwrap();
    registry.add_process(4242, "/usr/bin/raft-kv").unwrap();

    let state = read_state(registry.path());
    assert_eq!(state.run_id, "run-1");
    assert_eq!(state.owner_pid, std::process::id());
    assert_eq!(Some(state.owner_start), process_start(std::process::id()));
    assert_eq!(state.namespaces, ["fl-x-n1"]);
    assert_eq!(state.processes[0].program, "raft-kv");

    registry.remove_namespace("fl-x-n1").unwrap();
    assert!(read_state(registry.path()).namespaces.is_empty());
}

#[test]
fn finish_refuses_while_something_is_still_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "run-2").unwrap();
    registry.add_link("fl-abcdef-br").unwrap();
    let err = registry.finish().unwrap_err();
    assert!(err.to_string().contains("1 links"), "{err}");
    assert!(registry.path().exists());

    registry.remove_link("fl-abcdef-br").unwrap();
    registry.finish().unwrap();
    assert!(!registry.path().exists());
}

#[test]
fn finish_deletes_recorded_files_and_later_changes_do_not_revive_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "run-3").unwrap();
    let clock_file = dir.path().join("n1.faketime");
    std::fs::write(&clock_file, "+0 x1\n").unwrap();
    registry.add_file(&clock_file).unwrap();

    registry.finish().unwrap();
    assert!(!clock_file.exists());
    assert!(!registry.path().exists());
    registry.remove_file(&clock_file).unwrap();
    assert!(!registry.path().exists());
}

#[test]
fn clean_leaves_runs_with_a_live_owner_alone() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "live").unwrap();
    let mut node = Sleeper::start();
    registry.add_process(node.pid(), "sleep").unwrap();

    let report = clean_in(dir.path(), CLEAN);
    assert_eq!(report.live_runs.len(), 1);
    assert!(report.removed.is_empty());
    assert!(node.running());
    assert!(registry.path().exists());
}

#[test]
fn clean_kills_recorded_processes_of_a_dead_owner_and_removes_files() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "crashed").unwrap();
    let mut node = Sleeper::start();
    registry.add_process(node.pid(), "sleep").unwrap();
    let clock_file = dir.path().join(format!("{}-n1.faketime", registry.tag()));
    std::fs::write(&clock_file, "+0 x1\n").unwrap();
    registry.add_file(&clock_file).unwrap();
    orphan(&registry);

    let report = clean_in(dir.path(), CLEAN);
    assert!(report.ok(), "{:?}", report.failed);
    assert_eq!(report.removed.len(), 3, "{:?}", report.removed);
    // SIGKILL is asynchronous; waiting reaps it.
    let status = node.0.wait().unwrap();
    assert!(!status.success());
    assert!(!clock_file.exists());
    assert!(!registry.path().exists());
}

#[test]
fn clean_spares_a_pid_that_now_runs_another_program() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "reused").unwrap();
    let mut stranger = Sleeper::start();
    registry.add_process(stranger.pid(), "raft-kv").unwrap();
    orphan(&registry);

    let report = clean_in(dir.path(), CLEAN);
    assert!(report.ok(), "{:?}", report.failed);
    assert!(stranger.running());
}

#[test]
fn a_dry_run_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "dry").unwrap();
    let mut node = Sleeper::start();
    registry.add_process(node.pid(), "sleep").unwrap();
    orphan(&registry);

    let options = CleanOptions {
        dry_run: true,
        ..CLEAN
    };
    let report = clean_in(dir.path(), options);
    assert_eq!(report.removed.len(), 2, "{:?}", report.removed);
    assert!(node.running());
    assert!(registry.path().exists());
}

#[test]
fn a_damaged_state_file_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("abcdef.json"), "{not json").unwrap();
    let report = clean_in(dir.path(), CLEAN);
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].contains("abcdef.json"),
        "{:?}",
        report.failed
    );
}

#[test]
fn the_state_dir_and_files_are_created_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("new/state");
    let registry = Registry::create_in(&dir, "private").unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(registry.path()), 0o600);
}

#[test]
fn a_forged_state_naming_lo_and_an_outside_file_is_refused_and_nothing_is_touched() {
    let parent = tempfile::tempdir().unwrap();
    let dir = private_dir(parent.path());
    let outside = parent.path().join("victim.txt");
    let inside = dir.join("victim.txt");
    let symlinked = dir.join("53e183-n1.faketime");
    for file in [&outside, &inside] {
        std::fs::write(file, "keep me").unwrap();
    }
    std::os::unix::fs::symlink(&outside, &symlinked).unwrap();
    let mut bystander = Sleeper::start();
    let forged = RunState {
        run_id: "forged".into(),
        tag: "53e183".into(),
        owner_pid: dead_pid(),
        owner_start: process_start(std::process::id()).unwrap(),
        processes: vec![ProcessRecord {
            pid: bystander.pid(),
            program: "sleep".into(),
            start: 0,
        }],
        namespaces: vec!["fl-ffffff-n1".into()],
        links: vec!["lo".into()],
        files: vec![outside.clone(), inside.clone(), symlinked.clone()],
    };
    let state_file = dir.join("53e183.json");
    std::fs::write(&state_file, serde_json::to_string(&forged).unwrap()).unwrap();

    let report = clean_in(&dir, CLEAN);
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    let refused = report.failed.join("\n");
    for expected in [
        "refusing to kill process",
        "refusing to remove namespace fl-ffffff-n1: not a faultline name for tag 53e183",
        "refusing to remove link lo: not a faultline name for tag 53e183",
        "refusing to remove file",
        "found a symlink",
    ] {
        assert!(refused.contains(expected), "{expected:?} not in {refused}");
    }
    assert_eq!(report.failed.len(), 6, "{refused}");
    assert!(bystander.running());
    assert!(outside.exists() && inside.exists() && symlinked.exists());
    assert!(state_file.exists(), "the refused record is kept");
}

#[test]
fn a_group_writable_or_symlinked_state_dir_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let dir = private_dir(parent.path());
    let registry = Registry::create_in(&dir, "shared-dir").unwrap();
    let clock_file = dir.join(format!("{}-n1.faketime", registry.tag()));
    std::fs::write(&clock_file, "+0 x1\n").unwrap();
    registry.add_file(&clock_file).unwrap();
    orphan(&registry);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();

    let report = clean_in(&dir, CLEAN);
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let why = &report.failed[0];
    assert!(why.contains(&dir.display().to_string()), "{why}");
    assert!(
        why.contains("mode 0770") && why.contains("not writable by group"),
        "{why}"
    );
    assert!(clock_file.exists() && registry.path().exists());
    let err = Registry::create_in(&dir, "again").unwrap_err().to_string();
    assert!(err.contains("mode 0770"), "{err}");

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = parent.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let report = clean_in(&link, CLEAN);
    assert!(
        report.failed[0].contains("found a symlink"),
        "{:?}",
        report.failed
    );
    assert!(clock_file.exists() && registry.path().exists());
    assert!(Registry::create_in(&link, "via-link").is_err());
}

#[test]
fn a_group_writable_state_file_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let dir = private_dir(parent.path());
    let registry = Registry::create_in(&dir, "shared-file").unwrap();
    let mut node = Sleeper::start();
    registry.add_process(node.pid(), "sleep").unwrap();
    orphan(&registry);
    let writable = std::fs::Permissions::from_mode(0o664);
    std::fs::set_permissions(registry.path(), writable).unwrap();

    let report = clean_in(&dir, CLEAN);
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    assert!(
        report.failed[0].contains("mode 0664"),
        "{:?}",
        report.failed
    );
    assert!(node.running());
}

#[test]
fn a_state_file_whose_tag_does_not_match_its_name_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let dir = private_dir(parent.path());
    let registry = Registry::create_in(&dir, "renamed").unwrap();
    let clock_file = dir.join(format!("{}-n1.faketime", registry.tag()));
    std::fs::write(&clock_file, "+0 x1\n").unwrap();
    registry.add_file(&clock_file).unwrap();
    orphan(&registry);
    let other = if registry.tag() == "ffffff" {
        "000000"
    } else {
        "ffffff"
    };
    let renamed = dir.join(format!("{other}.json"));
    std::fs::rename(registry.path(), &renamed).unwrap();

    let report = clean_in(&dir, CLEAN);
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let why = &report.failed[0];
    assert!(
        why.contains(&format!("records tag \"{}\"", registry.tag())),
        "{why}"
    );
    assert!(clock_file.exists() && renamed.exists());
}
