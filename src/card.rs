//! `offcard card`: the Verilated card as a vfio-user device process.

use crate::CardArgs;
use anyhow::{Context, Result};

pub fn run(a: &CardArgs, quiet: bool) -> Result<()> {
    let opts = offcard_sim::card_process::CardProcessOptions {
        socket: a.socket.clone(),
        net: a.net.clone(),
        pcap: a.pcap.clone(),
        seed: a.seed,
        max_clients: a.clients,
        quiet,
    };
    offcard_sim::card_process::serve(&opts).context("card process")
}
