//! The server's two pages: the list of runs and a folder's files.

use crate::report;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// A run found in the store.
struct RunEntry {
    test: String,
    timestamp: String,
    dir: PathBuf,
}

/// Runs are `STORE/<test>/<timestamp>/` folders holding a history or
/// results. Timestamps sort as text, so the newest comes first.
fn runs(store: &Path) -> Vec<RunEntry> {
    let mut runs = Vec::new();
    for test in read_dirs(store) {
        for run in read_dirs(&test) {
            if run.join("history.jsonl").is_file() || run.join("results.json").is_file() {
                runs.push(RunEntry {
                    test: name(&test),
                    timestamp: name(&run),
                    dir: run,
                });
            }
        }
    }
    runs.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(a.test.cmp(&b.test)));
    runs
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !name(p).starts_with('.'))
        .collect()
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Makes a URL path from store-relative components.
fn href(parts: &[&str]) -> String {
    let mut url = String::from("/store");
    for part in parts {
        url.push('/');
        for byte in part.bytes() {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                url.push(byte as char);
            } else {
                let _ = write!(url, "%{byte:02X}");
            }
        }
    }
    url
}

/// The list of runs, newest first.
pub fn index(store: &Path) -> String {
    let runs = runs(store);
    let mut rows = String::new();
    for run in &runs {
        let verdict = report::run_verdict(&run.dir);
        let class = match verdict.as_str() {
            "valid" | "invalid" | "unknown" => verdict.as_str(),
            _ => "other",
        };
        let base = [run.test.as_str(), run.timestamp.as_str()];
        let _ = write!(
            rows,
            "<tr><td><span class=\"v v-{class}\">{}</span></td><td>{}</td><td>{}</td>\
             <td class=\"muted\">{}</td><td><a href=\"{}/report.html\">report</a> · \
             <a href=\"{}/\">files</a></td></tr>",
            esc(&verdict),
            esc(&run.test),
            esc(&readable_stamp(&run.timestamp)),
            esc(&settings(&run.dir)),
            href(&base),
            href(&base),
        );
    }
    if runs.is_empty() {
        rows.push_str(
            "<tr><td colspan=\"5\">No runs yet: `faultline test` stores them here.</td></tr>",
        );
    }
    page(
        "faultline runs",
        &format!(
            "<h1>Runs</h1><p class=\"muted\">{} in {}</p><table><thead><tr><th>verdict</th>\
             <th>test</th><th>started (UTC)</th><th>settings</th><th></th></tr></thead><tbody>{rows}</tbody></table>",
            runs.len(),
            esc(&store.display().to_string())
        ),
    )
}

/// `20261204T162416.794Z` as `2026-12-04 16:24:16`; other names as they are.
fn readable_stamp(stamp: &str) -> String {
    let digits = |range: std::ops::Range<usize>| {
        stamp
            .get(range)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
    };
    let parts = (digits(0..4), digits(4..6), digits(6..8));
    let time = (digits(9..11), digits(11..13), digits(13..15));
    match (parts, time, stamp.get(8..9)) {
        ((Some(y), Some(mo), Some(d)), (Some(h), Some(mi), Some(s)), Some("T")) => {
            format!("{y}-{mo}-{d} {h}:{mi}:{s}")
        }
        _ => stamp.to_string(),
    }
}

/// The seed, bugs and faults of a run, from its `test.json`.
fn settings(dir: &Path) -> String {
    let test: serde_json::Value = std::fs::read_to_string(dir.join("test.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let options = test.get("options").unwrap_or(&test);
    let list = |key: &str| -> Option<String> {
        let items = options.get(key)?.as_array()?;
        let names: Vec<&str> = items.iter().filter_map(|v| v.as_str()).collect();
        (!names.is_empty()).then(|| format!("{key}: {}", names.join(", ")))
    };
    let seed = test.get("seed").map(|s| format!("seed {s}"));
    [seed, list("nemesis"), list("bugs")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The files of a folder of the store, with links.
pub fn listing(dir: &Path, relative: &Path) -> String {
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut entries: Vec<(String, bool, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                meta.is_dir(),
                meta.len(),
            ))
        })
        .filter(|(n, _, _)| !n.starts_with('.'))
        .collect();
    entries.sort();

    let mut rows = String::new();
    let mut has_report = false;
    for (file, is_dir, size) in &entries {
        has_report |= file == "report.html";
        let mut link: Vec<&str> = parts.iter().map(String::as_str).collect();
        link.push(file);
        let shown = if *is_dir {
            format!("{file}/")
        } else {
            file.clone()
        };
        let size = if *is_dir {
            String::new()
        } else {
            format!("{size} bytes")
        };
        let slash = if *is_dir { "/" } else { "" };
        let _ = write!(
            rows,
            "<tr><td><a href=\"{}{slash}\">{}</a></td><td class=\"muted\">{size}</td></tr>",
            href(&link),
            esc(&shown)
        );
    }
    if !has_report && dir.join("history.jsonl").is_file() {
        let mut link: Vec<&str> = parts.iter().map(String::as_str).collect();
        link.push("report.html");
        let _ = write!(
            rows,
            "<tr><td><a href=\"{}\">report.html</a></td><td class=\"muted\">written when \
             opened</td></tr>",
            href(&link)
        );
    }
    let title = parts.join("/");
    page(
        &title,
        &format!(
            "<p><a href=\"/\">← all runs</a></p><h1>{}</h1><table><tbody>{rows}</tbody></table>",
            esc(&title)
        ),
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        esc(title)
    )
}

fn esc(text: &str) -> String {
    report::escape(text)
}

const STYLE: &str = "body{margin:0;background:#f5f6f8;color:#1f2328;font:14px/1.5 system-ui,\
-apple-system,'Segoe UI',Roboto,Arial,sans-serif}main{max-width:1000px;margin:0 auto;\
padding:24px}h1{font-size:24px;margin:8px 0}table{border-collapse:collapse;width:100%;\
background:#fff;border:1px solid #e6e8eb;border-radius:10px}th,td{text-align:left;\
padding:8px 12px;border-bottom:1px solid #e6e8eb}th{color:#6a737d;font-weight:600}\
td{white-space:nowrap}td.muted{white-space:normal}a{color:#1971c2;text-decoration:none}a:hover{text-decoration:underline}.muted{color:#6a737d}\
.v{display:inline-block;min-width:70px;text-align:center;color:#fff;font-weight:700;\
text-transform:uppercase;font-size:11px;letter-spacing:.05em;padding:2px 8px;\
border-radius:999px}.v-valid{background:#2b8a3e}.v-invalid{background:#e03131}\
.v-unknown{background:#f59f00}.v-other{background:#868e96}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_timestamps_read_as_dates_and_other_names_stay() {
        assert_eq!(
            readable_stamp("20261204T162416.794Z"),
            "2026-12-04 16:24:16"
        );
        assert_eq!(
            readable_stamp("20261204T162416.794Z-2"),
            "2026-12-04 16:24:16"
        );
        assert_eq!(readable_stamp("run-7"), "run-7");
    }
}
