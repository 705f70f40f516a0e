//! Request and result formats (see `docs/mgmt.md`).
//!
//! A request is a strict, length-prefixed big-endian binary message:
//!
//! ```text
//! magic "OFMQ" | version u8 (=1) | op u8 | timestamp_ms u64
//! | nonce_len u8 (16..=64) | nonce | caller_ed25519 [32] | reply_x25519 [32]
//! | params_mode u8 (0 plain, 1 sealed) | params_len u32 (<= MAX_PARAMS) | params
//! | signature [64]
//! ```
//!
//! The Ed25519 signature covers `REQUEST_SIG_CONTEXT || everything before it`.
//! The request digest is SHA-256 over the whole message, signature included.

use crate::wire::{derr, DecodeError, Reader, Writer};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

pub const REQUEST_MAGIC: &[u8; 4] = b"OFMQ";
pub const PROTOCOL_VERSION: u8 = 1;
/// Domain separation prefix of the request signature.
pub const REQUEST_SIG_CONTEXT: &[u8] = b"offcard-mgmt/request/v1\0";
/// Largest encoded request the host accepts (checked before decoding).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest params field (plain or sealed).
pub const MAX_PARAMS: usize = 60 * 1024;
pub const MIN_NONCE: usize = 16;
pub const MAX_NONCE: usize = 64;
/// Largest number of path-table entries in one request.
pub const MAX_PATH_ENTRIES: usize = 4096;
/// Largest number of write records one request may ask for.
pub const MAX_WRITE_RECORDS: u32 = 16 * 1024;
/// Largest host-memory range one request may read.
pub const MAX_MEMORY_READ: u32 = 256 * 1024;
/// Size of one write record in bytes (see ARCHITECTURE.md: IOVA, length, source, sequence).
pub const WRITE_RECORD_BYTES: usize = 16;

/// The privileged operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    ReadCounters = 1,
    ProgramWayMask = 2,
    ProgramPathTable = 3,
    ReadWriteRecords = 4,
    ReadHostMemory = 5,
    /// Per-tag cache counters (hits, misses, fills, evictions, occupancy) of one tag.
    ReadTagCounters = 6,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::ReadCounters,
        Op::ProgramWayMask,
        Op::ProgramPathTable,
        Op::ReadWriteRecords,
        Op::ReadHostMemory,
        Op::ReadTagCounters,
    ];
    /// Operations that act on one cache tag (tenant): the caller's key must
    /// also be authorized for that tag (`tags=` in the authorized-keys file).
    pub fn is_tag_scoped(self) -> bool {
        matches!(self, Op::ProgramWayMask | Op::ReadTagCounters)
    }
    pub fn code(self) -> u8 {
        self as u8
    }
    pub fn from_code(c: u8) -> Option<Op> {
        Op::ALL.iter().copied().find(|o| o.code() == c)
    }
    /// Name used on the command line and in the authorized-keys file.
    pub fn name(self) -> &'static str {
        match self {
            Op::ReadCounters => "read-counters",
            Op::ProgramWayMask => "program-way-mask",
            Op::ProgramPathTable => "program-path-table",
            Op::ReadWriteRecords => "read-write-records",
            Op::ReadHostMemory => "read-host-memory",
            Op::ReadTagCounters => "read-tag-counters",
        }
    }
    pub fn from_name(s: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|o| o.name() == s)
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of an operation (the op is implied by the variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Params {
    ReadCounters,
    ProgramWayMask { tag: u16, mask: u64 },
    ProgramPathTable { tenant: u16, entries: Vec<u16> },
    ReadWriteRecords { max: u32 },
    ReadHostMemory { addr: u64, len: u32 },
    ReadTagCounters { tag: u16 },
}

impl Params {
    /// The cache tag a tag-scoped operation acts on (`None` for the others).
    pub fn tag(&self) -> Option<u16> {
        match self {
            Params::ProgramWayMask { tag, .. } | Params::ReadTagCounters { tag } => Some(*tag),
            _ => None,
        }
    }

    pub fn op(&self) -> Op {
        match self {
            Params::ReadCounters => Op::ReadCounters,
            Params::ProgramWayMask { .. } => Op::ProgramWayMask,
            Params::ProgramPathTable { .. } => Op::ProgramPathTable,
            Params::ReadWriteRecords { .. } => Op::ReadWriteRecords,
            Params::ReadHostMemory { .. } => Op::ReadHostMemory,
            Params::ReadTagCounters { .. } => Op::ReadTagCounters,
        }
    }

    /// Strict binary encoding of the parameters (without the op code).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Params::ReadCounters => {}
            Params::ProgramWayMask { tag, mask } => {
                w.u16(*tag).u64(*mask);
            }
            Params::ProgramPathTable { tenant, entries } => {
                w.u16(*tenant).u16(entries.len() as u16);
                for e in entries {
                    w.u16(*e);
                }
            }
            Params::ReadWriteRecords { max } => {
                w.u32(*max);
            }
            Params::ReadHostMemory { addr, len } => {
                w.u64(*addr).u32(*len);
            }
            Params::ReadTagCounters { tag } => {
                w.u16(*tag);
            }
        }
        w.buf
    }

    /// Decodes and range-checks the parameters of `op`. Rejects trailing bytes.
    pub fn decode(op: Op, b: &[u8]) -> Result<Params, DecodeError> {
        let mut r = Reader::new(b);
        let p = match op {
            Op::ReadCounters => Params::ReadCounters,
            Op::ProgramWayMask => Params::ProgramWayMask {
                tag: r.u16("tag")?,
                mask: r.u64("mask")?,
            },
            Op::ProgramPathTable => {
                let tenant = r.u16("tenant")?;
                let n = r.u16("entry count")? as usize;
                if n > MAX_PATH_ENTRIES {
                    return derr(format!("{n} path entries > {MAX_PATH_ENTRIES}"));
                }
                if r.remaining() < 2 * n {
                    return derr("truncated path entries");
                }
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(r.u16("path entry")?);
                }
                Params::ProgramPathTable { tenant, entries }
            }
            Op::ReadWriteRecords => {
                let max = r.u32("max")?;
                if max > MAX_WRITE_RECORDS {
                    return derr(format!("max {max} > {MAX_WRITE_RECORDS} records"));
                }
                Params::ReadWriteRecords { max }
            }
            Op::ReadHostMemory => {
                let addr = r.u64("addr")?;
                let len = r.u32("len")?;
                if len > MAX_MEMORY_READ {
                    return derr(format!("len {len} > {MAX_MEMORY_READ}"));
                }
                if addr.checked_add(len as u64).is_none() {
                    return derr("address range wraps");
                }
                Params::ReadHostMemory { addr, len }
            }
            Op::ReadTagCounters => Params::ReadTagCounters { tag: r.u16("tag")? },
        };
        r.finish("params")?;
        Ok(p)
    }
}

