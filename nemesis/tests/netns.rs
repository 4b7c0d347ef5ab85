//! The netns backend with real namespaces, a bridge and nftables rules, and
//! `clean` removing what a dead run left. Needs root, `ip` and `nft`.

use nemesis::netns::{check_support, NetnsNet};
use nemesis::registry::{clean_in, CleanOptions, Registry, RunState};
use nemesis::{Grudge, Network};
use nix::sched::{setns, CloneFlags};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PORT: u16 = 7000;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// Whether the test can run; with `CI=true` a missing requirement fails.
fn supported() -> bool {
    match check_support() {
        Ok(()) => true,
        Err(err) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("netns tests need root and nftables: {err}")
        }
        Err(_) => {
            eprintln!("skipped: needs root and nftables");
            false
        }
    }
}

/// Runs `f` on a thread that moved into network namespace `ns`; sockets it
/// creates stay in that namespace wherever they are used afterwards.
fn in_namespace<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// An echo server inside a namespace, stopped on drop.
struct Echo {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Echo {
    fn start(ns: &str, addr: SocketAddr) -> Echo {
        let listener = in_namespace(ns, move || TcpListener::bind(addr).unwrap());
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(2)))
                            .unwrap();
                        let mut buf = [0u8; 5];
                        if stream.read_exact(&mut buf).is_ok() {
                            let _ = stream.write_all(&buf);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Echo {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether a connection from namespace `ns` (or the root namespace for
/// `None`) to `addr` carries a line there and back.
fn reaches(ns: Option<&str>, addr: SocketAddr) -> bool {
    let attempt = move || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"ping\n")?;
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf)?;
        Ok(&buf == b"ping\n")
    };
    match ns {
        Some(ns) => in_namespace(ns, move || attempt().unwrap_or(false)),
        None => attempt().unwrap_or(false),
    }
}

/// Names of namespaces and links on the host that carry `tag`.
fn leftovers(tag: &str) -> Vec<String> {
    let run = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let namespaces = run(&["netns", "list"]);
    let links = run(&["-o", "link", "show"]);
    let names = namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .chain(links.lines().filter_map(|l| l.split(':').nth(1)))
        .map(|name| name.trim().split('@').next().unwrap_or("").to_string());
    let ours = format!("fl-{tag}-");
    let mut names: Vec<String> = names.filter(|n| n.starts_with(&ours)).collect();
    names.sort();
    names.dedup();
    names
}

/// Removes everything a test's run left, recorded or not, whatever happened.
struct CleanGuard {
    dir: std::path::PathBuf,
    tag: String,
}

impl CleanGuard {
    fn new(dir: &Path, registry: &Registry) -> CleanGuard {
        CleanGuard {
            dir: dir.to_path_buf(),
            tag: registry.tag(),
        }
    }
}

impl Drop for CleanGuard {
    fn drop(&mut self) {
        clean_in(&self.dir, sweep(&self.tag, true));
    }
}

/// Options that clean only this run's resources, with the orphan sweep.
fn sweep(tag: &str, all: bool) -> CleanOptions {
    CleanOptions {
        all,
        dry_run: false,
        orphans: true,
        only_tag: Some(tag.to_string()),
        min_age: Duration::ZERO,
    }
}

#[test]
fn partitions_drop_peer_packets_and_heal_restores_them() {
    if !supported() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "netns-test").unwrap();
    let _guard = CleanGuard::new(dir.path(), &registry);
    let tag = registry.tag();
    let net = NetnsNet::create(&registry, 3).unwrap();
    let ns: Vec<String> = (0..3).map(|i| net.namespace(i).to_string()).collect();
    let _echo: Vec<Echo> = (1..3)
        .map(|i| Echo::start(&ns[i], SocketAddr::new(net.node_host(i), PORT)))
        .collect();

    // Healed: peers and the harness's clients reach every node.
    assert!(reaches(Some(&ns[0]), net.peer_addr(0, 1, PORT)));
    assert!(reaches(Some(&ns[0]), net.peer_addr(0, 2, PORT)));
    assert!(reaches(None, net.client_addr(1, PORT)));

    // n2 alone: n1 cannot reach it, still reaches n3; clients are not cut.
    net.partition(&Grudge::isolate(3, 1)).unwrap();
    assert!(!reaches(Some(&ns[0]), net.peer_addr(0, 1, PORT)));
    assert!(reaches(Some(&ns[0]), net.peer_addr(0, 2, PORT)));
    assert!(reaches(None, net.client_addr(1, PORT)));

    net.heal().unwrap();
    assert!(reaches(Some(&ns[0]), net.peer_addr(0, 1, PORT)));

