//! What the `offcard` binary's management commands run. The binary parses
//! the command line (clap); this module has no parser of its own, only the
//! operations, their option structs and [`parse_op`] (an operation's words,
//! already split by the binary, into [`Params`] with the host's range checks):
//!
//! ```text
//! offcard serve  -> ServeOptions  -> run_serve
//! offcard mgmt   -> parse_op, MgmtOptions -> run_mgmt, format_output
//! offcard keygen -> KeygenOptions -> keygen
//! offcard bench mgmt -> crate::bench::run_bench
//! ```
//!
//! Defaults live under `$OFFCARD_HOME` (default `$HOME/.offcard`): `keys/`,
//! `authorized_keys`, `audit.log`, `mgmt.sock`.

use crate::auth::AuthorizedKeys;
use crate::backend::PrivilegedBackend;
use crate::client::RequestOptions;
use crate::host::{AuditLog, Host, HostConfig};
use crate::keys::{Identity, PublicIdentity, PUBLIC_FILE};
use crate::net;
use crate::protocol::{Op, OpOutput, Params};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Base directory for defaults.
pub fn offcard_home() -> PathBuf {
    if let Some(h) = std::env::var_os("OFFCARD_HOME") {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".offcard")
}

pub fn default_keys_dir() -> PathBuf {
    offcard_home().join("keys")
}
pub fn default_socket() -> PathBuf {
    offcard_home().join("mgmt.sock")
}
pub fn default_authorized() -> PathBuf {
    offcard_home().join("authorized_keys")
}
pub fn default_audit() -> PathBuf {
    offcard_home().join("audit.log")
}

/// Options of `serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub socket: PathBuf,
    pub keys: PathBuf,
    pub authorized: PathBuf,
    pub audit: PathBuf,
    pub window_secs: u64,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            socket: default_socket(),
            keys: default_keys_dir(),
            authorized: default_authorized(),
            audit: default_audit(),
            window_secs: 30,
        }
    }
}

/// Options of `mgmt`.
#[derive(Debug, Clone)]
pub struct MgmtOptions {
    pub socket: PathBuf,
    pub keys: PathBuf,
    /// The host's public identity file (default `<keys>/identity.pub`, i.e. a
    /// host and client sharing one key directory on a test machine).
    pub host_pub: Option<PathBuf>,
    pub seal_params: bool,
}

impl Default for MgmtOptions {
    fn default() -> Self {
        MgmtOptions {
            socket: default_socket(),
            keys: default_keys_dir(),
            host_pub: None,
            seal_params: false,
        }
    }
}

fn parse_u64(s: &str) -> Result<u64> {
    let r = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(&h.replace('_', ""), 16)
    } else if let Some(b) = s.strip_prefix("0b") {
        u64::from_str_radix(&b.replace('_', ""), 2)
    } else {
        s.replace('_', "").parse()
    };
    r.map_err(|_| anyhow!("{s:?} is not a number"))
}

fn parse_n<T: TryFrom<u64>>(s: &str, what: &str) -> Result<T> {
    T::try_from(parse_u64(s)?).map_err(|_| anyhow!("{what} {s:?} out of range"))
}

fn op_names() -> String {
    Op::ALL.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ")
}