/// How the params field is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsMode {
    /// Params in clear (still signed).
    Plain = 0,
    /// Params sealed with HPKE to the host's X25519 key (`enc || ciphertext`).
    Sealed = 1,
}

/// A decoded request. `params` is the raw field: plain encoding or a sealed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub timestamp_ms: u64,
    pub nonce: Vec<u8>,
    pub caller: [u8; 32],
    pub reply_key: [u8; 32],
    pub params_mode: ParamsMode,
    pub params: Vec<u8>,
    pub signature: [u8; 64],
}

impl Request {
    /// Encodes everything that the signature covers (all but the signature).
    pub fn encode_body(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(REQUEST_MAGIC)
            .u8(PROTOCOL_VERSION)
            .u8(self.op.code())
            .u64(self.timestamp_ms)
            .u8(self.nonce.len() as u8)
            .bytes(&self.nonce)
            .bytes(&self.caller)
            .bytes(&self.reply_key)
            .u8(self.params_mode as u8)
            .u32(self.params.len() as u32)
            .bytes(&self.params);
        w.buf
    }

    /// The message the signature is computed over.
    pub fn signed_message(body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(REQUEST_SIG_CONTEXT.len() + body.len());
        m.extend_from_slice(REQUEST_SIG_CONTEXT);
        m.extend_from_slice(body);
        m
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.encode_body();
        b.extend_from_slice(&self.signature);
        b
    }

    /// Signs the request in place with `key`, setting `caller` to its public key.
    pub fn sign(&mut self, key: &SigningKey) {
        self.caller = key.verifying_key().to_bytes();
        let sig: Signature = key.sign(&Self::signed_message(&self.encode_body()));
        self.signature = sig.to_bytes();
    }

