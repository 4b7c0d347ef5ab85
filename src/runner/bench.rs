//! `faultline bench-harness`: the harness's own ceiling.
//!
//! Client workers drive an in-process target that answers at once
//! ([`workloads::instant`]) through the same worker loop and recorder as a
//! real test, with no rate limit, for a fixed time; the figure is the
//! number of operations (completions) recorded to disk per second. The
//! history is then checked, so the benchmark also shows the recorder kept
//! a well-formed, linearizable history at that speed.

use super::clients::{self, Connect, Worker, WorkerSpec};
use super::recorder::Recorder;
use crate::exit::Outcome;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use workloads::instant::InstantStore;
use workloads::register::{Mix, RegisterGen};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to run (the history grows by about 100 MB a second)
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Client workers
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Keys
    #[arg(long, default_value_t = 5)]
    pub keys: usize,
    /// Also check the history for linearizability (can take long)
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let path = std::env::temp_dir()
        .join(format!("faultline-bench-{}.jsonl", std::process::id()));
    let result = measure(&args, &path);
    let _ = std::fs::remove_file(&path);
    result
}

fn measure(args: &Args, path: &std::path::Path) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Runtime::new()?;
    let (ops, elapsed) = runtime.block_on(async {
        let (recorder, thread) = Recorder::start(path, Instant::now())?;
        let spec = WorkerSpec {
            concurrency: args.concurrency,
            rate: 0.0,
            op_timeout: Duration::from_secs(1),
            recorder: recorder.clone(),
        };
        let store = InstantStore::default();
        let (stop_tx, stop) = watch::channel(false);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for index in 0..args.concurrency {
            let store = store.clone();
            let worker = Worker {
                index,
                node: "n1".into(),
                connect: Arc::new(move || -> Box<dyn workloads::Client> {
                    Box::new(store.client())
                }) as Connect,
                generator: RegisterGen::new(index as u64, args.keys, Mix::default()),
            };
            tasks.push(tokio::spawn(clients::run_worker(
                spec.clone(),
                worker,
                stop.clone(),
            )));
        }
        tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
        let _ = stop_tx.send(true);
        for t in tasks {
            t.await?;
        }
        drop((spec, recorder));
        let entries = tokio::task::spawn_blocking(move || thread.finish()).await??;
        anyhow::Ok((entries / 2, started.elapsed()))
    })?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let rate = ops as f64 / elapsed.as_secs_f64();
    println!(
        "harness ceiling: {rate:.0} ops/s ({ops} operations, {} history entries, \
         {:.1} MB, {:.2} s, {} workers)",
        ops * 2,
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        args.concurrency
    );
    if args.check {
        let history = history::formats::read_path(path, history::formats::Format::Jsonl)?;
        let report = history::linear::check(&history, &Default::default())?;
        println!(
            "history check: {} ({:.0} ms)",
            report.verdict, report.elapsed_ms
        );
    }
    Ok(Outcome::Valid)
}
