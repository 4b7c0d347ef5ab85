//! `faultline check`.

use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`faultline check` is not built yet")
}