    /// Strict decoder: size limits, field ranges, no trailing bytes. Does not
    /// check the signature (see [`Request::verify_signature`]).
    pub fn decode(b: &[u8]) -> Result<Request, DecodeError> {
        if b.len() > MAX_REQUEST_BYTES {
            return derr(format!(
                "request of {} bytes > {MAX_REQUEST_BYTES}",
                b.len()
            ));
        }
        let mut r = Reader::new(b);
        if r.bytes(4, "magic")? != REQUEST_MAGIC {
            return derr("bad magic");
        }
        let v = r.u8("version")?;
        if v != PROTOCOL_VERSION {
            return derr(format!("unsupported version {v}"));
        }
        let opc = r.u8("op")?;
        let op = match Op::from_code(opc) {
            Some(op) => op,
            None => return derr(format!("unknown op code {opc}")),
        };
        let timestamp_ms = r.u64("timestamp")?;
        let nl = r.u8("nonce length")? as usize;
        if !(MIN_NONCE..=MAX_NONCE).contains(&nl) {
            return derr(format!(
                "nonce length {nl} not in {MIN_NONCE}..={MAX_NONCE}"
            ));
        }
        let nonce = r.bytes(nl, "nonce")?.to_vec();
        let caller = r.array::<32>("caller key")?;
        let reply_key = r.array::<32>("reply key")?;
        let params_mode = match r.u8("params mode")? {
            0 => ParamsMode::Plain,
            1 => ParamsMode::Sealed,
            m => return derr(format!("unknown params mode {m}")),
        };
        let pl = r.u32("params length")? as usize;
        if pl > MAX_PARAMS {
            return derr(format!("params of {pl} bytes > {MAX_PARAMS}"));
        }
        let params = r.bytes(pl, "params")?.to_vec();
        let signature = r.array::<64>("signature")?;
        r.finish("signature")?;
        let req = Request {
            op,
            timestamp_ms,
            nonce,
            caller,
            reply_key,
            params_mode,
            params,
            signature,
        };
        // Plain params are validated at decode time so malformed ones never reach a check.
        if req.params_mode == ParamsMode::Plain {
            Params::decode(op, &req.params)?;
        }
        Ok(req)
    }

    /// Strict Ed25519 verification (`verify_strict`: rejects small-order keys
    /// and non-canonical signatures) against the embedded caller key.
    pub fn verify_signature(&self) -> Result<VerifyingKey, ed25519_dalek::SignatureError> {
        let vk = VerifyingKey::from_bytes(&self.caller)?;
        let sig = Signature::from_bytes(&self.signature);
        vk.verify_strict(&Self::signed_message(&self.encode_body()), &sig)?;
        Ok(vk)
    }
}

/// SHA-256 of the full encoded request (signature included).
pub fn request_digest(encoded: &[u8]) -> [u8; 32] {
    Sha256::digest(encoded).into()
}

/// Associated data binding a sealed result to its request: `digest || nonce`.
pub fn result_aad(digest: &[u8; 32], nonce: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(32 + nonce.len());
    a.extend_from_slice(digest);
    a.extend_from_slice(nonce);
    a
}

/// The sealed plaintext of a response: the operation's output or its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutput {
    Counters(Vec<(String, u64)>),
    /// A programming operation completed.
    Done,
    /// Raw bytes (write records, host memory).
    Bytes(Vec<u8>),
    /// The backend reported an error; the request itself was valid.
    Failed(String),
}

const OUT_COUNTERS: u8 = 0;
const OUT_DONE: u8 = 1;
const OUT_BYTES: u8 = 2;
const OUT_FAILED: u8 = 3;
const MAX_COUNTERS: usize = 4096;

impl OpOutput {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            OpOutput::Counters(cs) => {
                w.u8(OUT_COUNTERS).u32(cs.len() as u32);
                for (n, v) in cs {
                    let n = &n.as_bytes()[..n.len().min(u16::MAX as usize)];
                    w.u16(n.len() as u16).bytes(n).u64(*v);
                }
            }
            OpOutput::Done => {
                w.u8(OUT_DONE);
            }
            OpOutput::Bytes(b) => {
                w.u8(OUT_BYTES).u32(b.len() as u32).bytes(b);
            }
            OpOutput::Failed(m) => {
                w.u8(OUT_FAILED).u32(m.len() as u32).bytes(m.as_bytes());
            }
        }
        w.buf
    }

    pub fn decode(b: &[u8]) -> Result<OpOutput, DecodeError> {
        let mut r = Reader::new(b);
        let out = match r.u8("output kind")? {
            OUT_COUNTERS => {
                let n = r.u32("counter count")? as usize;
                if n > MAX_COUNTERS || n * 10 > r.remaining() {
                    return derr("bad counter count");
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let l = r.u16("name length")? as usize;
                    let name = std::str::from_utf8(r.bytes(l, "name")?)
                        .map_err(|_| DecodeError("counter name not UTF-8".into()))?;
                    v.push((name.to_string(), r.u64("counter")?));
                }
                OpOutput::Counters(v)
            }
            OUT_DONE => OpOutput::Done,
            OUT_BYTES => {
                let l = r.u32("bytes length")? as usize;
                OpOutput::Bytes(r.bytes(l, "bytes")?.to_vec())
            }
            OUT_FAILED => {
                let l = r.u32("message length")? as usize;
                let m = std::str::from_utf8(r.bytes(l, "message")?)
                    .map_err(|_| DecodeError("message not UTF-8".into()))?;
                OpOutput::Failed(m.to_string())
            }
            k => return derr(format!("unknown output kind {k}")),
        };
        r.finish("output")?;
        Ok(out)
    }
}
