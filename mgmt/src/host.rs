//! The host side: every check in order, then the operation, then the sealed,
//! signed response. See `docs/mgmt.md` for the order and its rationale.

use crate::auth::{AuthorizedKeys, TagScope};
use crate::backend::PrivilegedBackend;
use crate::envelope::{seal_envelope, ResponsePayload, Status};
use crate::keys::Identity;
pub use crate::protocol::{now_ms, params_aad};
use crate::protocol::{
    request_digest, result_aad, Op, OpOutput, Params, ParamsMode, Request, MAX_REQUEST_BYTES,
};
use crate::replay::{NonceCache, NonceCheck};
use crate::seal::{self, Sealer};
use base64::Engine;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// Host policy knobs.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Accepted clock difference, both directions (freshness window).
    pub max_skew_ms: u64,
    /// Bound on remembered nonces; when full of live nonces, requests are refused.
    pub nonce_capacity: usize,
    /// Requests larger than this are refused before decoding.
    pub max_request_bytes: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            max_skew_ms: 30_000,
            nonce_capacity: 100_000,
            max_request_bytes: MAX_REQUEST_BYTES,
        }
    }
}

/// Why a request was refused. Nothing ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    Oversized {
        len: usize,
        max: usize,
    },
    Decode(String),
    BadSignature,
    Unauthorized {
        op: Op,
    },
    /// The key may call this tag-scoped op, but not on this tag (or has no
    /// `tags=` field at all: deny by default).
    TagNotAuthorized {
        op: Op,
        /// `None` when the key has no tag access and sealed params were not opened.
        tag: Option<u16>,
    },
    Stale {
        timestamp_ms: u64,
        now_ms: u64,
        window_ms: u64,
    },
    Replay,
    ReplayCacheFull,
    Params(String),
    ReplyKey,
    Audit(String),
}

impl Reject {
    /// Machine-readable code carried in the response envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Reject::Oversized { .. } => "oversized",
            Reject::Decode(_) => "malformed",
            Reject::BadSignature => "bad-signature",
            Reject::Unauthorized { .. } => "unauthorized",
            Reject::TagNotAuthorized { .. } => "tag-not-authorized",
            Reject::Stale { .. } => "stale",
            Reject::Replay => "replay",
            Reject::ReplayCacheFull => "replay-cache-full",
            Reject::Params(_) => "bad-params",
            Reject::ReplyKey => "bad-reply-key",
            Reject::Audit(_) => "audit-failure",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Oversized { len, max } => write!(f, "request of {len} bytes exceeds the limit of {max}"),
            Reject::Decode(m) => write!(f, "{m}"),
            Reject::BadSignature => write!(f, "signature verification failed (missing, wrong key or altered request)"),
            Reject::Unauthorized { op } => write!(f, "caller key is not authorized for {op}"),
            // The tag is left out on purpose: rejections travel unsealed, and
            // the tag may have come in sealed params. The audit line has it.
            Reject::TagNotAuthorized { op, .. } => write!(
                f,
                "caller key is not authorized for the requested tag of {op} (its authorized-keys line needs tags= covering it)"
            ),
            Reject::Stale { timestamp_ms, now_ms, window_ms } => write!(
                f,
                "request timestamp {timestamp_ms} ms is outside the freshness window (host time {now_ms} ms, window ±{window_ms} ms)"
            ),
            Reject::Replay => write!(f, "nonce already used (replayed request)"),
            Reject::ReplayCacheFull => write!(f, "replay cache full, try again later"),
            Reject::Params(m) => write!(f, "sealed params: {m}"),
            Reject::ReplyKey => write!(f, "reply key unusable (small-order X25519 point)"),
            Reject::Audit(m) => write!(f, "audit log unavailable: {m}"),
        }
    }
}

