//! `faultline test`: run a cluster under faults, record a history, check it
//! and store it.
//!
//! With no arguments it starts the built-in raft-kv target as 5 processes
//! of this very binary, drives clients for 30 s under every fault, heals,
//! checks and prints the verdict. `--test-count N` repeats with successive
//! seeds; the exit code is that of the worst verdict (0 valid, 1 invalid,
//! 3 unknown; 2 when a run failed).

use crate::exit::Outcome;
use crate::runner::nemesis::FaultKind;
use crate::runner::{
    self, check::Results, store, value_name, Config, NetChoice, RunSummary,
};
use crate::target::Target;
use history::Verdict;
use std::path::PathBuf;
use tokio::sync::watch;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A built-in target (raft-kv, etcd) or a target TOML file
    #[arg(long, default_value = "raft-kv")]
    pub target: String,
    /// The workload (only `register`: read, write, cas per key)
    #[arg(long, default_value = "register")]
    pub workload: String,
    /// Number of nodes
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub nodes: usize,
    /// Seconds of workload under faults
    #[arg(long, default_value_t = 30.0, allow_negative_numbers = true)]
    pub time_limit: f64,
    /// Client workers, each bound to one node [default: 2 per node]
    #[arg(long, allow_negative_numbers = true)]
    pub concurrency: Option<usize>,
    /// Aggregate client operations per second
    #[arg(long, default_value_t = 200.0, allow_negative_numbers = true)]
    pub rate: f64,
    /// Number of keys (registers)
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub keys: usize,
    /// Seconds before an unanswered operation is recorded as info
    #[arg(long, default_value_t = 1.5, allow_negative_numbers = true)]
    pub op_timeout: f64,
    /// Fault kinds, comma-separated, or `none`. Partitions need at least 2
    /// nodes. Faults aimed at the leader hit whichever node leads at that
    /// moment, so the nodes hit can differ between replays of one seed
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "partition,kill,pause,clock"
    )]
    pub nemesis: Vec<NemesisArg>,
    /// Seconds between nemesis steps (each starts or stops a fault)
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    pub nemesis_interval: f64,
    /// Seed for the op mix and the fault schedule [default: random]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Network backend for partitions
    #[arg(long, value_enum, default_value = "auto")]
    pub net: NetChoice,
    /// A bug to switch on in the nodes, repeatable [default: none] (raft-kv:
    /// stale-read, forget-vote, minority-quorum, ack-before-commit,
    /// lease-read, eager-election)
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// Runs, with seeds seed, seed+1, ...
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub test_count: u32,
    /// Where runs are stored
    #[arg(long, default_value = "./store")]
    pub store: PathBuf,
    /// Seconds the linearizability checker may take before saying unknown
    #[arg(long, default_value_t = 60.0, allow_negative_numbers = true)]
    pub check_time_limit: f64,
    /// How etcd serves reads: linearizable (through the leader's read
    /// index) or serializable (from the member's own, possibly stale, state)
    #[arg(long, default_value = "linearizable")]
    pub read_mode: workloads::etcd::ReadMode,
}

/// A `--nemesis` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NemesisArg {
    Partition,
    Kill,
    Pause,
    Clock,
    None,
}

impl Args {
    fn config(&self, seed: u64) -> anyhow::Result<Config> {
        at_least_one("--nodes", self.nodes)?;
        at_least_one("--keys", self.keys)?;
        at_least_one("--test-count", self.test_count as usize)?;
        if let Some(c) = self.concurrency {
            at_least_one("--concurrency", c)?;
        }
        if self.workload != "register" {
            anyhow::bail!("--workload {:?}; expected register", self.workload);
        }
        seconds("--time-limit", self.time_limit)?;
        seconds("--op-timeout", self.op_timeout)?;
        seconds("--nemesis-interval", self.nemesis_interval)?;
        seconds("--check-time-limit", self.check_time_limit)?;
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= MAX_RATE) {
            anyhow::bail!(
                "--rate {}; expected operations per second above 0 and at most {MAX_RATE}",
                self.rate
            );
        }
        let mut kinds: Vec<FaultKind> = self
            .nemesis
            .iter()
            .filter_map(|k| match k {
                NemesisArg::Partition => Some(FaultKind::Partition),
                NemesisArg::Kill => Some(FaultKind::Kill),
                NemesisArg::Pause => Some(FaultKind::Pause),
                NemesisArg::Clock => Some(FaultKind::Clock),
                NemesisArg::None => None,
            })
            .collect();
        kinds.sort();
        kinds.dedup();
        Ok(Config {
            target: self.target.clone(),
            workload: self.workload.clone(),
            nodes: self.nodes,
            time_limit: self.time_limit,
            concurrency: self.concurrency.unwrap_or(2 * self.nodes),
            rate: self.rate,
            keys: self.keys,
            op_timeout: self.op_timeout,
            nemesis: kinds,
            nemesis_interval: self.nemesis_interval,
            seed,
            net: self.net,
            bugs: self.bugs.clone(),
            store: self.store.clone(),
            check_time_limit: self.check_time_limit,
            read_mode: self.read_mode,
        })
    }
}

