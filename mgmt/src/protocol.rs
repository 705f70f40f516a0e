//! Request and result formats (see `docs/mgmt.md`).
//!
//! A request is a tagged COSE_Sign1 (RFC 9052, tag 18), like the response:
//!
//! ```text
//! 18([ protected: bstr .cbor {1: -8 (EdDSA), 4: caller Ed25519 key (32 bytes)},
//!      unprotected: {},
//!      payload: bstr .cbor {"module_id": "offcard-mgmt", "version": 2,
//!                           "op": "program-way-mask", "timestamp": ms, "nonce": bstr (16..=64),
//!                           "public_key": bstr (the caller's X25519 reply key),
//!                           "params": {"tag": 7, "mask": 240}      ; in clear, or instead
//!                           "sealed_params": bstr },               ; HPKE-sealed params map
//!      signature: bstr (64) ])
//! ```
//!
//! The signature is COSE's (Sig_structure "Signature1", empty external AAD)
//! by the key named in `kid`. Any COSE library can build a request; the host
//! decodes strictly: the payload's keys in the order above, CBOR in its
//! shortest form (what every encoder writes for these types), and the
//! request must re-encode to exactly the bytes received.
//! The request digest is SHA-256 over the whole message, signature included.

use ciborium::value::{Integer, Value};
use coset::{iana, CoseSign1, CoseSign1Builder, HeaderBuilder, ProtectedHeader, TaggedCborSerializable};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;

/// A decoding failure, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

fn derr<T>(what: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(what.into()))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn uint(v: u64) -> Value {
    Value::Integer(v.into())
}

fn to_cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).expect("CBOR to a Vec cannot fail");
    out
}

fn from_cbor(b: &[u8], what: &str) -> Result<Value, DecodeError> {
    let v: Value = ciborium::de::from_reader(b).map_err(|_| DecodeError(format!("{what}: not CBOR")))?;
    // One item, shortest form: anything else does not re-encode to the same bytes.
    if to_cbor(&v) != b {
        return derr(format!("{what}: not in canonical form (or trailing bytes)"));
    }
    Ok(v)
}

/// The entries of a map whose keys must be exactly `keys`, in that order.
fn fields<'a>(v: &'a Value, keys: &[&str], what: &str) -> Result<Vec<&'a Value>, DecodeError> {
    let Value::Map(m) = v else { return derr(format!("{what}: not a map")) };
    if m.len() != keys.len() || m.iter().zip(keys).any(|((k, _), want)| k.as_text() != Some(want)) {
        return derr(format!("{what}: fields must be exactly {keys:?} in that order"));
    }
    Ok(m.iter().map(|(_, v)| v).collect())
}

fn get_uint<T: TryFrom<u64>>(v: &Value, what: &str) -> Result<T, DecodeError> {
    v.as_integer()
        .and_then(|i: Integer| u64::try_from(i).ok())
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| DecodeError(format!("{what}: not an unsigned integer in range")))
}

fn get_bytes<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<u8>, DecodeError> {
    v.as_bytes().ok_or_else(|| DecodeError(format!("{what}: not a byte string")))
}

fn get_text<'a>(v: &'a Value, what: &str) -> Result<&'a str, DecodeError> {
    v.as_text().ok_or_else(|| DecodeError(format!("{what}: not a text string")))
}

