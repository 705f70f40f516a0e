//! Offcard secured privileged operations (issue 8).
//!
//! Callers send Ed25519-signed requests over a Unix socket; the host checks
//! size, encoding, signature, authorization, freshness and replay before
//! anything runs, dispatches to a [`PrivilegedBackend`], and answers with a
//! COSE_Sign1 envelope signed by its identity key whose payload binds the
//! request digest, nonce and the caller's reply key and carries the result
//! sealed with HPKE (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, ChaCha20Poly1305) to the caller. See `docs/mgmt.md`.
//!
//! The `offcard` binary parses the command line (clap) and calls the
//! functions of [`commands`] (`run_serve`, `run_mgmt`, `keygen`, `parse_op`);
//! this crate has no command-line parser of its own.

pub mod auth;
pub mod backend;
pub mod bench;
pub mod client;
pub mod commands;
pub mod envelope;
pub mod host;
pub mod keys;
pub mod net;
pub mod protocol;
pub mod replay;
pub mod seal;

pub use auth::{AuthorizedKeys, TagScope};
pub use backend::{Call, MemoryBackend, PrivilegedBackend, TAG_COUNTER_NAMES};
pub use client::{open_response, prepare, ClientError, PreparedRequest, RequestOptions};
pub use host::{AuditLog, Host, HostConfig, Outcome, Reject};
pub use keys::{Identity, PublicIdentity};
pub use protocol::{DecodeError, Op, OpOutput, Params, Request};