/// The longest duration any option takes: a week.
pub const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// The highest `--rate`.
const MAX_RATE: f64 = 1e6;

/// A duration option: finite, above 0, at most [`MAX_SECONDS`].
fn seconds(option: &str, value: f64) -> anyhow::Result<()> {
    if value.is_finite() && value > 0.0 && value <= MAX_SECONDS {
        return Ok(());
    }
    anyhow::bail!(
        "{option} {value}; expected seconds above 0 and at most {MAX_SECONDS} (a week)"
    )
}

fn at_least_one(option: &str, value: usize) -> anyhow::Result<()> {
    if value == 0 {
        anyhow::bail!("{option} 0; expected at least 1");
    }
    Ok(())
}

/// A warning when the run ends before the nemesis's first step: it waits
/// one interval, and skips a step that would come within half an interval
/// of the end.
fn no_fault_warning(config: &Config) -> Option<String> {
    if config.nemesis.is_empty() || config.time_limit > 1.5 * config.nemesis_interval {
        return None;
    }
    Some(format!(
        "warning: --time-limit {} s is too short for --nemesis-interval {} s: no fault \
         will be injected (the first comes after one interval and needs half an \
         interval more before the end)",
        config.time_limit, config.nemesis_interval
    ))
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let target = Target::load(&args.target)?;
    // A random seed is kept short so that it is easy to type back.
    let first_seed = args
        .seed
        .unwrap_or_else(|| u64::from(rand::random::<u32>()));
    args.config(first_seed)?;
    store::init_tracing();

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let (interrupt_tx, interrupt) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_interrupt().await;
            eprintln!("\ninterrupted: stopping the nodes and saving the history");
            let _ = interrupt_tx.send(true);
        });

        let mut worst = Outcome::Valid;
        let mut runs = 0;
        for n in 0..args.test_count {
            let config = args.config(first_seed.wrapping_add(u64::from(n)))?;
            println!(
                "faultline test: {} with {} node{}, seed {}, faults: {}",
                target.name,
                config.nodes,
                if config.nodes == 1 { "" } else { "s" },
                config.seed,
                kinds_text(&config)
            );
            if let Some(warning) = no_fault_warning(&config) {
                eprintln!("{warning}");
            }
            let summary = runner::run_once(&config, &target, interrupt.clone()).await?;
            print_summary(&config, &summary);
            let Some(results) = &summary.results else {
                anyhow::bail!(
                    "interrupted; the history so far is in {}",
                    summary.dir.join("history.jsonl").display()
                );
            };
            worst = worst.max(outcome(results.verdict));
            runs += 1;
            if *interrupt.borrow() {
                break;
            }
        }
        if args.test_count > 1 {
            println!("\n{runs} runs: worst verdict {}", outcome_name(worst));
        }
        Ok(worst)
    })
}

/// Returns on Ctrl-C (SIGINT) or SIGTERM.
async fn wait_for_interrupt() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn kinds_text(config: &Config) -> String {
    if config.nemesis.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = config.nemesis.iter().map(|k| value_name(*k)).collect();
    names.join(", ")
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Valid => "VALID",
        Outcome::Invalid => "INVALID",
        Outcome::Unknown => "UNKNOWN",
    }
}

fn outcome(verdict: Verdict) -> Outcome {
    match verdict {
        Verdict::Valid => Outcome::Valid,
        Verdict::Invalid => Outcome::Invalid,
        Verdict::Unknown => Outcome::Unknown,
    }
}

fn print_summary(config: &Config, summary: &RunSummary) {
    println!();
    let Some(results) = &summary.results else {
        println!("run interrupted; stored in {}", summary.dir.display());
        return;
    };
    print_results(results);
    for left in &summary.left_out {
        println!("left out: {left}");
    }
    println!("network: {}; seed: {}", summary.net, config.seed);
    println!("stored in: {}", summary.dir.display());
    if let Some(report) = &summary.report {
        println!("report: {}", report.display());
    }
    println!("repeat with: {}", summary.command);
    println!("verdict: {}", results.verdict.to_string().to_uppercase());
}

