//! `faultline serve`.

use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`faultline serve` is not built yet")
}
