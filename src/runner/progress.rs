//! The progress line while a test runs: elapsed time, client outcomes so
//! far and the active faults. Hidden when stdout is not a terminal; cut at
//! the terminal's width so that it never wraps.

use super::recorder::Counts;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A progress line redrawn a few times a second.
pub struct Progress {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts the progress line for a run of `limit`.
    pub fn start(
        limit: Duration,
        counts: Arc<Counts>,
        faults: Arc<Mutex<Vec<String>>>,
    ) -> Progress {
        let target = if std::io::stdout().is_terminal() {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(limit.as_millis() as u64), target);
        let style = ProgressStyle::with_template("{spinner} [{bar:12}] {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        let shown = bar.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                let elapsed = started.elapsed();
                let (ok, fail, info) = counts.get();
                let active = faults.lock().map(|f| f.join(", ")).unwrap_or_default();
                let active = if active.is_empty() {
                    "none".into()
                } else {
                    active
                };
                shown.set_position(
                    (elapsed.as_millis() as u64).min(limit.as_millis() as u64),
                );
                shown.set_message(format!(
                    "{:.0}/{:.0}s ok {ok} fail {fail} info {info} | {active}",
                    elapsed.as_secs_f64(),
                    limit.as_secs_f64()
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Progress { bar, task }
    }

    /// Removes the progress line.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