/// `module_id` of a request's payload (the same as the response's).
pub const MODULE_ID: &str = "offcard-mgmt";
/// `version` of a request's payload (1 was the retired binary format).
pub const PROTOCOL_VERSION: u64 = 2;
/// Largest message (request or response) on the socket; a larger frame is
/// refused before it is read.
pub const MAX_MESSAGE: usize = 1 << 20;
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

    /// The parameters as a CBOR map (the op is the request's `op`).
    pub fn to_value(&self) -> Value {
        let m = |v: Vec<(&str, Value)>| Value::Map(v.into_iter().map(|(k, v)| (text(k), v)).collect());
        match self {
            Params::ReadCounters => m(vec![]),
            Params::ProgramWayMask { tag, mask } => m(vec![("tag", uint(*tag as u64)), ("mask", uint(*mask))]),
            Params::ProgramPathTable { tenant, entries } => m(vec![
                ("tenant", uint(*tenant as u64)),
                ("entries", Value::Array(entries.iter().map(|e| uint(*e as u64)).collect())),
            ]),
            Params::ReadWriteRecords { max } => m(vec![("max", uint(*max as u64))]),
            Params::ReadHostMemory { addr, len } => m(vec![("addr", uint(*addr)), ("len", uint(*len as u64))]),
            Params::ReadTagCounters { tag } => m(vec![("tag", uint(*tag as u64))]),
        }
    }

    /// The CBOR encoding of [`Params::to_value`] (what is sealed, or carried in clear).
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(&self.to_value())
    }

    /// Decodes and range-checks the parameters of `op` from a CBOR map.
    pub fn from_value(op: Op, v: &Value) -> Result<Params, DecodeError> {
        let p = match op {
            Op::ReadCounters => {
                fields(v, &[], "params")?;
                Params::ReadCounters
            }
            Op::ProgramWayMask => {
                let f = fields(v, &["tag", "mask"], "params")?;
                Params::ProgramWayMask { tag: get_uint(f[0], "tag")?, mask: get_uint(f[1], "mask")? }
            }
            Op::ProgramPathTable => {
                let f = fields(v, &["tenant", "entries"], "params")?;
                let Value::Array(a) = f[1] else { return derr("entries: not an array") };
                if a.len() > MAX_PATH_ENTRIES {
                    return derr(format!("{} path entries > {MAX_PATH_ENTRIES}", a.len()));
                }
                let entries = a.iter().map(|e| get_uint(e, "path entry")).collect::<Result<Vec<u16>, _>>()?;
                Params::ProgramPathTable { tenant: get_uint(f[0], "tenant")?, entries }
            }
            Op::ReadWriteRecords => {
                let f = fields(v, &["max"], "params")?;
                let max: u32 = get_uint(f[0], "max")?;
                if max > MAX_WRITE_RECORDS {
                    return derr(format!("max {max} > {MAX_WRITE_RECORDS} records"));
                }
                Params::ReadWriteRecords { max }
            }
            Op::ReadHostMemory => {
                let f = fields(v, &["addr", "len"], "params")?;
                let addr: u64 = get_uint(f[0], "addr")?;
                let len: u32 = get_uint(f[1], "len")?;
                if len > MAX_MEMORY_READ {
                    return derr(format!("len {len} > {MAX_MEMORY_READ}"));
                }
                if addr.checked_add(len as u64).is_none() {
                    return derr("address range wraps");
                }
                Params::ReadHostMemory { addr, len }
            }
            Op::ReadTagCounters => {
                let f = fields(v, &["tag"], "params")?;
                Params::ReadTagCounters { tag: get_uint(f[0], "tag")? }
            }
        };
        Ok(p)
    }

    /// Decodes and range-checks the parameters of `op` from their CBOR
    /// encoding (canonical, nothing after the map).
    pub fn decode(op: Op, b: &[u8]) -> Result<Params, DecodeError> {
        Params::from_value(op, &from_cbor(b, "params")?)
    }
}

/// How the params are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsMode {
    /// `params`: the map in clear (still signed).
    Plain = 0,
    /// `sealed_params`: the map's CBOR sealed with HPKE to the host's X25519 key (`enc || ciphertext`).
    Sealed = 1,
}

/// A decoded request. `params` is the CBOR of the params map (plain) or the
/// sealed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub timestamp_ms: u64,
    pub nonce: Vec<u8>,
    /// The signer's Ed25519 key (the protected header's `kid`).
    pub caller: [u8; 32],
    pub reply_key: [u8; 32],
    pub params_mode: ParamsMode,
    pub params: Vec<u8>,
    pub signature: [u8; 64],
}

const PAYLOAD_KEYS_PLAIN: [&str; 7] = ["module_id", "version", "op", "timestamp", "nonce", "public_key", "params"];
const PAYLOAD_KEYS_SEALED: [&str; 7] = ["module_id", "version", "op", "timestamp", "nonce", "public_key", "sealed_params"];

fn protected_for(caller: &[u8; 32]) -> coset::Header {
    HeaderBuilder::new().algorithm(iana::Algorithm::EdDSA).key_id(caller.to_vec()).build()
}

