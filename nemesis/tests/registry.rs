//! The run registry and `clean`, with real processes but no namespaces.

use nemesis::registry::{clean_in, process_start, CleanOptions, Registry, RunState};
use std::path::Path;
use std::process::{Child, Command};

const CLEAN: CleanOptions = CleanOptions {
    all: false,
    dry_run: false,
    orphans: false,
    only_tag: None,
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

/// Makes the run look as if its owner died.
fn orphan(registry: &Registry) {
    let mut state = read_state(registry.path());
    let mut child = Command::new("true").spawn().unwrap();
    state.owner_pid = child.id();
    child.wait().unwrap();
    state.owner_start = 0;
    std::fs::write(registry.path(), serde_json::to_string(&state).unwrap()).unwrap();
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
    let clock_file = dir.path().join("clock.faketime");
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
