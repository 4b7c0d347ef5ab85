//! `faultline clean`: removes what crashed runs left behind (node
//! processes, network namespaces, bridges, veths, clock files), as recorded
//! in their state files, plus namespaces and links named like ours that no
//! state file records, once they are empty and a minute old. State dirs,
//! state files and entries that another user could have written, or that
//! name something a run does not create, are refused and reported.

use crate::exit::Outcome;
use nemesis::registry;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also clean runs whose faultline process is still alive, and sweep
    /// unrecorded namespaces that still hold processes or are under a minute old
    #[arg(long)]
    all: bool,
    /// Print what would be removed, remove nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let report = registry::clean(args.all, args.dry_run);
    for line in &report.live_runs {
        println!("kept {line}");
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for line in &report.removed {
        println!("{verb} {}", line.trim_end_matches(" (dry run)"));
    }
    for line in &report.failed {
        eprintln!("not removed: {line}");
    }
    if report.removed.is_empty() && report.failed.is_empty() {
        println!("nothing to clean in {}", registry::state_dir().display());
    } else {
        println!(
            "{} {} item(s), {} failed, {} live run(s) kept",
            verb,
            report.removed.len(),
            report.failed.len(),
            report.live_runs.len()
        );
    }
    if !report.ok() {
        anyhow::bail!(
            "{} of {} items failed or were refused; expected none to fail",
            report.failed.len(),
            report.failed.len() + report.removed.len()
        );
    }
    Ok(Outcome::Valid)
}
