//! The history recorder: one thread that numbers operations and streams
//! them to `history.jsonl`.
//!
//! Clients and the nemesis send finished [`Op`]s (index unset) over one
//! bounded channel; the order in which they arrive is the history's order.
//! A client sends its invocation before its request goes out and its
//! completion after the answer came in, so an operation that completed
//! before another was invoked is recorded before it: the history may show
//! operations as more concurrent than they were, never less. The recorder writes through
//! a buffer that it flushes whenever the channel runs dry and at least
//! every [`FLUSH_EVERY`], so a crash or Ctrl-C loses at most that much, and
//! keeps nothing in memory but counters.

use history::{Op, OpType, Process};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The longest time a recorded operation waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Operations waiting for the recorder before senders block.
const CHANNEL: usize = 16 * 1024;

/// Client completions so far, for the progress bar.
#[derive(Debug, Default)]
pub struct Counts {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
}

impl Counts {
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.info.load(Ordering::Relaxed),
        )
    }
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Op>,
    start: Instant,
    pub counts: Arc<Counts>,
}

/// The recorder thread; [`RecorderThread::finish`] waits for it once every
/// [`Recorder`] is dropped.
pub struct RecorderThread {
    thread: JoinHandle<io::Result<u64>>,
}

impl Recorder {
    /// Starts the recorder writing to `path`; `start` is the test's time 0.
    pub fn start(path: &Path, start: Instant) -> io::Result<(Recorder, RecorderThread)> {
        let file = File::create(path)?;
        let (tx, rx) = mpsc::channel(CHANNEL);
        let counts = Arc::new(Counts::default());
        let thread_counts = counts.clone();
        let thread =
            std::thread::Builder::new()
                .name("recorder".into())
                .spawn(move || {
                    write_all(rx, BufWriter::with_capacity(1 << 16, file), &thread_counts)
                })?;
        let recorder = Recorder { tx, start, counts };
        Ok((recorder, RecorderThread { thread }))
    }

    /// Nanoseconds since the test started.
    pub fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records an operation stamped now. Waits when the recorder is behind.
    pub async fn record(&self, mut op: Op) {
        op.time = self.now();
        // The recorder only stops once every sender is gone.
        let _ = self.tx.send(op).await;
    }

    /// An entry with the fields every operation has.
    pub fn op(process: Process, kind: OpType, f: &str) -> Op {
        Op {
            index: 0,
            time: 0,
            process,
            kind,
            f: f.to_string(),
            key: None,
            value: serde_json::Value::Null,
            node: None,
            error: None,
        }
    }
}

impl RecorderThread {
    /// Waits for the recorder to write everything; returns how many
    /// operations the history holds.
    pub fn finish(self) -> io::Result<u64> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the recorder thread panicked")))
    }
}

fn write_all(
    mut rx: mpsc::Receiver<Op>,
    mut out: BufWriter<File>,
    counts: &Counts,
) -> io::Result<u64> {
    let mut index = 0u64;
    let mut last_time = 0u64;
    let mut last_flush = Instant::now();
    loop {
        let op = match rx.try_recv() {
            Ok(op) => op,
            Err(mpsc::error::TryRecvError::Empty) => {
                out.flush()?;
                last_flush = Instant::now();
                match rx.blocking_recv() {
                    Some(op) => op,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        let mut op = op;
        op.index = index;
        // Senders stamp times just before sending; keep them in order.
        op.time = op.time.max(last_time);
        last_time = op.time;
        index += 1;
        if let Process::Client(_) = op.process {
            let counter = match op.kind {
                OpType::Ok => Some(&counts.ok),
                OpType::Fail => Some(&counts.fail),
                OpType::Info => Some(&counts.info),
                OpType::Invoke => None,
            };
            if let Some(c) = counter {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        history::formats::append_op(&mut out, &op)?;
        if last_flush.elapsed() >= FLUSH_EVERY {
            out.flush()?;
            last_flush = Instant::now();
        }
    }
    out.flush()?;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::formats::{read_path, Format};

    #[tokio::test]
    async fn history_on_disk_is_numbered_in_arrival_order_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let (recorder, thread) = Recorder::start(&path, Instant::now()).unwrap();
        for p in 0..3u64 {
            let mut op = Recorder::op(Process::Client(p), OpType::Invoke, "read");
            op.key = Some("k1".into());
            recorder.record(op).await;
        }
        for p in 0..3u64 {
            let mut op = Recorder::op(Process::Client(p), OpType::Ok, "read");
            op.key = Some("k1".into());
            recorder.record(op).await;
        }
        drop(recorder);
        assert_eq!(thread.finish().unwrap(), 6);

        let history = read_path(&path, Format::Jsonl).unwrap();
        let indexes: Vec<u64> = history.iter().map(|o| o.index).collect();
        assert_eq!(indexes, vec![0, 1, 2, 3, 4, 5]);
        assert!(history.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[tokio::test]
    async fn recorded_operations_reach_the_disk_while_the_run_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let (recorder, thread) = Recorder::start(&path, Instant::now()).unwrap();
        recorder
            .record(Recorder::op(Process::Nemesis, OpType::Invoke, "kill"))
            .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&path).unwrap().is_empty()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"kill\""), "nothing flushed: {text:?}");
        drop(recorder);
        thread.finish().unwrap();
    }
}
