//! The orphan sweep: namespaces and links named `fl-<6 hex>-...` of runs
//! whose state file was lost.
//!
//! A tag is swept only when no state file of it exists in any known dir
//! (the dir being cleaned, `$FAULTLINE_STATE_DIR`, the default ones) and,
//! unless `all`, none of its namespaces has a process inside or is younger
//! than `min_age` (60 s for [`clean`](super::clean)). Only names of the
//! shapes a run creates are touched (see the `trust` module).
//!
//! # Limits
//!
//! - A run using a state dir we do not know about looks orphaned once its
//!   namespaces are older than `min_age` and empty; its nodes keep them
//!   non-empty while they run, but a run between node restarts could lose
//!   its network to a sweep.
//! - Links have no creation time: the bridge of a run in an unknown dir,
//!   created a few milliseconds before its first namespace, can be swept
//!   in that window.

use super::clean::{
    act, link_exists, link_names, namespace_names, namespace_pids, remove_namespace,
    CleanOptions, CleanReport,
};
use super::trust::{is_link_of, is_namespace_of, is_tag};
use crate::cmd;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

pub(super) fn sweep_orphans(
    spared: &mut BTreeSet<String>,
    options: &CleanOptions,
    report: &mut CleanReport,
) {
    if !cmd::available("ip", "-V") {
        return;
    }
    let wanted = |tag: &str| {
        !spared.contains(tag) && options.only_tag.as_deref().is_none_or(|t| t == tag)
    };
    let namespaces: Vec<String> = namespace_names()
        .into_iter()
        .filter(|ns| {
            tag_of(ns).is_some_and(|tag| wanted(tag) && is_namespace_of(ns, tag))
        })
        .collect();
    // A run whose state file we cannot see (another state dir) may still be
    // alive: its nodes then run inside, or it is still building its network.
    if !options.all {
        for ns in &namespaces {
            let busy = namespace_pids(ns)
                .first()
                .map(|pid| format!("process {pid} runs in it"));
            let young = namespace_age(ns)
                .filter(|age| *age < options.min_age)
                .map(|age| format!("created {} s ago", age.as_secs()));
            if let Some(why) = busy.or(young) {
                report.live_runs.push(format!(
                    "namespace {ns}: {why}, its run may be alive; \
                     use --all to remove it anyway"
                ));
                spared.extend(tag_of(ns).map(str::to_string));
            }
        }
    }
    let orphan = |name: &str, is_ours: fn(&str, &str) -> bool| {
        tag_of(name).is_some_and(|tag| {
            !spared.contains(tag)
                && options.only_tag.as_deref().is_none_or(|t| t == tag)
                && is_ours(name, tag)
        })
    };
    for ns in namespaces.iter().filter(|ns| orphan(ns, is_namespace_of)) {
        remove_namespace(ns, options.dry_run, report);
    }
    for link in link_names().into_iter().filter(|n| orphan(n, is_link_of)) {
        // A veth whose peer went with its namespace is already gone.
        if link_exists(&link) {
            let what = format!("link {link}");
            let dry_run = options.dry_run;
            act(report, what, dry_run, || {
                cmd::run("ip", &["link", "del", &link])
            });
        }
    }
}

/// How long ago the namespace was created, from the time of its file in
/// `/run/netns`; `None` when that cannot be told.
fn namespace_age(ns: &str) -> Option<Duration> {
    let created = std::fs::metadata(Path::new("/run/netns").join(ns))
        .and_then(|m| m.modified())
        .ok()?;
    SystemTime::now().duration_since(created).ok()
}

/// The tag of a name of the form `fl-<6 hex>-...`.
fn tag_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("fl-")?;
    let (tag, tail) = rest.split_at_checked(6)?;
    (is_tag(tag) && tail.starts_with('-')).then_some(tag)
}