/// `<op> [args]` (the words the binary collected) into [`Params`]; numbers
/// may be decimal, `0x` hex or `0b` binary.
pub fn parse_op(words: &[String]) -> Result<Params> {
    let (op, rest) = words
        .split_first()
        .ok_or_else(|| anyhow!("missing operation; operations: {}", op_names()))?;
    let op = Op::from_name(op)
        .ok_or_else(|| anyhow!("unknown operation {op:?}; operations: {}", op_names()))?;
    let need = |n: usize| -> Result<()> {
        if rest.len() != n {
            bail!("{op} takes {n} argument(s), got {}", rest.len());
        }
        Ok(())
    };
    let p = match op {
        Op::ReadCounters => {
            need(0)?;
            Params::ReadCounters
        }
        Op::ProgramWayMask => {
            need(2)?;
            Params::ProgramWayMask {
                tag: parse_n(&rest[0], "tag")?,
                mask: parse_u64(&rest[1])?,
            }
        }
        Op::ProgramPathTable => {
            need(2)?;
            let entries = rest[1]
                .split(',')
                .map(|e| parse_n::<u16>(e.trim(), "entry"))
                .collect::<Result<Vec<_>>>()?;
            Params::ProgramPathTable {
                tenant: parse_n(&rest[0], "tenant")?,
                entries,
            }
        }
        Op::ReadWriteRecords => {
            if rest.len() > 1 {
                bail!("read-write-records takes at most 1 argument");
            }
            Params::ReadWriteRecords {
                max: rest
                    .first()
                    .map(|s| parse_n(s, "max"))
                    .transpose()?
                    .unwrap_or(64),
            }
        }
        Op::ReadHostMemory => {
            need(2)?;
            Params::ReadHostMemory {
                addr: parse_u64(&rest[0])?,
                len: parse_n(&rest[1], "len")?,
            }
        }
        Op::ReadTagCounters => {
            need(1)?;
            Params::ReadTagCounters {
                tag: parse_n(&rest[0], "tag")?,
            }
        }
    };
    // Same range checks as the host applies.
    Params::decode(op, &p.encode()).map_err(|e| anyhow!("{e}"))
}

/// The authorized-keys line `keygen` prints for `key`: `ops` (comma-separated
/// names or `*`) and an optional `tags` value (`1,2,5` or `*`), checked with
/// the same parser `serve` uses, so a printed line always loads.
pub fn authorized_line(
    key: &[u8; 32],
    ops: &str,
    tags: Option<&str>,
    comment: &str,
) -> Result<String> {
    let mut list = Vec::new();
    for o in ops.split(',') {
        if o == "*" {
            list.extend(Op::ALL);
        } else {
            list.push(Op::from_name(o).ok_or_else(|| anyhow!("unknown operation {o:?}"))?);
        }
    }
    list.sort();
    list.dedup();
    let scope = match tags {
        Some(t) => crate::auth::TagScope::parse_value(t).context("--tags")?,
        None => crate::auth::TagScope::None,
    };
    let line = AuthorizedKeys::format_line_scoped(key, &list, &scope, comment);
    AuthorizedKeys::parse(&line).context("the authorized_keys line does not parse back")?;
    Ok(line)
}

/// `keygen`: writes a new identity to `dir`; refuses to overwrite unless `force`.
pub fn run_keygen(dir: &Path, force: bool) -> Result<PublicIdentity> {
    let id = Identity::generate();
    id.write_to(dir, force)?;
    Ok(id.public())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Builds the host from key, authorized-keys and audit files.
pub fn load_host(opts: &ServeOptions, backend: Arc<dyn PrivilegedBackend>) -> Result<Host> {
    let identity = Identity::load(&opts.keys).with_context(|| {
        format!(
            "loading host keys from {} (run `offcard keygen`)",
            opts.keys.display()
        )
    })?;
    let authorized = AuthorizedKeys::load(&opts.authorized)?;
    if authorized.is_empty() {
        eprintln!(
            "warning: {} authorizes no key; every request will be refused",
            opts.authorized.display()
        );
    }
    let audit = AuditLog::open(&opts.audit)
        .with_context(|| format!("opening audit log {}", opts.audit.display()))?;
    let config = HostConfig {
        max_skew_ms: opts.window_secs.saturating_mul(1000),
        ..HostConfig::default()
    };
    Ok(Host::new(identity, authorized, backend, config, audit))
}

/// Re-reads the authorized-keys file into `host`. On error every key is
/// revoked (fail closed) and the error returned.
pub fn reload_authorized(host: &Host, path: &Path) -> Result<usize> {
    match AuthorizedKeys::load(path) {
        Ok(a) => {
            let n = a.len();
            host.set_authorized(a);
            Ok(n)
        }
        Err(e) => {
            host.set_authorized(AuthorizedKeys::default());
            Err(e)
        }
    }
}

/// `serve`: runs the management host on a Unix socket until Ctrl-C
/// (SIGINT); SIGHUP reloads the authorized-keys file.
/// The `offcard` binary passes the simulated card; tests pass a
/// [`MemoryBackend`](crate::backend::MemoryBackend).
pub fn run_serve(opts: &ServeOptions, backend: Arc<dyn PrivilegedBackend>) -> Result<()> {
    let host = Arc::new(load_host(opts, backend)?);
    let rt = runtime()?;
    rt.block_on(async {
        let listener = net::bind(&opts.socket)?;
        eprintln!(
            "offcard mgmt: serving on {} (host ed25519 {}, audit {})",
            opts.socket.display(),
            hex::encode(host.identity().ed25519.verifying_key().to_bytes()),
            opts.audit.display()
        );
        // SIGHUP re-reads the authorized-keys file. A file that no longer
        // parses revokes every key (fail closed) until it is fixed.
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let (h2, path) = (host.clone(), opts.authorized.clone());
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match reload_authorized(&h2, &path) {
                    Ok(n) => eprintln!("offcard mgmt: reloaded {} ({n} keys)", path.display()),
                    Err(e) => eprintln!(
                        "offcard mgmt: {e:#}; refusing all requests until the file is fixed"
                    ),
                }
            }
        });
        let r = net::serve_until(listener, host, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        let _ = std::fs::remove_file(&opts.socket);
        r
    })
}

