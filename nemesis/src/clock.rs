//! Clock skew through libfaketime: each node's clock can be offset from real
//! time and run at its own rate, changed while the node runs.
//!
//! # Mechanism
//!
//! The node runs with `LD_PRELOAD=libfaketime.so.1`, which wraps the libc
//! clock functions (`clock_gettime` for both `CLOCK_REALTIME` and
//! `CLOCK_MONOTONIC`, `gettimeofday`, `time`, and the sleeps). With
//! `FAKETIME_NO_CACHE=1` it rereads the spec in `FAKETIME_TIMESTAMP_FILE` on
//! every call; the spec is written here as `+OFFSET xRATE` (seconds).
//!
//! libfaketime 0.9.10 computes, for a process whose library initialised at
//! real time `S`, `fake(t) = S + OFFSET + RATE * (t - S)`, for the monotonic
//! clock too (whose values then start near the wall clock's). `S` stays put
//! when the spec changes, so writing a new rate alone makes the clock jump
//! by `(new - old) * (t - S)`. [`FakeClock`] therefore keeps the node's skew
//! `D(t) = fake(t) - t = OFFSET + (RATE - 1) * (t - S)` as its model and
//! writes `OFFSET = D - (RATE - 1) * (t - S)` with every change, so a rate
//! change continues from the current skew. A modifier left out of the spec
//! keeps its old value in libfaketime, so the rate is always written.
//!
//! # Limits
//!
//! - Only dynamically linked programs that read time through libc are
//!   affected. Go programs (etcd) read the clock through the vDSO directly
//!   and static binaries ignore `LD_PRELOAD`: [`binary_supports_faketime`].
//! - `S` is taken as the moment [`FakeClock::on_spawn`] was called, not the
//!   moment the library initialised in the child; the error in the node's
//!   clock is `(RATE - 1)` times that gap, a few microseconds per rate step.
//! - Rereading the file costs an `open`/`read` per clock read in the node:
//!   about 4 µs per read instead of 0.3 µs, measured on this host.

use crate::registry::Registry;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Where Debian and others install the library.
const CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// Rates outside this range are refused.
pub const RATE_RANGE: (f64, f64) = (0.01, 100.0);

/// The libfaketime library: `$FAULTLINE_LIBFAKETIME` if set, else the first
/// of the usual install paths that exists.
pub fn libfaketime_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FAULTLINE_LIBFAKETIME") {
        return Some(PathBuf::from(path)).filter(|p| p.exists());
    }
    CANDIDATES.iter().map(PathBuf::from).find(|p| p.exists())
}

/// `Ok(())` when libfaketime can skew the program at `path`: a dynamically
/// linked ELF file that is not a Go program. Otherwise why not.
pub fn binary_supports_faketime(path: &Path) -> std::result::Result<(), String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let shown = path.display();
    if !bytes.starts_with(b"\x7fELF") {
        return Err(format!("{shown} is not an ELF executable; expected one"));
    }
    if !has_interpreter(&bytes) {
        return Err(format!(
            "{shown} is statically linked; LD_PRELOAD needs a dynamically linked program"
        ));
    }
    if elf_sections(&bytes)
        .iter()
        .any(|name| GO_SECTIONS.contains(name))
    {
        return Err(format!(
            "{shown} is a Go program, which reads the clock without libc; \
             libfaketime cannot skew it"
        ));
    }
    Ok(())
}

/// Sections only the Go toolchain writes.
const GO_SECTIONS: &[&str] = &[".go.buildinfo", ".note.go.buildid", ".gopclntab"];

/// Reads little-endian integers out of an ELF file, `None` past its end.
struct Elf<'a>(&'a [u8]);

