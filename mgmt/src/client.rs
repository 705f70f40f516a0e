//! Client side: build and sign a request, then verify and open the response.

use crate::envelope::{verify_envelope, EnvelopeError, Status};
use crate::keys::Identity;
use crate::protocol::{now_ms, params_aad, request_digest, result_aad, DecodeError, Op, OpOutput, Params, ParamsMode, Request};
use crate::seal::{self, SealError};
use ed25519_dalek::VerifyingKey;
use rand_core::RngCore;
use std::fmt;

/// An encoded, signed request and what the client needs to check the answer.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub op: Op,
    pub bytes: Vec<u8>,
    pub digest: [u8; 32],
    pub nonce: Vec<u8>,
    pub reply_key: [u8; 32],
}

/// Knobs for [`prepare`]; defaults are what a normal client wants.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// Override the timestamp (default: now).
    pub timestamp_ms: Option<u64>,
    /// Override the nonce (default: 16 random bytes).
    pub nonce: Option<Vec<u8>>,
    /// Seal the params to this host X25519 key.
    pub seal_params_to: Option<[u8; 32]>,
}

/// Builds and signs a request for `params` as `caller`.
pub fn prepare(
    caller: &Identity,
    params: &Params,
    opts: &RequestOptions,
) -> Result<PreparedRequest, SealError> {
    let nonce = opts.nonce.clone().unwrap_or_else(|| {
        let mut n = vec![0u8; 16];
        rand_core::OsRng.fill_bytes(&mut n);
        n
    });
    let op = params.op();
    let caller_pk = caller.ed25519.verifying_key().to_bytes();
    let (params_mode, pbytes) = match &opts.seal_params_to {
        None => (ParamsMode::Plain, params.encode()),
        Some(hk) => {
            let aad = params_aad(op, &caller_pk, &nonce);
            (
                ParamsMode::Sealed,
                seal::seal(hk, seal::PARAMS_INFO, &aad, &params.encode())?,
            )
        }
    };
    let mut req = Request {
        op,
        timestamp_ms: opts.timestamp_ms.unwrap_or_else(now_ms),
        nonce: nonce.clone(),
        caller: caller_pk,
        reply_key: caller.x25519.public_bytes(),
        params_mode,
        params: pbytes,
        signature: [0; 64],
    };
    req.sign(&caller.ed25519);
    let bytes = req.encode();
    let digest = request_digest(&bytes);
    Ok(PreparedRequest {
        op,
        bytes,
        digest,
        nonce,
        reply_key: req.reply_key,
    })
}

/// Why a call did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The envelope failed verification (not from the host, tampered, malformed).
    Envelope(EnvelopeError),
    /// The envelope is genuine but answers another request.
    Unbound(&'static str),
    /// The host refused the request; nothing ran.
    Rejected { code: String, message: String },
    /// The sealed result could not be opened.
    Open(SealError),
    /// The opened result is malformed.
    Result(DecodeError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Envelope(e) => write!(f, "{e}"),
            ClientError::Unbound(w) => {
                write!(f, "response is not bound to this request ({w} differs)")
            }
            ClientError::Rejected { code, message } => {
                write!(f, "host rejected the request [{code}]: {message}")
            }
            ClientError::Open(e) => write!(f, "{e}"),
            ClientError::Result(e) => write!(f, "result: {e}"),
        }
    }
}
impl std::error::Error for ClientError {}

impl ClientError {
    /// The host's rejection code, if the host rejected the request.
    pub fn rejection_code(&self) -> Option<&str> {
        match self {
            ClientError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Verifies the envelope (host signature first), its binding to `req`, then
/// opens the sealed result with the caller's X25519 key.
pub fn open_response(
    caller: &Identity,
    host: &VerifyingKey,
    req: &PreparedRequest,
    response: &[u8],
) -> Result<OpOutput, ClientError> {
    let p = verify_envelope(host, response).map_err(ClientError::Envelope)?;
    match p.status {
        Status::Rejected { code, message } => {
            // A rejection may lack fields the host could not read, but must not name another request.
            if !p.request_digest.is_empty() && p.request_digest != req.digest {
                return Err(ClientError::Unbound("request_digest"));
            }
            if !p.nonce.is_empty() && p.nonce != req.nonce {
                return Err(ClientError::Unbound("nonce"));
            }
            Err(ClientError::Rejected { code, message })
        }
        Status::Ok { sealed } => {
            if p.request_digest != req.digest {
                return Err(ClientError::Unbound("request_digest"));
            }
            if p.nonce != req.nonce {
                return Err(ClientError::Unbound("nonce"));
            }
            if p.public_key != req.reply_key {
                return Err(ClientError::Unbound("public_key"));
            }
            let aad = result_aad(&req.digest, &req.nonce);
            let pt = seal::open(&caller.x25519.secret, seal::RESULT_INFO, &aad, &sealed)
                .map_err(ClientError::Open)?;
            OpOutput::decode(&pt).map_err(ClientError::Result)
        }
    }
}
