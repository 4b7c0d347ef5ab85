//! Client workers: each one a logical client bound to one node, drawing
//! operations from its own seeded generator and recording every invocation
//! and completion.
//!
//! As in Jepsen, worker `w` of `c` starts as process `w`; after an
//! operation whose outcome is unknown (`info`: a timeout, a lost
//! connection) the process may still have a request in flight, so the
//! worker drops its client and goes on as process `w + c`, then `w + 2c`,
//! and so on. Workers share an aggregate rate: each waits a random
//! `0..2 * concurrency / rate` seconds between operations.

use super::recorder::Recorder;
use history::{OpType, Process};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use workloads::register::RegisterGen;
use workloads::{Client, Completion, Invocation};

/// Makes a fresh client of one node.
pub type Connect = Arc<dyn Fn() -> Box<dyn Client> + Send + Sync>;

/// What every worker shares.
#[derive(Clone)]
pub struct WorkerSpec {
    pub concurrency: usize,
    /// Aggregate operations per second; 0 means as fast as possible.
    pub rate: f64,
    pub op_timeout: Duration,
    pub recorder: Recorder,
}

/// One worker's identity.
pub struct Worker {
    pub index: usize,
    /// The node's name, recorded on each operation.
    pub node: String,
    pub connect: Connect,
    pub generator: RegisterGen,
}

/// Runs a worker until `stop` turns true; never abandons an operation in
/// flight (each is bounded by the op timeout). Returns the highest process
/// number it used.
pub async fn run_worker(
    spec: WorkerSpec,
    mut worker: Worker,
    mut stop: watch::Receiver<bool>,
) -> u64 {
    let step = spec.concurrency as u64;
    let mut process = worker.index as u64;
    let mut client = (worker.connect)();
    let mean_gap = if spec.rate > 0.0 {
        spec.concurrency as f64 / spec.rate
    } else {
        0.0
    };
    while !*stop.borrow() {
        let gap = worker.generator.stagger(mean_gap);
        if gap > 0.0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(gap)) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        let op = worker.generator.next_op();
        let completion =
            perform(&spec, process, &worker.node, client.as_mut(), &op).await;
        if let Completion::Info(_) = completion {
            process += step;
            client = (worker.connect)();
        }
        if spec.rate <= 0.0 {
            // Let the recorder and other tasks run when nothing else waits.
            tokio::task::yield_now().await;
        }
    }
    process
}

/// Invokes one operation as `process`, recording its invocation and its
/// completion; an operation not answered within the op timeout is `info`.
pub async fn perform(
    spec: &WorkerSpec,
    process: u64,
    node: &str,
    client: &mut dyn Client,
    op: &Invocation,
) -> Completion {
    let base = |kind| {
        let mut entry = Recorder::op(Process::Client(process), kind, &op.f);
        entry.key = Some(op.key.clone());
        entry.node = Some(node.to_string());
        entry
    };
    let mut invoke = base(OpType::Invoke);
    invoke.value = op.value.clone();
    spec.recorder.record(invoke).await;

    let completion = match tokio::time::timeout(spec.op_timeout, client.invoke(op)).await
    {
        Ok(done) => done,
        Err(_) => Completion::Info("timeout".into()),
    };
    let entry = match &completion {
        Completion::Ok(value) => {
            let mut e = base(OpType::Ok);
            e.value = value.clone();
            e
        }
        Completion::Fail(error) => {
            with_error(base(OpType::Fail), op.value.clone(), error)
        }
        Completion::Info(error) => {
            with_error(base(OpType::Info), op.value.clone(), error)
        }
    };
    spec.recorder.record(entry).await;
    completion
}

fn with_error(mut entry: history::Op, value: Value, error: &str) -> history::Op {
    entry.value = value;
    entry.error = Some(error.to_string());
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::formats::{read_path, Format};
    use std::time::Instant;
    use workloads::instant::InstantStore;
    use workloads::register::Mix;

    #[tokio::test]
    async fn workers_record_paired_operations_and_a_checkable_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let (recorder, thread) = Recorder::start(&path, Instant::now()).unwrap();
        let spec = WorkerSpec {
            concurrency: 3,
            rate: 3000.0,
            op_timeout: Duration::from_secs(1),
            recorder,
        };
        let store = InstantStore::default();
        let (stop_tx, stop) = watch::channel(false);
        let mut tasks = Vec::new();
        for index in 0..3 {
            let store = store.clone();
            let worker = Worker {
                index,
                node: "n1".into(),
                connect: Arc::new(move || Box::new(store.client())),
                generator: RegisterGen::new(index as u64, 2, Mix::default()),
            };
            tasks.push(tokio::spawn(run_worker(spec.clone(), worker, stop.clone())));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop_tx.send(true).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        drop(spec);
        thread.finish().unwrap();

        let history = read_path(&path, Format::Jsonl).unwrap();
        assert!(history.len() > 10, "only {} entries", history.len());
        let report = history::linear::check(&history, &Default::default()).unwrap();
        assert_eq!(report.verdict, history::Verdict::Valid);
    }
}
