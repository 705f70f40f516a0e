//! Command-line entry points, called by the `offcard` binary.
//!
//! ```text
//! serve [--socket P] [--keys DIR] [--authorized FILE] [--audit FILE] [--window SECS]
//! mgmt <op> [op args] [--socket P] [--keys DIR] [--host-pub FILE] [--seal-params]
//! keygen [--dir D] [--force] [--ops OPS] [--tags TAGS] [--show]
//! bench-mgmt [--json]          (also: bench mgmt [--json])
//! ```
//!
//! Defaults live under `$OFFCARD_HOME` (default `$HOME/.offcard`): `keys/`,
//! `authorized_keys`, `audit.log`, `mgmt.sock`.

use crate::auth::AuthorizedKeys;
use crate::backend::{MemoryBackend, PrivilegedBackend};
use crate::client::RequestOptions;
use crate::host::{AuditLog, Host, HostConfig};
use crate::keys::{Identity, PublicIdentity, PUBLIC_FILE};
use crate::net;
use crate::protocol::{Op, OpOutput, Params};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const USAGE: &str = "\
usage:
  offcard serve [--socket P] [--keys DIR] [--authorized FILE] [--audit FILE] [--window SECS]
  offcard mgmt <op> [args] [--socket P] [--keys DIR] [--host-pub FILE] [--seal-params]
      ops: read-counters
           program-way-mask <tag> <mask>
           program-path-table <tenant> <entry,entry,...>
           read-write-records [max]
           read-host-memory <addr> <len>
           read-tag-counters <tag>
  offcard keygen [--dir D] [--force] [--ops OP,OP,..|*] [--tags T,T,..|*] [--show]
      prints the key's authorized_keys line (--show: of the existing key, generates nothing);
      tag-scoped ops (program-way-mask, read-tag-counters) need tags= (none by default)
  offcard bench mgmt [--json]     (or: bench-mgmt)
defaults are under $OFFCARD_HOME (default ~/.offcard): keys/, authorized_keys, audit.log, mgmt.sock";

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

/// Simple flag parser: `--name value` options, `--flag` switches, positionals.
struct Args {
    positional: Vec<String>,
    opts: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(args: &[String], valued: &[&str], switches: &[&str]) -> Result<Args> {
        let mut positional = Vec::new();
        let mut opts = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (name, None),
                };
                if valued.contains(&name) {
                    let v = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .ok_or_else(|| anyhow!("--{name} needs a value"))?
                            .clone(),
                    };
                    opts.push((name.to_string(), Some(v)));
                } else if switches.contains(&name) && inline.is_none() {
                    opts.push((name.to_string(), None));
                } else {
                    bail!("unknown option --{name}\n{USAGE}");
                }
            } else {
                positional.push(a.clone());
            }
        }
        Ok(Args { positional, opts })
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
    fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| n == name)
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

