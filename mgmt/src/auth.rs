//! The authorized-keys file: which Ed25519 keys may call which operations.
//!
//! Human-editable text, one key per line:
//!
//! ```text
//! # comment lines and blank lines are ignored
//! <ed25519 public key: 64 hex digits or base64 of 32 bytes> <op>[,<op>...] [# comment]
//! ```
//!
//! `<op>` is an operation name (`read-counters`, `program-way-mask`,
//! `program-path-table`, `read-write-records`, `read-host-memory`) or `*` for
//! all of them. Any malformed line makes the whole file invalid (fail closed);
//! a key listed twice is an error too.

use crate::protocol::Op;
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct AuthorizedKeys {
    keys: HashMap<[u8; 32], (BTreeSet<Op>, String)>,
}

/// Parses a 32-byte key from hex (64 digits) or standard base64.
pub fn parse_key32(s: &str) -> Result<[u8; 32]> {
    let bytes = if s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(s)?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| anyhow!("key {s:?} is neither 64 hex digits nor base64"))?
    };
    bytes
        .try_into()
        .map_err(|_| anyhow!("key {s:?} is not 32 bytes"))
}

impl AuthorizedKeys {
    pub fn parse(text: &str) -> Result<AuthorizedKeys> {
        let mut keys = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let lineno = i + 1;
            let (body, comment) = match raw.find('#') {
                Some(p) => (&raw[..p], raw[p + 1..].trim()),
                None => (raw, ""),
            };
            let mut fields = body.split_whitespace();
            let Some(key) = fields.next() else { continue };
            let ops_s = fields
                .next()
                .ok_or_else(|| anyhow!("line {lineno}: missing operation list"))?;
            if let Some(extra) = fields.next() {
                bail!("line {lineno}: unexpected {extra:?} (comments start with #)");
            }
            let key = parse_key32(key).with_context(|| format!("line {lineno}"))?;
            ed25519_dalek::VerifyingKey::from_bytes(&key)
                .map_err(|_| anyhow!("line {lineno}: not a valid Ed25519 public key"))?;
            let mut ops = BTreeSet::new();
            for o in ops_s.split(',') {
                if o == "*" {
                    ops.extend(Op::ALL);
                } else {
                    ops.insert(
                        Op::from_name(o)
                            .ok_or_else(|| anyhow!("line {lineno}: unknown operation {o:?}"))?,
                    );
                }
            }
            if keys.insert(key, (ops, comment.to_string())).is_some() {
                bail!("line {lineno}: key listed twice");
            }
        }
        Ok(AuthorizedKeys { keys })
    }

    pub fn load(path: &Path) -> Result<AuthorizedKeys> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading authorized-keys file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Adds (or replaces) a key programmatically.
    pub fn allow(&mut self, key: [u8; 32], ops: &[Op], comment: &str) {
        self.keys
            .insert(key, (ops.iter().copied().collect(), comment.to_string()));
    }

    pub fn is_allowed(&self, key: &[u8; 32], op: Op) -> bool {
        self.keys.get(key).is_some_and(|(ops, _)| ops.contains(&op))
    }

    pub fn is_known(&self, key: &[u8; 32]) -> bool {
        self.keys.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Formats one line of the file for `key`.
    pub fn format_line(key: &[u8; 32], ops: &[Op], comment: &str) -> String {
        let ops: Vec<&str> = ops.iter().map(|o| o.name()).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        if comment.is_empty() {
            format!("{b64} {}", ops.join(","))
        } else {
            format!("{b64} {} # {comment}", ops.join(","))
        }
    }
}