fn print_results(results: &Results) {
    for (checker, verdict) in &results.checkers {
        println!("{checker:>18}: {verdict}");
    }
    for e in &results.errors {
        println!("  error: {e}");
    }
    let f = &results.figures;
    let mut by_f = Vec::new();
    for (name, kinds) in &f.ops {
        let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        by_f.push(format!("{name} ({})", parts.join(", ")));
    }
    println!(
        "        operations: {} client, {} nemesis",
        f.client_ops, f.nemesis_ops
    );
    println!("            by type: {}", by_f.join("; "));
    if let Some(a) = f.availability {
        println!("      availability: {:.1}% ok", a * 100.0);
    }
    if let (Some(e), Some(l)) = (f.elections, f.longest_without_leader_s) {
        println!("         elections: {e}; longest without a leader {l:.2} s");
    }
    if !f.crashed_nodes.is_empty() {
        println!("     nodes crashed: {}", f.crashed_nodes.join(", "));
    }
    if let Some(linear) = &results.linear {
        for key in linear.keys.iter().filter(|k| k.verdict != Verdict::Valid) {
            let name = key.key.as_deref().unwrap_or("(no key)");
            match (&key.counterexample, &key.reason) {
                (Some(c), _) => println!(
                    "  key {name} not linearizable: {} ({} operations)",
                    c.explanation,
                    c.ops.len() / 2
                ),
                (None, Some(reason)) => println!("  key {name} unknown: {reason}"),
                _ => println!("  key {name}: {}", key.verdict),
            }
        }
    }
    if let Some(election) = &results.election {
        for split in &election.violations {
            println!(
                "  term {} had {} leaders: {}",
                split.term,
                split.leaders.len(),
                split.leaders.join(", ")
            );
        }
        for r in &election.regressions {
            println!(
                "  {} went back from term {} to {}",
                r.node, r.before.observation.term, r.after.observation.term
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: Args,
    }

    fn parse(line: &str) -> Args {
        let words = std::iter::once("faultline-test").chain(line.split_whitespace());
        Wrap::try_parse_from(words).unwrap().args
    }

    #[test]
    fn stored_command_repeats_the_same_options() {
        let args =
            parse("--nodes 3 --nemesis kill,clock --bug stale-read --bug lease-read");
        let config = args.config(42).unwrap();
        let line = config.command();
        let tail = line.strip_prefix("faultline test ").unwrap();
        let again = parse(tail);
        assert_eq!(again.seed, Some(42));
        let again = again.config(42).unwrap();
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(&config).unwrap()
        );
    }

    #[test]
    fn defaults_are_five_nodes_two_clients_each_and_every_fault() {
        let config = parse("").config(1).unwrap();
        assert_eq!((config.nodes, config.concurrency), (5, 10));
        assert_eq!(config.time_limit, 30.0);
        assert_eq!(config.nemesis.len(), 4);
    }

    fn error_of(line: &str) -> String {
        let words = std::iter::once("faultline-test").chain(line.split_whitespace());
        match Wrap::try_parse_from(words) {
            Ok(wrap) => format!("{:#}", wrap.args.config(1).unwrap_err()),
            Err(e) => panic!("{line}: clap refused it: {e}"),
        }
    }

    #[test]
    fn non_finite_huge_or_negative_durations_are_refused() {
        for option in [
            "--time-limit",
            "--op-timeout",
            "--nemesis-interval",
            "--check-time-limit",
        ] {
            for bad in ["inf", "1e30", "-1", "0", "NaN"] {
                let err = error_of(&format!("{option} {bad}"));
                assert!(err.starts_with(option), "{option} {bad}: {err}");
                assert!(err.contains("expected seconds above 0"), "{err}");
            }
        }
    }

    #[test]
    fn zero_negative_or_nan_rate_is_refused() {
        for bad in ["0", "-5", "NaN", "inf"] {
            let err = error_of(&format!("--rate {bad}"));
            assert!(err.starts_with("--rate"), "{bad}: {err}");
        }
    }

    #[test]
    fn zero_keys_concurrency_or_test_count_is_refused() {
        for option in ["--keys", "--concurrency", "--test-count", "--nodes"] {
            let err = error_of(&format!("{option} 0"));
            assert_eq!(err, format!("{option} 0; expected at least 1"));
        }
    }

    #[test]
    fn short_run_warns_that_no_fault_will_be_injected() {
        let config = parse("--time-limit 4").config(1).unwrap();
        let warning = no_fault_warning(&config).unwrap();
        assert!(warning.contains("--time-limit 4 s"), "{warning}");
        assert!(warning.contains("no fault"), "{warning}");
        let long = parse("--time-limit 8").config(1).unwrap();
        assert_eq!(no_fault_warning(&long), None);
        let calm = parse("--time-limit 4 --nemesis none").config(1).unwrap();
        assert_eq!(no_fault_warning(&calm), None);
    }

    #[test]
    fn nemesis_none_means_no_faults() {
        assert!(parse("--nemesis none")
            .config(1)
            .unwrap()
            .nemesis
            .is_empty());
    }
}