impl Request {
    /// The COSE payload: the request's fields as a CBOR map.
    pub fn encode_body(&self) -> Vec<u8> {
        let params = match self.params_mode {
            // A plain params field that is not CBOR cannot be carried; an
            // empty map stands in (only a test would build one).
            ParamsMode::Plain => ("params", ciborium::de::from_reader(self.params.as_slice()).unwrap_or(Value::Map(vec![]))),
            ParamsMode::Sealed => ("sealed_params", Value::Bytes(self.params.clone())),
        };
        to_cbor(&Value::Map(vec![
            (text("module_id"), text(MODULE_ID)),
            (text("version"), uint(PROTOCOL_VERSION)),
            (text("op"), text(self.op.name())),
            (text("timestamp"), uint(self.timestamp_ms)),
            (text("nonce"), Value::Bytes(self.nonce.clone())),
            (text("public_key"), Value::Bytes(self.reply_key.to_vec())),
            (text(params.0), params.1),
        ]))
    }

    fn cose(&self) -> CoseSign1 {
        CoseSign1Builder::new()
            .protected(protected_for(&self.caller))
            .payload(self.encode_body())
            .signature(self.signature.to_vec())
            .build()
    }

    /// The bytes the signature covers: COSE's Sig_structure
    /// `["Signature1", protected, h'', payload]`.
    pub fn to_be_signed(&self) -> Vec<u8> {
        self.cose().tbs_data(b"")
    }

    pub fn encode(&self) -> Vec<u8> {
        self.cose().to_tagged_vec().expect("COSE encoding cannot fail")
    }

    /// Signs the request in place with `key`, setting `caller` to its public key.
    pub fn sign(&mut self, key: &SigningKey) {
        self.caller = key.verifying_key().to_bytes();
        let sig: Signature = key.sign(&self.to_be_signed());
        self.signature = sig.to_bytes();
    }

    /// Strict decoder: size limit, the COSE structure and headers, the
    /// payload's fields and ranges, canonical bytes. Does not check the
    /// signature (see [`Request::verify_signature`]).
    pub fn decode(b: &[u8]) -> Result<Request, DecodeError> {
        if b.len() > MAX_REQUEST_BYTES {
            return derr(format!("request of {} bytes > {MAX_REQUEST_BYTES}", b.len()));
        }
        let cose = CoseSign1::from_tagged_slice(b).map_err(|e| DecodeError(format!("not a tagged COSE_Sign1: {e}")))?;
        if !cose.unprotected.is_empty() {
            return derr("unprotected header must be empty");
        }
        let h = &cose.protected.header;
        let caller: [u8; 32] =
            h.key_id.as_slice().try_into().map_err(|_| DecodeError("kid must be the caller's 32-byte Ed25519 key".into()))?;
        let canonical = ProtectedHeader { original_data: None, header: protected_for(&caller) }
            .cbor_bstr()
            .map_err(|_| DecodeError("protected header".into()))?;
        if cose.protected.original_data.as_deref() != canonical.as_bytes().map(|v| v.as_slice()) {
            return derr("protected header must be exactly {alg: EdDSA, kid}");
        }
        let signature: [u8; 64] =
            cose.signature.as_slice().try_into().map_err(|_| DecodeError("signature must be 64 bytes".into()))?;
        let payload = cose.payload.as_deref().ok_or_else(|| DecodeError("missing payload".into()))?;
        if payload.len() > MAX_PARAMS + 512 {
            return derr("payload too large");
        }
        let v = from_cbor(payload, "payload")?;
        let sealed = matches!(&v, Value::Map(m) if m.len() == 7 && m[6].0.as_text() == Some("sealed_params"));
        let f = fields(&v, if sealed { &PAYLOAD_KEYS_SEALED } else { &PAYLOAD_KEYS_PLAIN }, "payload")?;
        if get_text(f[0], "module_id")? != MODULE_ID {
            return derr("wrong module_id");
        }
        let version: u64 = get_uint(f[1], "version")?;
        if version != PROTOCOL_VERSION {
            return derr(format!("unsupported version {version}"));
        }
        let name = get_text(f[2], "op")?;
        let op = Op::from_name(name).ok_or_else(|| DecodeError(format!("unknown op {name:?}")))?;
        let timestamp_ms = get_uint(f[3], "timestamp")?;
        let nonce = get_bytes(f[4], "nonce")?.clone();
        if !(MIN_NONCE..=MAX_NONCE).contains(&nonce.len()) {
            return derr(format!("nonce length {} not in {MIN_NONCE}..={MAX_NONCE}", nonce.len()));
        }
        let reply_key: [u8; 32] =
            get_bytes(f[5], "public_key")?.as_slice().try_into().map_err(|_| DecodeError("public_key must be 32 bytes".into()))?;
        let (params_mode, params) = if sealed {
            let p = get_bytes(f[6], "sealed_params")?;
            if p.len() > MAX_PARAMS {
                return derr(format!("sealed params of {} bytes > {MAX_PARAMS}", p.len()));
            }
            (ParamsMode::Sealed, p.clone())
        } else {
            // Plain params are validated at decode time so malformed ones never reach a check.
            Params::from_value(op, f[6])?;
            (ParamsMode::Plain, to_cbor(f[6]))
        };
        let req = Request { op, timestamp_ms, nonce, caller, reply_key, params_mode, params, signature };
        if req.encode() != b {
            return derr("non-canonical encoding");
        }
        Ok(req)
    }

