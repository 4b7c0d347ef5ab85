//! Clock skew through libfaketime, observed from a child process: this test
//! binary runs itself under `LD_PRELOAD` as a probe that prints its wall
//! clock and its `Instant` clock. Needs libfaketime.

use nemesis::clock::{binary_supports_faketime, libfaketime_path, FakeClock};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PROBE_ENV: &str = "NEMESIS_CLOCK_PROBE";

fn main() {
    if std::env::var_os(PROBE_ENV).is_some() {
        probe();
        return;
    }
    if libfaketime_path().is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("clock tests need libfaketime; found none");
        }
        println!("skipped: needs libfaketime");
        return;
    }
    let tests: [(&str, fn()); 4] = [
        (
            "rust_binaries_support_faketime",
            rust_binaries_support_faketime,
        ),
        (
            "child_sees_the_offset_on_both_clocks",
            child_sees_the_offset_on_both_clocks,
        ),
        (
            "rate_two_makes_the_clock_run_twice_as_fast",
            rate_two_runs_twice_as_fast,
        ),
        (
            "changing_the_rate_does_not_make_the_clock_jump",
            rate_changes_do_not_jump,
        ),
    ];
    for (name, test) in tests {
        let started = Instant::now();
        test();
        println!(
            "test {name} ... ok ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
    }
}

/// The child: prints `wall_ns mono_ns` every 20 ms (of its own clock) for a
/// few seconds, where mono is the signed time since its first `Instant`.
fn probe() {
    let first = Instant::now();
    for _ in 0..400 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        // Signed: a faked monotonic clock can be set back.
        let now = Instant::now();
        let mono = match now.checked_duration_since(first) {
            Some(ahead) => ahead.as_nanos() as f64,
            None => -(first.duration_since(now).as_nanos() as f64),
        };
        println!("{} {mono}", wall.as_nanos());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One line from the probe: the real time it arrived, and the child's
/// wall clock and monotonic clock.
struct Sample {
    real: SystemTime,
    wall: f64,
    mono: f64,
}

impl Sample {
    /// The child's wall clock minus real time, in seconds.
    fn skew(&self) -> f64 {
        self.wall - secs(self.real)
    }
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A probe child running under the clock, killed on drop.
struct Probe {
    child: Child,
    samples: Receiver<Sample>,
}

impl Probe {
    fn spawn(clock: &FakeClock) -> Probe {
        clock.on_spawn().unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(PROBE_ENV, "1").stdout(Stdio::piped());
        cmd.envs(clock.env());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, samples) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut words =
                    line.split_whitespace().map(|w| w.parse::<f64>().unwrap());
                let (wall, mono) = (words.next().unwrap(), words.next().unwrap());
                let sample = Sample {
                    real: SystemTime::now(),
                    wall: wall / 1e9,
                    mono: mono / 1e9,
                };
                if send.send(sample).is_err() {
                    break;
                }
            }
        });
        Probe { child, samples }
    }

    /// Every sample that arrives within `period` of real time.
    fn collect(&self, period: Duration) -> Vec<Sample> {
        let until = Instant::now() + period;
        let mut samples = Vec::new();
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.samples.recv_timeout(left) {
                Ok(sample) => samples.push(sample),
                Err(_) => break,
            }
        }
        assert!(
            samples.len() > 3,
            "the probe printed {} lines",
            samples.len()
        );
        samples
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn new_clock(dir: &tempfile::TempDir) -> FakeClock {
    FakeClock::at(&dir.path().join("n1.faketime")).unwrap()
}

fn rust_binaries_support_faketime() {
    let exe = std::env::current_exe().unwrap();
    assert_eq!(binary_supports_faketime(&exe), Ok(()));
    let not_elf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_elf.path(), "#!/bin/sh\n").unwrap();
    assert!(binary_supports_faketime(not_elf.path()).is_err());
    if let Ok(etcd) = which("etcd") {
        let reason = binary_supports_faketime(&etcd).unwrap_err();
        assert!(reason.contains("Go"), "{reason}");
    }
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

fn child_sees_the_offset_on_both_clocks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = new_clock(&dir);
    clock.set(3_600_000, 1.0).unwrap();
    let probe = Probe::spawn(&clock);
    let before = probe.collect(Duration::from_millis(300));
    for sample in &before {
        assert!(
            (sample.skew() - 3600.0).abs() < 1.0,
            "skew {}",
            sample.skew()
        );
    }

    // A new offset while it runs: the wall clock follows within a read.
    clock.set_offset(-3_600_000).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let after = probe.collect(Duration::from_millis(300));
    let last = after.last().unwrap();
    assert!((last.skew() + 3600.0).abs() < 1.0, "skew {}", last.skew());

    // The monotonic clock jumps with it: it follows the same faked time.
    let jump = after[0].mono - before.last().unwrap().mono;
    assert!(jump < -7000.0, "monotonic clock moved by {jump} s");
}

fn rate_two_runs_twice_as_fast() {
    let dir = tempfile::tempdir().unwrap();
    let clock = new_clock(&dir);
    let probe = Probe::spawn(&clock);
    probe.collect(Duration::from_millis(200));
    clock.set_rate(2.0).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let samples = probe.collect(Duration::from_millis(1000));
    let (first, last) = (&samples[0], samples.last().unwrap());
    let real = secs(last.real) - secs(first.real);
    let wall_rate = (last.wall - first.wall) / real;
    let mono_rate = (last.mono - first.mono) / real;
    assert!(
        (1.6..2.4).contains(&wall_rate),
        "wall clock ran at {wall_rate}"
    );
    assert!(
        (1.6..2.4).contains(&mono_rate),
        "monotonic clock ran at {mono_rate}"
    );
}

/// Without compensation, a rate change after `t` seconds makes libfaketime's
/// clock jump by `(new - old) * t`; with it, successive readings stay close.
fn rate_changes_do_not_jump() {
    let dir = tempfile::tempdir().unwrap();
    let clock = new_clock(&dir);
    clock.set(500, 1.0).unwrap();
    let probe = Probe::spawn(&clock);
    let mut samples = probe.collect(Duration::from_millis(1500));
    for rate in [3.0, 0.5, 1.0] {
        clock.set_rate(rate).unwrap();
        samples.extend(probe.collect(Duration::from_millis(700)));
    }
    for pair in samples.windows(2) {
        let real = secs(pair[1].real) - secs(pair[0].real);
        let wall = pair[1].wall - pair[0].wall;
        let mono = pair[1].mono - pair[0].mono;
        // At most rate 3 over the gap between readings, plus scheduling slack.
        let bound = 3.0 * real + 0.25;
        assert!(
            (-0.001..bound).contains(&wall),
            "wall clock moved {wall} s in {real} s"
        );
        assert!(
            (-0.001..bound).contains(&mono),
            "monotonic clock moved {mono} s in {real} s"
        );
    }
    // The skew carried on from where each rate left it: still about
    // 0.5 + 1.5*0 + 0.7*2 - 0.7*0.5 ~ 1.55 s ahead, certainly ahead.
    let skew = samples.last().unwrap().skew();
    assert!((0.8..2.5).contains(&skew), "final skew {skew}");
}