impl Elf<'_> {
    fn int(&self, at: usize, len: usize) -> Option<u64> {
        let bytes = self.0.get(at..at.checked_add(len)?)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0, |acc, &b| acc << 8 | u64::from(b)),
        )
    }

    fn at(&self, at: usize, len: usize) -> Option<usize> {
        self.int(at, len).and_then(|v| usize::try_from(v).ok())
    }

    /// Whether this is a 64-bit little-endian ELF file.
    fn supported(&self) -> bool {
        self.0.get(4) == Some(&2) && self.0.get(5) == Some(&1)
    }
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program
/// header, i.e. is dynamically linked.
fn has_interpreter(bytes: &[u8]) -> bool {
    const PT_INTERP: u64 = 3;
    let elf = Elf(bytes);
    let (Some(phoff), Some(size), Some(count)) =
        (elf.at(0x20, 8), elf.at(0x36, 2), elf.at(0x38, 2))
    else {
        return false;
    };
    elf.supported()
        && (0..count)
            .any(|i| elf.int(phoff.saturating_add(i * size), 4) == Some(PT_INTERP))
}

/// The section names of a 64-bit little-endian ELF file.
fn elf_sections(bytes: &[u8]) -> Vec<&str> {
    let elf = Elf(bytes);
    let header = (
        elf.at(0x28, 8),
        elf.at(0x3a, 2),
        elf.at(0x3c, 2),
        elf.at(0x3e, 2),
    );
    let (Some(shoff), Some(size), Some(count), Some(names_index)) = header else {
        return Vec::new();
    };
    let section = |i: usize| shoff.saturating_add(i.saturating_mul(size));
    let Some(names) = elf.at(section(names_index) + 0x18, 8) else {
        return Vec::new();
    };
    if !elf.supported() {
        return Vec::new();
    }
    (0..count)
        .filter_map(|i| {
            let start = names.checked_add(elf.at(section(i), 4)?)?;
            let tail = bytes.get(start..)?;
            let end = tail.iter().position(|&b| b == 0)?;
            std::str::from_utf8(&tail[..end]).ok()
        })
        .collect()
}

/// One node's clock, controlled through its timestamp file.
#[derive(Debug)]
pub struct FakeClock {
    library: PathBuf,
    path: PathBuf,
    registry: Option<Registry>,
    model: Mutex<Model>,
}

/// The node's skew is `skew + (rate - 1) * (now - anchor)`; `start` is when
/// the node's process started (libfaketime's `S`).
#[derive(Debug, Clone, Copy)]
struct Model {
    skew: f64,
    rate: f64,
    anchor: Instant,
    start: Instant,
}

impl Model {
    fn skew_at(&self, now: Instant) -> f64 {
        self.skew + (self.rate - 1.0) * now.duration_since(self.anchor).as_secs_f64()
    }

    /// The spec that gives the current model to a process started at `start`.
    fn spec(&self, now: Instant) -> String {
        let since_start = now.duration_since(self.start).as_secs_f64();
        let offset = self.skew_at(now) - (self.rate - 1.0) * since_start;
        format!("{offset:+.9} x{:.9}\n", self.rate)
    }
}

impl FakeClock {
    /// A clock for `node` with its file in the registry's state dir
    /// (`<tag>-n<K>.faketime`), recorded so `clean` removes it.
    pub fn create(registry: &Registry, node: usize) -> Result<FakeClock> {
        let file = format!("{}-{}.faketime", registry.tag(), crate::node_name(node));
        let path = registry.dir().join(file);
        registry.add_file(&path)?;
        let mut clock = FakeClock::at(&path)?;
        clock.registry = Some(registry.clone());
        Ok(clock)
    }

    /// A clock whose timestamp file is `path`, starting at real time.
    pub fn at(path: &Path) -> Result<FakeClock> {
        let library = libfaketime_path().ok_or_else(|| {
            Error::Unsupported(format!(
                "clock skew needs libfaketime; found none at {} \
                 (set FAULTLINE_LIBFAKETIME)",
                CANDIDATES[0]
            ))
        })?;
        let now = Instant::now();
        let clock = FakeClock {
            library,
            path: path.to_path_buf(),
            registry: None,
            model: Mutex::new(Model {
                skew: 0.0,
                rate: 1.0,
                anchor: now,
                start: now,
            }),
        };
        clock.write(&clock.lock(), now)?;
        Ok(clock)
    }