    /// Strict Ed25519 verification (`verify_strict`: rejects small-order keys
    /// and non-canonical signatures) against the key in `kid`.
    pub fn verify_signature(&self) -> Result<VerifyingKey, ed25519_dalek::SignatureError> {
        let vk = VerifyingKey::from_bytes(&self.caller)?;
        let sig = Signature::from_bytes(&self.signature);
        vk.verify_strict(&self.to_be_signed(), &sig)?;
        Ok(vk)
    }
}

/// Associated data for params sealed to the host: binds them to the op, the
/// caller and the nonce (`op name || 0 || caller || nonce`).
pub fn params_aad(op: Op, caller: &[u8; 32], nonce: &[u8]) -> Vec<u8> {
    let mut a = op.name().as_bytes().to_vec();
    a.push(0);
    a.extend_from_slice(caller);
    a.extend_from_slice(nonce);
    a
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
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

const MAX_COUNTERS: usize = 4096;

impl OpOutput {
    /// CBOR: `{"counters": [[name, value], ...]}`, `{"done": true}`,
    /// `{"bytes": bstr}` or `{"failed": text}`.
    pub fn encode(&self) -> Vec<u8> {
        let (k, v) = match self {
            OpOutput::Counters(cs) => {
                ("counters", Value::Array(cs.iter().map(|(n, v)| Value::Array(vec![text(n), uint(*v)])).collect()))
            }
            OpOutput::Done => ("done", Value::Bool(true)),
            OpOutput::Bytes(b) => ("bytes", Value::Bytes(b.clone())),
            OpOutput::Failed(m) => ("failed", text(m)),
        };
        to_cbor(&Value::Map(vec![(text(k), v)]))
    }

    pub fn decode(b: &[u8]) -> Result<OpOutput, DecodeError> {
        let v = from_cbor(b, "output")?;
        let Value::Map(m) = &v else { return derr("output: not a map") };
        let [(k, v)] = m.as_slice() else { return derr("output: one field expected") };
        Ok(match (k.as_text(), v) {
            (Some("counters"), Value::Array(a)) => {
                if a.len() > MAX_COUNTERS {
                    return derr("bad counter count");
                }
                let mut out = Vec::with_capacity(a.len());
                for c in a {
                    let Value::Array(pair) = c else { return derr("counter: not a pair") };
                    let [n, v] = pair.as_slice() else { return derr("counter: not a pair") };
                    out.push((get_text(n, "counter name")?.to_string(), get_uint(v, "counter")?));
                }
                OpOutput::Counters(out)
            }
            (Some("done"), Value::Bool(true)) => OpOutput::Done,
            (Some("bytes"), Value::Bytes(b)) => OpOutput::Bytes(b.clone()),
            (Some("failed"), Value::Text(m)) => OpOutput::Failed(m.clone()),
            _ => return derr("unknown output"),
        })
    }
}
