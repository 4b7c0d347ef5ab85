//! The timed phases of a run once its nodes are up: the workload under
//! faults, then healing, recovery and the final reads.

use super::clients::{self, Connect, Worker, WorkerSpec};
use super::cluster::Cluster;
use super::nemesis::{FaultKind, Nemesis};
use super::observe::Observer;
use super::progress::Progress;
use super::recorder::Recorder;
use super::Config;
use crate::target::Target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use workloads::register::{Mix, RegisterGen};
use workloads::{ClientOptions, Completion};

/// A stream of the run's randomness, independent of the others.
pub(super) fn rng_for(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(rng_seed(seed, stream))
}

/// Steps 2 to 4; returns the nodes that crashed on their own.
#[allow(clippy::too_many_arguments)]
pub(super) async fn drive(
    config: &Config,
    target: &Target,
    cluster: &Arc<tokio::sync::Mutex<Cluster>>,
    net: &Arc<dyn ::nemesis::Network>,
    observer: &Arc<Observer>,
    recorder: &Recorder,
    kinds: Vec<FaultKind>,
    ready_timeout: Duration,
    interrupt: &mut watch::Receiver<bool>,
) -> anyhow::Result<Vec<String>> {
    let waited = Instant::now();
    tokio::select! {
        ready = async { cluster.lock().await.wait_ready(ready_timeout).await } => ready?,
        _ = interrupt.wait_for(|i| *i) => return Ok(Vec::new()),
    }
    println!("cluster ready in {:.1} s", waited.elapsed().as_secs_f64());

    // Clients.
    let (stop_tx, stop) = watch::channel(false);
    let spec = WorkerSpec {
        concurrency: config.concurrency,
        rate: config.rate,
        op_timeout: Duration::from_secs_f64(config.op_timeout),
        recorder: recorder.clone(),
    };
    let (addrs, ids) = {
        let c = cluster.lock().await;
        (
            (0..c.len()).map(|i| c.client_addr(i)).collect::<Vec<_>>(),
            c.layout.ids.clone(),
        )
    };
    let options = ClientOptions {
        read_mode: config.read_mode,
    };
    let mut workers = Vec::new();
    for w in 0..config.concurrency {
        let node = w % addrs.len();
        let (protocol, addr) = (target.protocol, addrs[node]);
        let worker = Worker {
            index: w,
            node: ids[node].clone(),
            connect: Arc::new(move || protocol.client_with(addr, options)) as Connect,
            generator: RegisterGen::new(
                rng_seed(config.seed, 100 + w as u64),
                config.keys,
                Mix::default(),
            ),
        };
        workers.push(tokio::spawn(clients::run_worker(
            spec.clone(),
            worker,
            stop.clone(),
        )));
    }

    // The nemesis.
    let limit = Duration::from_secs_f64(config.time_limit);
    let deadline = Instant::now() + limit;
    let mut nemesis = Nemesis::new(
        cluster.clone(),
        net.clone(),
        observer.clone(),
        recorder.clone(),
        rng_for(config.seed, 1),
        kinds,
    );
    let progress = Progress::start(limit, recorder.counts.clone(), nemesis.shown.clone());
    let interval = Duration::from_secs_f64(config.nemesis_interval);
    let nemesis_stop = stop.clone();
    let nemesis_task = tokio::spawn(async move {
        nemesis.run(interval, deadline, nemesis_stop).await;
        nemesis
    });

    tokio::select! {
        _ = tokio::time::sleep_until(deadline.into()) => {}
        _ = interrupt.wait_for(|i| *i) => {}
    }
    let _ = stop_tx.send(true);
    let mut nemesis = nemesis_task.await?;
    let mut last_process = 0;
    for w in workers {
        last_process = last_process.max(w.await?);
    }
    progress.finish();
    if *interrupt.borrow() {
        return Ok(Vec::new());
    }

    // Heal, recover, read everything back.
    let crashed: Vec<String> = {
        let c = cluster.lock().await;
        c.crashed()
            .iter()
            .map(|&i| c.layout.ids[i].clone())
            .collect()
    };
    nemesis.heal_all().await;
    let healed = Instant::now();
    let recovered = tokio::select! {
        ready = async { cluster.lock().await.wait_ready(ready_timeout).await } => ready,
        _ = interrupt.wait_for(|i| *i) => return Ok(crashed),
    };
    match recovered {
        Ok(()) => println!(
            "recovered {:.1} s after healing",
            healed.elapsed().as_secs_f64()
        ),
        Err(e) => println!("not recovered: {e:#}"),
    }
    final_reads(config, target, &spec, &addrs, &ids, last_process + 1).await;
    Ok(crashed)
}

/// How long the final reads may keep retrying, all together.
const FINAL_READS_TIMEOUT: Duration = Duration::from_secs(15);

/// Reads every key through every node, retrying each until it is `ok` or
/// the time is up; every attempt is in the history.
async fn final_reads(
    config: &Config,
    target: &Target,
    spec: &WorkerSpec,
    addrs: &[std::net::SocketAddr],
    ids: &[String],
    first_process: u64,
) {
    let n = addrs.len() as u64;
    // A cluster that has just healed may still be electing a leader.
    let deadline = Instant::now() + FINAL_READS_TIMEOUT;
    let mut tasks = Vec::new();
    for (i, (&addr, id)) in addrs.iter().zip(ids).enumerate() {
        let (spec, id, protocol, keys) =
            (spec.clone(), id.clone(), target.protocol, config.keys);
        let options = ClientOptions {
            read_mode: config.read_mode,
        };
        tasks.push(tokio::spawn(async move {
            let mut process = first_process + i as u64;
            let mut client = protocol.client_with(addr, options);
            for key in 0..keys {
                let op = RegisterGen::final_read(key);
                loop {
                    let done =
                        clients::perform(&spec, process, &id, client.as_mut(), &op).await;
                    match done {
                        Completion::Ok(_) => break,
                        Completion::Info(_) => {
                            process += n;
                            client = protocol.client_with(addr, options);
                        }
                        Completion::Fail(_) => {}
                    }
                    if Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

fn rng_seed(seed: u64, stream: u64) -> u64 {
    seed ^ (stream + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}
