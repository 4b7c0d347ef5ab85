//! A running node process, watched by a task of its own that reaps it and,
//! until then, sends it signals.
//!
//! Once a process is reaped its pid, and the process group id it led, may
//! be given to an unrelated process. So a node is signalled only by the
//! task that waits for it, and only before that wait returns: a signal
//! asked for later is refused instead of sent, and the caller learns that
//! the node is gone.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// A started node process.
pub struct Running {
    pub pid: u32,
    /// How the node ended (`exit status: 1`), once it was reaped.
    exited: watch::Receiver<Option<String>>,
    /// Signals for the node's process group, sent by its waiting task.
    signals: mpsc::UnboundedSender<SignalRequest>,
}

/// A signal to send, and where to say that it was sent.
type SignalRequest = (Signal, Option<oneshot::Sender<()>>);

impl Running {
    /// Watches a child that leads its own process group; `node` names it in
    /// the log.
    pub fn watch(child: tokio::process::Child, pid: u32, node: String) -> Running {
        let (done, exited) = watch::channel(None);
        let (signals, requests) = mpsc::unbounded_channel();
        tokio::spawn(wait_for_node(child, pid, node, requests, done));
        Running {
            pid,
            exited,
            signals,
        }
    }

    /// Whether the node was reaped.
    pub fn has_exited(&self) -> bool {
        self.exited.borrow().is_some()
    }

    /// How the node ended, once it was reaped.
    pub fn status(&self) -> Option<String> {
        self.exited.borrow().clone()
    }

    /// Signals the node's process group; whether the signal was sent, which
    /// it is not once the node was reaped.
    pub async fn signal(&self, sig: Signal) -> bool {
        let (sent, reply) = oneshot::channel();
        self.signals.send((sig, Some(sent))).is_ok() && reply.await.is_ok()
    }

    /// Asks for a signal without waiting for it to be sent (from `Drop`).
    pub fn signal_soon(&self, sig: Signal) {
        let _ = self.signals.send((sig, None));
    }

    /// Waits at most `timeout` for the node to be reaped; whether it was.
    pub async fn reaped(&mut self, timeout: Duration) -> bool {
        let reaped = self.exited.wait_for(|e| e.is_some());
        tokio::time::timeout(timeout, reaped).await.is_ok()
    }
}

/// Waits for a node to exit and, until then, signals its process group on
/// request. The pid stays the node's until this wait reaps it, so no signal
/// can reach a process that reused the pid.
async fn wait_for_node(
    mut child: tokio::process::Child,
    pid: u32,
    node: String,
    mut requests: mpsc::UnboundedReceiver<SignalRequest>,
    done: watch::Sender<Option<String>>,
) {
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            Some((sig, sent)) = requests.recv() => {
                signal_group(pid, sig);
                if let Some(sent) = sent {
                    let _ = sent.send(());
                }
            }
        }
    };
    // Requests still queued are refused: dropping them tells the askers.
    drop(requests);
    tracing::info!(node = %node, pid, ?status, "node exited");
    let status = match status {
        Ok(status) => status.to_string(),
        Err(e) => format!("wait failed: {e}"),
    };
    let _ = done.send(Some(status));
}

/// Signals a node's process group (its pid leads the group).
fn signal_group(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(raw), signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Running` for a child that exits at once, and its waiting task.
    async fn exited_child() -> Running {
        let mut cmd = tokio::process::Command::new("true");
        cmd.process_group(0);
        let child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        let mut running = Running::watch(child, pid, "n1".into());
        assert!(running.reaped(Duration::from_secs(10)).await);
        running
    }

    #[tokio::test]
    async fn reaped_node_is_never_signalled() {
        let running = exited_child().await;
        assert!(running.has_exited());
        assert_eq!(running.exited.borrow().as_deref(), Some("exit status: 0"));
        for sig in [Signal::SIGSTOP, Signal::SIGCONT, Signal::SIGKILL] {
            assert!(!running.signal(sig).await, "{sig} was sent to a reaped pid");
        }
    }

    #[tokio::test]
    async fn running_node_is_signalled_by_its_waiting_task() {
        let mut cmd = tokio::process::Command::new("sleep");
        cmd.arg("30").process_group(0).kill_on_drop(true);
        let child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        let mut running = Running::watch(child, pid, "n1".into());
        assert!(running.signal(Signal::SIGKILL).await);
        assert!(running.reaped(Duration::from_secs(10)).await);
        assert_eq!(running.status().as_deref(), Some("signal: 9 (SIGKILL)"));
    }
}
