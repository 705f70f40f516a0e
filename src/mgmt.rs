//! `offcard keygen`, `serve` and `mgmt`: the secured management API
//! (docs/mgmt.md) through the `offcard-mgmt` library; `serve` runs the
//! operations on the simulated card (`card_backend`).

use crate::card_backend::CardBackend;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use offcard_mgmt::commands::{self as lib, KeygenOptions, MgmtOptions, ServeOptions};
use offcard_mgmt::protocol::OpOutput;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Key directory (default: $OFFCARD_HOME/keys, $OFFCARD_HOME defaults to ~/.offcard)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Overwrite an existing key
    #[arg(long, conflicts_with = "show")]
    force: bool,
    /// Operations for the printed authorized_keys line: OP,OP,.. or *
    #[arg(long, value_name = "OPS", default_value = "read-counters")]
    ops: String,
    /// Tags (tenants) for tag-scoped operations: T,T,.. or * (none without it)
    #[arg(long, value_name = "TAGS")]
    tags: Option<String>,
    /// Print the existing key's line; generate nothing
    #[arg(long)]
    show: bool,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Unix socket to serve on (default: $OFFCARD_HOME/mgmt.sock)
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The host's key directory (default: $OFFCARD_HOME/keys)
    #[arg(long, value_name = "DIR")]
    keys: Option<PathBuf>,
    /// Authorized keys file (default: $OFFCARD_HOME/authorized_keys)
    #[arg(long, value_name = "FILE")]
    authorized: Option<PathBuf>,
    /// Audit log (default: $OFFCARD_HOME/audit.log)
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Freshness window: requests whose timestamp is further than SECS from now are refused
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    window: u64,
}

#[derive(Args, Debug)]
pub struct MgmtArgs {
    #[command(subcommand)]
    op: MgmtOp,
    /// The server's socket (default: $OFFCARD_HOME/mgmt.sock)
    #[arg(long, value_name = "PATH", global = true)]
    socket: Option<PathBuf>,
    /// The caller's key directory (default: $OFFCARD_HOME/keys)
    #[arg(long, value_name = "DIR", global = true)]
    keys: Option<PathBuf>,
    /// The host's public identity file (default: <keys>/identity.pub)
    #[arg(long, value_name = "FILE", global = true)]
    host_pub: Option<PathBuf>,
    /// Seal the request's parameters to the host's X25519 key (HPKE)
    #[arg(long, global = true)]
    seal_params: bool,
}

/// The operations; numbers may be decimal, 0x hex or 0b binary.
#[derive(Subcommand, Debug)]
enum MgmtOp {
    /// The card's global counters
    ReadCounters,
    /// Program the cache ways a tag may use
    ProgramWayMask { tag: String, mask: String },
    /// Program a tenant's path table (outer UDP source ports)
    ProgramPathTable {
        tenant: String,
        /// Comma-separated source ports, e.g. 50001,50002
        entries: String,
    },
    /// The DMA write records produced since the last read
    ReadWriteRecords { max: Option<String> },
    /// Read host memory
    ReadHostMemory { addr: String, len: String },
    /// One tag's cache counters (hits, misses, fills, evictions, occupancy, way mask)
    ReadTagCounters { tag: String },
}

impl MgmtOp {
    /// The words the library's parser takes (it applies the host's range checks).
    fn words(&self) -> Vec<String> {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            MgmtOp::ReadCounters => w(&["read-counters"]),
            MgmtOp::ProgramWayMask { tag, mask } => w(&["program-way-mask", tag, mask]),
            MgmtOp::ProgramPathTable { tenant, entries } => w(&["program-path-table", tenant, entries]),
            MgmtOp::ReadWriteRecords { max } => {
                let mut v = w(&["read-write-records"]);
                v.extend(max.clone());
                v
            }
            MgmtOp::ReadHostMemory { addr, len } => w(&["read-host-memory", addr, len]),
            MgmtOp::ReadTagCounters { tag } => w(&["read-tag-counters", tag]),
        }
    }
}

pub fn keygen(a: &KeygenArgs) -> Result<()> {
    let o = KeygenOptions {
        dir: a.dir.clone().unwrap_or_else(lib::default_keys_dir),
        force: a.force,
        show: a.show,
        ops: a.ops.clone(),
        tags: a.tags.clone(),
    };
    print!("{}", lib::keygen(&o)?);
    Ok(())
}

pub fn serve(a: &ServeArgs) -> Result<()> {
    let d = ServeOptions::default();
    let o = ServeOptions {
        socket: a.socket.clone().unwrap_or(d.socket),
        keys: a.keys.clone().unwrap_or(d.keys),
        authorized: a.authorized.clone().unwrap_or(d.authorized),
        audit: a.audit.clone().unwrap_or(d.audit),
        window_secs: a.window,
    };
    let backend: Arc<dyn offcard_mgmt::backend::PrivilegedBackend> = Arc::new(CardBackend::simulated()?);
    lib::run_serve(&o, backend)
}

pub fn mgmt(a: &MgmtArgs) -> Result<()> {
    let params = lib::parse_op(&a.op.words())?;
    let d = MgmtOptions::default();
    let o = MgmtOptions {
        socket: a.socket.clone().unwrap_or(d.socket),
        keys: a.keys.clone().unwrap_or(d.keys),
        host_pub: a.host_pub.clone(),
        seal_params: a.seal_params,
    };
    let out = lib::run_mgmt(&o, &params)?;
    print!("{}", lib::format_output(&out));
    if let OpOutput::Failed(m) = out {
        bail!("operation failed on the host: {m}");
    }
    Ok(())
}