    drop(_echo);
    net.teardown().unwrap();
    assert_eq!(leftovers(&tag), Vec::<String>::new());
    assert_eq!(registry.snapshot().namespaces, Vec::<String>::new());
    registry.finish().unwrap();
    assert!(!registry.path().exists());
}

#[test]
fn namespaces_reach_only_their_subnet_and_wrap_runs_inside() {
    if !supported() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "netns-route-test").unwrap();
    let _guard = CleanGuard::new(dir.path(), &registry);
    let net = NetnsNet::create(&registry, 2).unwrap();

    let mut cmd = Command::new("ip");
    cmd.args(["-4", "route", "show"])
        .env("FAULTLINE_PROBE", "1");
    let out = net.wrap(1, cmd).output().unwrap();
    let routes = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!routes.contains("default"), "{routes}");
    let subnet = net.node_host(1).to_string();
    let prefix = subnet.rsplit_once('.').unwrap().0;
    assert!(routes.contains(prefix), "{routes}");

    let mut cmd = Command::new("ip");
    cmd.args(["-4", "addr"]);
    let addrs = net.wrap(1, cmd).output().unwrap();
    let addrs = String::from_utf8_lossy(&addrs.stdout).into_owned();
    assert!(addrs.contains(&subnet), "{addrs}");
    assert!(!addrs.contains(&net.node_host(0).to_string()), "{addrs}");

    let mut cmd = Command::new("nft");
    cmd.args(["list", "chain", "inet", "faultline", "output"]);
    let rules = net.wrap(1, cmd).output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout).into_owned();
    assert!(
        rules.contains(&format!("ip daddr != {prefix}.0/24 drop")),
        "{rules}"
    );
    net.teardown().unwrap();
    registry.finish().unwrap();
}

#[test]
fn clean_removes_what_a_run_with_a_dead_owner_left() {
    if !supported() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "crashed-run").unwrap();
    let _guard = CleanGuard::new(dir.path(), &registry);
    let tag = registry.tag();
    let net = NetnsNet::create(&registry, 2).unwrap();
    // A crash: nothing is torn down, and the owner is gone.
    std::mem::forget(net);
    let mut state: RunState = read_state(registry.path());
    state.owner_pid = dead_pid();
    state.owner_start = 0;
    std::fs::write(registry.path(), serde_json::to_string(&state).unwrap()).unwrap();
    assert_eq!(
        leftovers(&tag).len(),
        2 + 2 + 1,
        "namespaces, veths and bridge"
    );

    let dry = CleanOptions {
        dry_run: true,
        ..CleanOptions::default()
    };
    let report = clean_in(dir.path(), dry.clone());
    assert!(report.removed.iter().all(|r| r.ends_with("(dry run)")));
    assert_eq!(leftovers(&tag).len(), 5, "a dry run removes nothing");

    let report = clean_in(
        dir.path(),
        CleanOptions {
            dry_run: false,
            ..dry
        },
    );
    assert!(report.ok(), "{:?}", report.failed);
    assert_eq!(leftovers(&tag), Vec::<String>::new());
    assert!(!registry.path().exists());
}

#[test]
fn the_orphan_sweep_spares_busy_and_young_namespaces_and_removes_old_leftovers() {
    if !supported() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create_in(dir.path(), "lost-state").unwrap();
    let _guard = CleanGuard::new(dir.path(), &registry);
    let tag = registry.tag();
    let net = NetnsNet::create(&registry, 2).unwrap();
    let mut node = Command::new("sleep");
    node.arg("30");
    let mut node = net.wrap(0, node).spawn().unwrap();
    // The state file is lost: only the names say whose these are.
    std::mem::forget(net);
    std::fs::remove_file(registry.path()).unwrap();

    // A node still runs inside: its run may be alive.
    let report = clean_in(dir.path(), sweep(&tag, false));
    assert_eq!(leftovers(&tag).len(), 5, "{:?}", report.removed);
    assert!(report.live_runs.iter().any(|r| r.contains("runs in it")));

    node.kill().unwrap();
    node.wait().unwrap();
    // Empty but created just now: its run may still be building it.
    let young = CleanOptions {
        min_age: Duration::from_secs(60),
        ..sweep(&tag, false)
    };
    let report = clean_in(dir.path(), young);
    assert_eq!(leftovers(&tag).len(), 5, "{:?}", report.removed);
    assert!(report.live_runs.iter().any(|r| r.contains("s ago")));

    let report = clean_in(dir.path(), sweep(&tag, false));
    assert!(report.ok(), "{:?}", report.failed);
    assert_eq!(leftovers(&tag), Vec::<String>::new());
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
