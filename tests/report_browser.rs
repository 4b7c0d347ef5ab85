//! The report in a real browser: headless Chromium loads it without script
//! errors and finds the timeline, the leadership chart and the plots drawn.
//!
//! Needs Chromium (`/usr/bin/chromium`, or the path in `CHROMIUM`). Without
//! it the test fails when `CI=true` and is skipped otherwise.

#[path = "report_support/fixture.rs"]
mod fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("CHROMIUM").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromium")),
        Some(PathBuf::from("/usr/bin/chromium-browser")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// Loads `page` in headless Chromium and returns the DOM after its scripts
/// ran. Chromium is stopped if it takes more than a minute.
fn dump_dom(chromium: &Path, page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .stdout(out.reopen().unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish loading {} within a minute",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(out.path()).unwrap()
}

/// The part of `dom` from the element with `id` to the end of its section.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let rest = &dom[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

#[test]
fn report_loads_in_chromium_without_script_errors_and_draws_every_chart() {
    let Some(chromium) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is missing and CI=true: install chromium or set CHROMIUM");
        }
        println!("skipped: needs chromium");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    fixture::write_run(dir.path(), 3000, 5);
    let status = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("report")
        .arg(dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let dom = dump_dom(&chromium, &dir.path().join("report.html"));
    assert!(
        dom.contains("data-ready=\"timeline leadership latency throughput\""),
        "the page script did not finish: {}",
        &dom[..dom.len().min(2000)]
    );
    let errors_at = dom
        .find("id=\"script-errors\"")
        .expect("error list present");
    let errors = &dom[errors_at..];
    let errors = &errors[errors.find('>').unwrap() + 1..errors.find("</pre>").unwrap()];
    assert!(errors.is_empty(), "script errors: {errors}");
    for id in ["timeline", "leadership", "latency", "throughput"] {
        let part = section(&dom, id);
        assert!(part.contains("<svg"), "{id} has no chart");
        assert!(
            part.matches("<rect").count() + part.matches("<path").count() > 5,
            "{id} is empty"
        );
    }
    assert!(
        section(&dom, "evidence").contains("stuck"),
        "counterexample missing"
    );
}

/// The run directory `faultline test` names on its `stored in:` line, else
/// the store's `latest` link.
fn stored_in(stdout: &str, store: &Path) -> PathBuf {
    let named = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("stored in:"))
        .map(|dir| PathBuf::from(dir.trim()));
    named.unwrap_or_else(|| store.join("latest"))
}

#[test]
fn report_written_by_a_real_run_with_a_stale_read_bug_loads_in_chromium() {
    let Some(chromium) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is missing and CI=true: install chromium or set CHROMIUM");
        }
        println!("skipped: needs chromium");
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args([
            "test",
            "--time-limit",
            "8",
            "--nodes",
            "3",
            "--bug",
            "stale-read",
        ])
        .args(["--nemesis", "partition", "--seed", "1", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = match out.status.code() {
        Some(0) => "valid",
        Some(1) => "invalid",
        other => panic!(
            "faultline test gave {other:?}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    };
    let run = stored_in(&stdout, store.path());
    let page = run.join("report.html");
    assert!(
        page.is_file(),
        "faultline test wrote no {}:\n{stdout}",
        page.display()
    );

    let dom = dump_dom(&chromium, &page);
    assert!(
        dom.contains("data-ready=\"timeline leadership latency throughput\""),
        "the page script did not finish"
    );
    assert!(dom.contains("<pre id=\"script-errors\" hidden=\"\"></pre>"));
    assert!(dom.contains(&format!("class=\"big v-{verdict}\">{verdict}<")));
    assert!(
        section(&dom, "leadership").contains("class=\"leader"),
        "no leader drawn"
    );
    assert!(
        section(&dom, "timeline").contains("class=\"fault f-part\""),
        "no partition"
    );
}