    /// The environment the node's process needs; libfaketime reads it at
    /// start. `FAKETIME` must not be set as well: it would win over the file.
    pub fn env(&self) -> Vec<(String, String)> {
        let pairs = [
            ("LD_PRELOAD", self.library.display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE", self.path.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".to_string()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "0".to_string()),
            ("DONT_FAKE_MONOTONIC", "0".to_string()),
        ];
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The timestamp file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Call just before (re)starting the node's process: the new process
    /// starts at the current skew and rate.
    pub fn on_spawn(&self) -> Result<()> {
        let now = Instant::now();
        let mut model = self.lock();
        model.skew = model.skew_at(now);
        model.anchor = now;
        model.start = now;
        self.write(&model, now)
    }

    /// Sets the node's clock to real time plus `offset_ms` now (a jump),
    /// keeping its rate.
    pub fn set_offset(&self, offset_ms: i64) -> Result<()> {
        let rate = self.rate();
        self.set(offset_ms, rate)
    }

    /// Makes the node's clock run at `rate` from now on, without a jump.
    pub fn set_rate(&self, rate: f64) -> Result<()> {
        check_rate(rate)?;
        let now = Instant::now();
        let mut model = self.lock();
        model.skew = model.skew_at(now);
        model.anchor = now;
        model.rate = rate;
        self.write(&model, now)
    }

    /// Sets the offset now (a jump) and the rate from now on.
    pub fn set(&self, offset_ms: i64, rate: f64) -> Result<()> {
        check_rate(rate)?;
        let now = Instant::now();
        let mut model = self.lock();
        model.skew = offset_ms as f64 / 1000.0;
        model.anchor = now;
        model.rate = rate;
        self.write(&model, now)
    }

    /// Puts the node's clock back to real time and rate.
    pub fn reset(&self) -> Result<()> {
        self.set(0, 1.0)
    }

    /// The node's current skew from real time, in milliseconds.
    pub fn skew_ms(&self) -> f64 {
        self.lock().skew_at(Instant::now()) * 1000.0
    }

    /// The node's current clock rate.
    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    /// Deletes the timestamp file (also done on drop).
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(format!("removing {}", self.path.display()), e))
            }
        }
        match &self.registry {
            Some(registry) => registry.remove_file(&self.path),
            None => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the file atomically, so the node never reads half a spec.
    fn write(&self, model: &Model, now: Instant) -> Result<()> {
        let tmp = self.path.with_extension("faketime.tmp");
        std::fs::write(&tmp, model.spec(now))
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }
}

impl Drop for FakeClock {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

fn check_rate(rate: f64) -> Result<()> {
    let (low, high) = RATE_RANGE;
    if rate.is_finite() && (low..=high).contains(&rate) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "clock rate {rate}; expected a number from {low} to {high}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn spec_keeps_the_skew_continuous_across_a_rate_change() {
        let start = Instant::now();
        let later = start + Duration::from_secs(10);
        let mut model = Model {
            skew: 0.0,
            rate: 2.0,
            anchor: start,
            start,
        };
        // After 10 s at rate 2 the node is 10 s ahead.
        assert!((model.skew_at(later) - 10.0).abs() < 1e-9);
        model.skew = model.skew_at(later);
        model.anchor = later;
        model.rate = 1.0;
        // libfaketime computes S + OFFSET + RATE * (t - S): at rate 1 the
        // offset must be the whole 10 s skew.
        assert_eq!(model.spec(later), "+10.000000000 x1.000000000\n");
    }

    #[test]
    fn rejects_rates_that_stop_or_reverse_the_clock() {
        assert!(check_rate(0.0).is_err());
        assert!(check_rate(-1.0).is_err());
        assert!(check_rate(f64::NAN).is_err());
        assert!(check_rate(1.5).is_ok());
    }
}