/// Parses `<op> [args]` into [`Params`].
pub fn parse_op(words: &[String]) -> Result<Params> {
    let (op, rest) = words
        .split_first()
        .ok_or_else(|| anyhow!("missing operation\n{USAGE}"))?;
    let op = Op::from_name(op).ok_or_else(|| anyhow!("unknown operation {op:?}\n{USAGE}"))?;
    let need = |n: usize| -> Result<()> {
        if rest.len() != n {
            bail!("{op} takes {n} argument(s), got {}\n{USAGE}", rest.len());
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
/// The card glue passes its own backend; the CLI uses a [`MemoryBackend`].
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

const SUBCOMMANDS: [&str; 6] = ["serve", "mgmt", "keygen", "bench-mgmt", "bench", "help"];

/// Entry point: `args` are the words after the program name, starting with
/// the subcommand (a leading program name is tolerated and skipped).
pub fn cli_main(args: &[String]) -> Result<()> {
    cli_main_with_backend(args, &|| Ok(Arc::new(MemoryBackend::new())))
}

/// [`cli_main`] with the backend `serve` uses supplied by the caller (the
/// `offcard` binary passes the card).
pub fn cli_main_with_backend(
    args: &[String],
    backend: &dyn Fn() -> Result<Arc<dyn PrivilegedBackend>>,
) -> Result<()> {
    let args = match args {
        [first, second, ..]
            if !SUBCOMMANDS.contains(&first.as_str()) && SUBCOMMANDS.contains(&second.as_str()) =>
        {
            &args[1..]
        }
        _ => args,
    };
    let Some((cmd, rest)) = args.split_first() else {
        bail!("{USAGE}")
    };
    match cmd.as_str() {
        "serve" => {
            let a = Args::parse(
                rest,
                &["socket", "keys", "authorized", "audit", "window"],
                &[],
            )?;
            if !a.positional.is_empty() {
                bail!("serve takes no positional arguments\n{USAGE}");
            }
            let mut o = ServeOptions::default();
            if let Some(v) = a.get("socket") {
                o.socket = v.into();
            }
            if let Some(v) = a.get("keys") {
                o.keys = v.into();
            }
            if let Some(v) = a.get("authorized") {
                o.authorized = v.into();
            }
            if let Some(v) = a.get("audit") {
                o.audit = v.into();
            }
            if let Some(v) = a.get("window") {
                o.window_secs = parse_u64(v)?;
            }
            run_serve(&o, backend()?)
        }
        "mgmt" => {
            let a = Args::parse(rest, &["socket", "keys", "host-pub"], &["seal-params"])?;
            let params = parse_op(&a.positional)?;
            let mut o = MgmtOptions::default();
            if let Some(v) = a.get("socket") {
                o.socket = v.into();
            }
            if let Some(v) = a.get("keys") {
                o.keys = v.into();
            }
            o.host_pub = a.get("host-pub").map(PathBuf::from);
            o.seal_params = a.has("seal-params");
            let out = run_mgmt(&o, &params)?;
            print!("{}", format_output(&out));
            if let OpOutput::Failed(m) = out {
                bail!("operation failed on the host: {m}");
            }
            Ok(())
        }
        "keygen" => {
            let a = Args::parse(rest, &["dir", "ops", "tags"], &["force", "show"])?;
            if !a.positional.is_empty() {
                bail!("keygen takes no positional arguments\n{USAGE}");
            }
            let dir = a
                .get("dir")
                .map(PathBuf::from)
                .unwrap_or_else(default_keys_dir);
            let ops = a.get("ops").unwrap_or("read-counters");
            let tags = a.get("tags");
            // Check the line before generating anything, so a typo in --ops or
            // --tags leaves no half-done key directory behind.
            let probe = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
            authorized_line(&probe.to_bytes(), ops, tags, "")?;
            let p = if a.has("show") {
                if a.has("force") {
                    bail!("keygen --show prints the existing key's line; it takes no --force");
                }
                PublicIdentity::load(&dir.join(PUBLIC_FILE))?
            } else {
                let p = run_keygen(&dir, a.has("force"))?;
                println!("wrote keys to {}", dir.display());
                p
            };
            print!("{}", p.to_text());
            println!(
                "authorized_keys line (edit the ops; program-way-mask and read-tag-counters also need tags=<t>[,<t>...] or tags=*, none without it):"
            );
            println!(
                "{}",
                authorized_line(&p.ed25519.to_bytes(), ops, tags, "this key")?
            );
            Ok(())
        }
        "bench" | "bench-mgmt" => {
            let rest = if cmd == "bench" {
                match rest.split_first() {
                    Some((w, r)) if w == "mgmt" => r,
                    _ => bail!("usage: bench mgmt [--json]"),
                }
            } else {
                rest
            };
            let a = Args::parse(rest, &[], &["json"])?;
            let r = crate::bench::run_bench(crate::bench::BenchConfig::default())?;
            print!("{}", r.human());
            if a.has("json") {
                println!("{}", r.json());
            }
            Ok(())
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}