impl Reject {
    /// The text of the audit line: the message, plus details that must not
    /// travel in the unsealed rejection (the tag of a tag rejection).
    pub fn audit_text(&self) -> String {
        match self {
            Reject::TagNotAuthorized { tag: Some(tag), .. } => format!("{self} [tag {tag}]"),
            Reject::TagNotAuthorized { tag: None, .. } => {
                format!("{self} [key has no tags= field]")
            }
            _ => self.to_string(),
        }
    }
}

impl std::error::Error for Reject {}

/// What happened to a request (for callers of [`Host::process`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The operation ran and its backend failed (the error is sealed to the caller).
    Failed(String),
    Rejected(Reject),
}

/// Append-only audit sink: one line per event.
pub enum AuditLog {
    File(Mutex<std::fs::File>),
    Memory(Mutex<Vec<String>>),
    Discard,
}

impl AuditLog {
    /// Opens `path` for appending (created 0600).
    pub fn open(path: &Path) -> anyhow::Result<AuditLog> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(AuditLog::File(Mutex::new(f)))
    }
    pub fn memory() -> AuditLog {
        AuditLog::Memory(Mutex::new(Vec::new()))
    }
    /// Lines written so far (memory sink only).
    pub fn lines(&self) -> Vec<String> {
        match self {
            AuditLog::Memory(m) => m.lock().unwrap().clone(),
            _ => Vec::new(),
        }
    }
    fn write(&self, line: &str) -> std::io::Result<()> {
        match self {
            AuditLog::File(f) => {
                let mut f = f.lock().unwrap();
                f.write_all(format!("{line}\n").as_bytes())?;
                f.flush()
            }
            AuditLog::Memory(m) => {
                m.lock().unwrap().push(line.to_string());
                Ok(())
            }
            AuditLog::Discard => Ok(()),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a Unix time in milliseconds.
pub fn format_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ms % 1000
    )
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The management host: keys, policy, replay state, audit, backend.
pub struct Host {
    identity: Identity,
    authorized: RwLock<AuthorizedKeys>,
    backend: Arc<dyn PrivilegedBackend>,
    config: HostConfig,
    nonces: Mutex<NonceCache>,
    audit: AuditLog,
}

struct Checked {
    req: Request,
    params: Params,
    digest: [u8; 32],
    sealer: Sealer,
}

impl Host {
    pub fn new(
        identity: Identity,
        authorized: AuthorizedKeys,
        backend: Arc<dyn PrivilegedBackend>,
        config: HostConfig,
        audit: AuditLog,
    ) -> Host {
        let nonces = Mutex::new(NonceCache::new(config.nonce_capacity));
        Host {
            identity,
            authorized: RwLock::new(authorized),
            backend,
            config,
            nonces,
            audit,
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Replaces the authorized keys (e.g. after the file was edited).
    pub fn set_authorized(&self, a: AuthorizedKeys) {
        *self.authorized.write().unwrap() = a;
    }

    fn audit_line(
        &self,
        digest: Option<&[u8; 32]>,
        caller: Option<&[u8; 32]>,
        op: Option<Op>,
        outcome: &str,
    ) -> std::io::Result<()> {
        let line = format!(
            "{} digest={} caller={} op={} outcome={}",
            format_utc(now_ms()),
            digest.map(hex::encode).unwrap_or_else(|| "-".into()),
            caller
                .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
                .unwrap_or_else(|| "-".into()),
            op.map(|o| o.name()).unwrap_or("-"),
            sanitize(outcome)
        );
        self.audit.write(&line)
    }

    /// All checks, in order. Nothing here has a side effect on the backend.
    fn check(
        &self,
        bytes: &[u8],
        digest: &[u8; 32],
        seen: &mut Option<Request>,
    ) -> Result<Checked, Reject> {
        // 1. size
        let max = self.config.max_request_bytes.min(MAX_REQUEST_BYTES);
        if bytes.len() > max {
            return Err(Reject::Oversized {
                len: bytes.len(),
                max,
            });
        }
        // 2. strict decode
        let req = Request::decode(bytes).map_err(|e| Reject::Decode(e.to_string()))?;
        *seen = Some(req.clone());
        // 3. strict signature
        req.verify_signature().map_err(|_| Reject::BadSignature)?;
        // 4. authorization: the op, and for tag-scoped ops the tag. Plain
        // params are checked here, before freshness and replay, so a key
        // cannot use a nonce-cache slot on a tag it may not touch; sealed
        // params are checked once opened (7b).
        {
            let auth = self.authorized.read().unwrap();
            if !auth.is_allowed(&req.caller, req.op) {
                return Err(Reject::Unauthorized { op: req.op });
            }
            if req.op.is_tag_scoped() {
                match req.params_mode {
                    ParamsMode::Plain => {
                        let p = Params::decode(req.op, &req.params)
                            .map_err(|e| Reject::Decode(e.to_string()))?;
                        Self::check_tag(&auth, &req.caller, &p)?;
                    }
                    // No tag access at all: no need to open the params to refuse.
                    ParamsMode::Sealed => {
                        if auth.tag_scope(&req.caller) == Some(&TagScope::None) {
                            return Err(Reject::TagNotAuthorized {
                                op: req.op,
                                tag: None,
                            });
                        }
                    }
                }
            }
        }
        // 5. freshness
        let now = now_ms();
        let window = self.config.max_skew_ms;
        if req.timestamp_ms.abs_diff(now) > window {
            return Err(Reject::Stale {
                timestamp_ms: req.timestamp_ms,
                now_ms: now,
                window_ms: window,
            });
        }
        // 6. replay (a nonce stays remembered while its request could still be fresh)
        let expires = req.timestamp_ms.saturating_add(window).saturating_add(1);
        match self
            .nonces
            .lock()
            .unwrap()
            .check_and_insert(&req.nonce, now, expires)
        {
            NonceCheck::Fresh => {}
            NonceCheck::Replayed => return Err(Reject::Replay),
            NonceCheck::Full => return Err(Reject::ReplayCacheFull),
        }
        // 7. params (open if sealed to the host)
        let params = match req.params_mode {
            ParamsMode::Plain => {
                Params::decode(req.op, &req.params).map_err(|e| Reject::Decode(e.to_string()))?
            }
            ParamsMode::Sealed => {
                let aad = params_aad(req.op, &req.caller, &req.nonce);
                let pt = seal::open(
                    &self.identity.x25519.secret,
                    seal::PARAMS_INFO,
                    &aad,
                    &req.params,
                )
                .map_err(|e| Reject::Params(e.to_string()))?;
                Params::decode(req.op, &pt).map_err(|e| Reject::Params(e.to_string()))?
            }
        };
        // 7b. the tag of a tag-scoped op (again for plain params: the file may
        // have been reloaded meanwhile, and this is the params that will run)
        Self::check_tag(&self.authorized.read().unwrap(), &req.caller, &params)?;
        // 8. the reply key must be usable before anything runs
        let sealer = Sealer::new(&req.reply_key, seal::RESULT_INFO, &mut rand_core::OsRng)
            .map_err(|_| Reject::ReplyKey)?;
        Ok(Checked {
            req,
            params,
            digest: *digest,
            sealer,
        })
    }

    /// A tag-scoped op must name a tag in the caller's scope.
    fn check_tag(auth: &AuthorizedKeys, caller: &[u8; 32], p: &Params) -> Result<(), Reject> {
        match p.tag() {
            Some(tag) if !auth.is_tag_allowed(caller, tag) => Err(Reject::TagNotAuthorized {
                op: p.op(),
                tag: Some(tag),
            }),
            _ => Ok(()),
        }
    }

    fn run(&self, p: &Params) -> OpOutput {
        let b = &self.backend;
        let r = match p {
            Params::ReadCounters => b.read_counters().map(OpOutput::Counters),
            Params::ProgramWayMask { tag, mask } => {
                b.program_way_mask(*tag, *mask).map(|_| OpOutput::Done)
            }
            Params::ProgramPathTable { tenant, entries } => b
                .program_path_table(*tenant, entries.clone())
                .map(|_| OpOutput::Done),
            Params::ReadWriteRecords { max } => {
                b.read_write_records(*max as usize).map(OpOutput::Bytes)
            }
            Params::ReadTagCounters { tag } => b.read_tag_counters(*tag).map(OpOutput::Counters),
            Params::ReadHostMemory { addr, len } => b.read_host_memory(*addr, *len).and_then(|v| {
                anyhow::ensure!(
                    v.len() == *len as usize,
                    "backend returned {} bytes, {} asked",
                    v.len(),
                    len
                );
                Ok(OpOutput::Bytes(v))
            }),
        };
        r.unwrap_or_else(|e| OpOutput::Failed(format!("{e:#}")))
    }

    /// A rejection envelope for a frame that was never read (too large).
    pub fn reject_unread(&self, len: usize, max: usize) -> Vec<u8> {
        let r = Reject::Oversized { len, max };
        let _ = self.audit_line(None, None, None, &format!("rejected:{}: {r}", r.code()));
        self.rejection(&r, Vec::new(), None)
    }

    fn rejection(&self, r: &Reject, digest: Vec<u8>, req: Option<&Request>) -> Vec<u8> {
        let payload = ResponsePayload {
            timestamp_ms: now_ms(),
            request_digest: digest,
            nonce: req.map(|q| q.nonce.clone()).unwrap_or_default(),
            public_key: req.map(|q| q.reply_key.to_vec()).unwrap_or_default(),
            status: Status::Rejected {
                code: r.code().to_string(),
                message: r.to_string(),
            },
        };
        seal_envelope(&self.identity.ed25519, &payload)
    }

    /// Processes one request; returns the response envelope and what happened.
    pub fn process(&self, bytes: &[u8]) -> (Vec<u8>, Outcome) {
        let digest = request_digest(bytes);
        let mut seen = None;
        let checked = self.check(bytes, &digest, &mut seen).and_then(|c| {
            self.audit_line(
                Some(&digest),
                Some(&c.req.caller),
                Some(c.req.op),
                "accepted",
            )
            .map_err(|e| Reject::Audit(e.to_string()))?;
            Ok(c)
        });
        let c = match checked {
            Ok(c) => c,
            Err(r) => {
                let q = seen.as_ref();
                let _ = self.audit_line(
                    Some(&digest),
                    q.map(|q| &q.caller),
                    q.map(|q| q.op),
                    &format!("rejected:{}: {}", r.code(), r.audit_text()),
                );
                return (self.rejection(&r, digest.to_vec(), q), Outcome::Rejected(r));
            }
        };
        let out = self.run(&c.params);
        let outcome = match &out {
            OpOutput::Failed(m) => Outcome::Failed(m.clone()),
            _ => Outcome::Ok,
        };
        let audit_outcome = match &outcome {
            Outcome::Failed(m) => format!("failed: {m}"),
            _ => "ok".to_string(),
        };
        let _ = self.audit_line(
            Some(&c.digest),
            Some(&c.req.caller),
            Some(c.req.op),
            &audit_outcome,
        );
        let aad = result_aad(&c.digest, &c.req.nonce);
        let sealed = c
            .sealer
            .seal(&out.encode(), &aad)
            .expect("ChaCha20Poly1305 seal of a bounded message cannot fail");
        let payload = ResponsePayload {
            timestamp_ms: now_ms(),
            request_digest: c.digest.to_vec(),
            nonce: c.req.nonce.clone(),
            public_key: c.req.reply_key.to_vec(),
            status: Status::Ok { sealed },
        };
        (seal_envelope(&self.identity.ed25519, &payload), outcome)
    }

    /// Processes one request and returns the response envelope.
    pub fn handle(&self, bytes: &[u8]) -> Vec<u8> {
        self.process(bytes).0
    }
}
