//! Process faults by signal: kill, pause, resume, terminate.
//!
//! Signalling a process that already exited is not an error: the fault's
//! effect (the process does not run) holds either way.

use crate::{Error, Result};
use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// SIGKILL: the process dies at once, without flushing anything.
pub fn kill(pid: u32) -> Result<()> {
    send(pid, Signal::SIGKILL)
}

/// SIGSTOP: the process stops running until [`resume`]; its sockets stay
/// open, so peers see a node that is slow, not gone.
pub fn pause(pid: u32) -> Result<()> {
    send(pid, Signal::SIGSTOP)
}

/// SIGCONT: undoes [`pause`].
pub fn resume(pid: u32) -> Result<()> {
    send(pid, Signal::SIGCONT)
}

/// SIGTERM: asks the process to exit.
pub fn terminate(pid: u32) -> Result<()> {
    send(pid, Signal::SIGTERM)
}

/// Whether a process with this pid exists (it may be a zombie).
pub fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    signal::kill(Pid::from_raw(raw), None).is_ok()
}

fn send(pid: u32, sig: Signal) -> Result<()> {
    let raw = match i32::try_from(pid) {
        Ok(raw) if raw > 0 => raw,
        _ => return Err(Error::Invalid(format!("pid {pid} is not a process id"))),
    };
    match signal::kill(Pid::from_raw(raw), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(errno) => Err(Error::io(
            format!("sending {sig} to pid {pid}"),
            std::io::Error::from(errno),
        )),
    }
}
