//! Preparing a run: clocks for clock faults, and the record of the run in
//! `test.json`.

use super::cluster::Cluster;
use super::nemesis::FaultKind;
use super::{store, Config};
use crate::target::Target;
use std::path::PathBuf;

/// One libfaketime clock per node, or why clock faults cannot run.
pub(super) fn clock_support(
    target: &Target,
    registry: &::nemesis::registry::Registry,
    n: usize,
) -> Result<Vec<::nemesis::clock::FakeClock>, String> {
    if ::nemesis::clock::libfaketime_path().is_none() {
        return Err("libfaketime is not installed (Debian package libfaketime)".into());
    }
    let program = target.program().map_err(|e| e.to_string())?;
    let program =
        which(&program).ok_or_else(|| format!("{} not found", program.display()))?;
    ::nemesis::clock::binary_supports_faketime(&program)?;
    (0..n)
        .map(|i| {
            ::nemesis::clock::FakeClock::create(registry, i).map_err(|e| e.to_string())
        })
        .collect()
}

/// A program's path: as given when it has a slash, else searched on PATH.
fn which(program: &std::path::Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

pub(super) fn write_test_json(
    dir: &std::path::Path,
    config: &Config,
    target: &Target,
    cluster: &Cluster,
    net: &str,
    kinds: &[FaultKind],
    left_out: &[String],
) -> anyhow::Result<()> {
    let nodes: Vec<_> = (0..cluster.len())
        .map(|i| {
            serde_json::json!({
                "id": cluster.layout.ids[i],
                "client_addr": cluster.client_addr(i).to_string(),
                "command": cluster.command_line(i),
            })
        })
        .collect();
    let test = serde_json::json!({
        "name": config.test_name(target),
        "seed": config.seed,
        "command": config.command(),
        "options": config,
        "net": net,
        "faults": kinds,
        "left_out": left_out,
        "target": target,
        "nodes": nodes,
        "started": store::utc_stamp(std::time::SystemTime::now()),
        "faultline_version": env!("CARGO_PKG_VERSION"),
    });
    std::fs::write(
        dir.join("test.json"),
        serde_json::to_string_pretty(&test)? + "\n",
    )?;
    Ok(())
}
