//! The run store: `store/<test-name>/<timestamp>/` for each run, the
//! `store/latest` link to the newest, and the harness's log file.
//!
//! A run directory holds `test.json` (options, seed, the command that
//! reproduces the run), `history.jsonl`, `observations.jsonl`,
//! `results.json`, `faultline.log` and `nodes/<id>/` (data and logs).

use anyhow::Context;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Creates a fresh run directory; [`point_latest_at`] makes it the latest
/// once it holds a run.
pub fn create_run_dir(store: &Path, test_name: &str) -> anyhow::Result<PathBuf> {
    let parent = store.join(test_name);
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create the run store {}", parent.display()))?;
    let stamp = utc_stamp(SystemTime::now());
    let mut dir = parent.join(&stamp);
    let mut n = 1;
    // Runs started in the same millisecond (parallel tests) get a suffix.
    while let Err(e) = std::fs::create_dir(&dir) {
        if e.kind() != io::ErrorKind::AlreadyExists || n > 100 {
            return Err(e).with_context(|| format!("cannot create {}", dir.display()));
        }
        n += 1;
        dir = parent.join(format!("{stamp}-{n}"));
    }
    std::fs::create_dir_all(dir.join("nodes"))?;
    Ok(dir)
}

/// Points `store/latest` at `dir`, a run directory made by
/// [`create_run_dir`]; a failure is only logged.
pub fn point_latest_at(store: &Path, dir: &Path) {
    let relative = dir.strip_prefix(store).unwrap_or(dir);
    if let Err(e) = point_latest(store, relative) {
        tracing::warn!(error = %e, "cannot update store/latest");
    }
}

/// Replaces `store/latest` atomically with a link to `relative`.
fn point_latest(store: &Path, relative: &Path) -> io::Result<()> {
    let tmp = store.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(relative, &tmp)?;
    std::fs::rename(&tmp, store.join("latest"))
}

/// `20261204T160102.123Z`: sortable, and safe in a file name.
pub fn utc_stamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Year, month and day of a count of days since 1970-01-01, by Howard
/// Hinnant's civil-from-days algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Where the harness's tracing output goes: the current run's
/// `faultline.log`, swapped at each run of `--test-count`.
static LOG: Mutex<Option<File>> = Mutex::new(None);

/// Sends the log to `path` from now on.
pub fn log_to(path: &Path) -> io::Result<()> {
    let file = File::create(path)?;
    *LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(())
}

/// Stops logging to the run's file.
pub fn close_log() {
    *LOG.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Installs the tracing subscriber writing to the current log file, at the
/// level `FAULTLINE_LOG` gives (`info` by default; `RUST_LOG` is left to
/// the nodes). Call once.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAULTLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .try_init();
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(file) => file.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_are_utc_calendar_times() {
        let at = UNIX_EPOCH + Duration::from_millis(1_733_300_000_123);
        assert_eq!(utc_stamp(at), "20241204T081320.123Z");
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_stamp(leap), "20000229T000000.000Z");
    }

    #[test]
    fn latest_points_at_the_newest_run() {
        let store = tempfile::tempdir().unwrap();
        let first = create_run_dir(store.path(), "t").unwrap();
        point_latest_at(store.path(), &first);
        let second = create_run_dir(store.path(), "t").unwrap();
        assert_ne!(first, second);
        let latest = std::fs::canonicalize(store.path().join("latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&first).unwrap());
        point_latest_at(store.path(), &second);
        let latest = std::fs::canonicalize(store.path().join("latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&second).unwrap());
    }
}