/// `mgmt`: one signed request; returns the opened, verified result.
pub fn run_mgmt(opts: &MgmtOptions, params: &Params) -> Result<OpOutput> {
    let me = Identity::load(&opts.keys)
        .with_context(|| format!("loading keys from {}", opts.keys.display()))?;
    let host_pub_path = opts
        .host_pub
        .clone()
        .unwrap_or_else(|| opts.keys.join(PUBLIC_FILE));
    let host = PublicIdentity::load(&host_pub_path)?;
    let ro = RequestOptions {
        seal_params_to: opts.seal_params.then_some(host.x25519),
        ..Default::default()
    };
    runtime()?.block_on(net::call(&opts.socket, &me, &host.ed25519, params, &ro))
}

/// Human-readable rendering of a result.
pub fn format_output(out: &OpOutput) -> String {
    match out {
        OpOutput::Counters(cs) => cs.iter().map(|(n, v)| format!("{n} {v}\n")).collect(),
        OpOutput::Done => "ok\n".into(),
        OpOutput::Bytes(b) => {
            let mut s = String::new();
            for (i, chunk) in b.chunks(16).enumerate() {
                s += &format!("{:08x}  {}\n", i * 16, hex::encode(chunk));
            }
            if b.is_empty() {
                s += "(no data)\n";
            }
            s
        }
        OpOutput::Failed(m) => format!("operation failed: {m}\n"),
    }
}

/// Options of `keygen`.
#[derive(Debug, Clone)]
pub struct KeygenOptions {
    /// Key directory.
    pub dir: PathBuf,
    /// Overwrite an existing key.
    pub force: bool,
    /// Print the existing key's line, generate nothing.
    pub show: bool,
    /// Operations of the printed authorized-keys line (`OP,OP,..` or `*`).
    pub ops: String,
    /// Tags of the printed line (`T,T,..` or `*`); none without it.
    pub tags: Option<String>,
}

impl Default for KeygenOptions {
    fn default() -> Self {
        KeygenOptions {
            dir: default_keys_dir(),
            force: false,
            show: false,
            ops: "read-counters".into(),
            tags: None,
        }
    }
}

/// `keygen`: writes a new identity to `o.dir` (or with `show` loads the
/// existing one) and returns the text to print: the public key and its
/// authorized-keys line. `ops` and `tags` are checked before anything is
/// generated, so a typo leaves no half-done key directory behind.
pub fn keygen(o: &KeygenOptions) -> Result<String> {
    let probe = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
    authorized_line(&probe.to_bytes(), &o.ops, o.tags.as_deref(), "")?;
    let mut out = String::new();
    let p = if o.show {
        if o.force {
            bail!("keygen --show prints the existing key's line; it takes no --force");
        }
        PublicIdentity::load(&o.dir.join(PUBLIC_FILE))?
    } else {
        let p = run_keygen(&o.dir, o.force)?;
        out += &format!("wrote keys to {}\n", o.dir.display());
        p
    };
    out += &p.to_text();
    out += "authorized_keys line (edit the ops; program-way-mask and read-tag-counters also need tags=<t>[,<t>...] or tags=*, none without it):\n";
    out += &authorized_line(&p.ed25519.to_bytes(), &o.ops, o.tags.as_deref(), "this key")?;
    out += "\n";
    Ok(out)
}
