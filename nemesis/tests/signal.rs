//! Process faults by signal against real child processes.

use nemesis::signal;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A `sleep` child, killed and reaped on drop whatever the test did.
struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The state letter in `/proc/PID/stat`: R, S, T (stopped), Z...
fn state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    after.trim_start().chars().next().unwrap()
}

/// Polls until the process reaches `want` or a second passes.
fn reaches_state(pid: u32, want: char) -> bool {
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if state(pid) == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn pause_stops_a_process_and_resume_continues_it() {
    let child = Sleeper(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = child.0.id();
    signal::pause(pid).unwrap();
    assert!(reaches_state(pid, 'T'));
    signal::resume(pid).unwrap();
    assert!(reaches_state(pid, 'S'));
}

#[test]
fn kill_ends_a_process_even_while_it_is_paused() {
    let mut child = Sleeper(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = child.0.id();
    signal::pause(pid).unwrap();
    signal::kill(pid).unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success());
    assert!(!signal::alive(pid));
}

#[test]
fn signalling_a_process_that_already_exited_is_not_an_error() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert!(signal::kill(pid).is_ok());
    assert!(signal::terminate(pid).is_ok());
}

#[test]
fn refuses_pids_that_would_signal_a_group() {
    assert!(signal::kill(0).is_err());
    assert!(signal::kill(u32::MAX).is_err());
}
