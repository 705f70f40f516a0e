//! The authorized-keys file: which Ed25519 keys may call which operations,
//! and for the tag-scoped operations, on which cache tags.
//!
//! Human-editable text, one key per line:
//!
//! ```text
//! # comment lines and blank lines are ignored
//! <ed25519 public key: 64 hex digits or base64 of 32 bytes> <op>[,<op>...] [tags=<t>[,<t>...]|tags=*] [# comment]
//! ```
//!
//! `<op>` is an operation name (`read-counters`, `program-way-mask`,
//! `program-path-table`, `read-write-records`, `read-host-memory`,
//! `read-tag-counters`) or `*` for all of them. Any malformed line makes the
//! whole file invalid (fail closed); a key listed twice is an error too.
//!
//! Tag scope: the tag-scoped operations ([`Op::is_tag_scoped`]:
//! `program-way-mask`, `read-tag-counters`) act on one cache tag (tenant), and
//! a key may use them only on the tags listed in its `tags=` field. A key
//! without a `tags=` field has **no** tag access (deny by default): it keeps
//! every non-tag operation it lists, but every tag-scoped request it sends is
//! refused (`tag-not-authorized`). `tags=*` grants every tag.

use crate::protocol::Op;
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Which cache tags a key may name in tag-scoped operations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TagScope {
    /// No `tags=` field: no tag access (deny by default).
    #[default]
    None,
    /// `tags=1,2,5`.
    Some(BTreeSet<u16>),
    /// `tags=*`.
    All,
}

impl TagScope {
    pub fn allows(&self, tag: u16) -> bool {
        match self {
            TagScope::None => false,
            TagScope::Some(s) => s.contains(&tag),
            TagScope::All => true,
        }
    }

    /// A scope of exactly these tags (an empty list is [`TagScope::None`]).
    pub fn tags(tags: &[u16]) -> TagScope {
        if tags.is_empty() {
            TagScope::None
        } else {
            TagScope::Some(tags.iter().copied().collect())
        }
    }

    /// Parses the value of a `tags=` field: `*` or a comma-separated list of
    /// decimal tag numbers (0..=65535; whether the card has the tag is the
    /// backend's business, it refuses tags it does not have).
    pub fn parse_value(v: &str) -> Result<TagScope> {
        if v == "*" {
            return Ok(TagScope::All);
        }
        let mut s = BTreeSet::new();
        for t in v.split(',') {
            if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
                bail!("tag {t:?} is not a decimal number (tags=<t>[,<t>...] or tags=*)");
            }
            let n: u16 = t
                .parse()
                .map_err(|_| anyhow!("tag {t} out of range (tags are 0..=65535)"))?;
            if !s.insert(n) {
                bail!("tag {n} listed twice");
            }
        }
        Ok(TagScope::Some(s))
    }

    /// The `tags=...` field for a line, or `None` when there is none.
    pub fn field(&self) -> Option<String> {
        match self {
            TagScope::None => None,
            TagScope::All => Some("tags=*".into()),
            TagScope::Some(s) => Some(format!(
                "tags={}",
                s.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )),
        }
    }
}

impl std::fmt::Display for TagScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field() {
            Some(s) => f.write_str(&s),
            None => f.write_str("no tags"),
        }
    }
}

#[derive(Debug, Clone)]
struct Grant {
    ops: BTreeSet<Op>,
    tags: TagScope,
    #[allow(dead_code)]
    comment: String,
}

#[derive(Debug, Clone, Default)]
pub struct AuthorizedKeys {
    keys: HashMap<[u8; 32], Grant>,
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
            let tags = match fields.next() {
                None => TagScope::None,
                Some(f) => match f.strip_prefix("tags=") {
                    Some(v) => TagScope::parse_value(v)
                        .with_context(|| format!("line {lineno}: in {f:?}"))?,
                    None => bail!(
                        "line {lineno}: unexpected {f:?} (the optional third field is tags=<t>[,<t>...] or tags=*; comments start with #)"
                    ),
                },
            };
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
            let grant = Grant {
                ops,
                tags,
                comment: comment.to_string(),
            };
            if keys.insert(key, grant).is_some() {
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

    /// Adds (or replaces) a key programmatically, with no tag access (like a
    /// line without `tags=`).
    pub fn allow(&mut self, key: [u8; 32], ops: &[Op], comment: &str) {
        self.allow_tags(key, ops, TagScope::None, comment)
    }

    /// Adds (or replaces) a key programmatically with a tag scope.
    pub fn allow_tags(&mut self, key: [u8; 32], ops: &[Op], tags: TagScope, comment: &str) {
        self.keys.insert(
            key,
            Grant {
                ops: ops.iter().copied().collect(),
                tags,
                comment: comment.to_string(),
            },
        );
    }

    /// Whether `key` may call `op` at all (for tag-scoped ops the tag is
    /// checked separately, see [`AuthorizedKeys::is_tag_allowed`]).
    pub fn is_allowed(&self, key: &[u8; 32], op: Op) -> bool {
        self.keys.get(key).is_some_and(|g| g.ops.contains(&op))
    }

    /// Whether `key` may name `tag` in a tag-scoped operation.
    pub fn is_tag_allowed(&self, key: &[u8; 32], tag: u16) -> bool {
        self.keys.get(key).is_some_and(|g| g.tags.allows(tag))
    }

    /// The tag scope of `key` (`None` if the key is unknown).
    pub fn tag_scope(&self, key: &[u8; 32]) -> Option<&TagScope> {
        self.keys.get(key).map(|g| &g.tags)
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

    /// Formats one line of the file for `key`, without a `tags=` field (no
    /// tag access).
    pub fn format_line(key: &[u8; 32], ops: &[Op], comment: &str) -> String {
        Self::format_line_scoped(key, ops, &TagScope::None, comment)
    }

    /// Formats one line of the file for `key`, with the `tags=` field when
    /// `tags` grants any.
    pub fn format_line_scoped(
        key: &[u8; 32],
        ops: &[Op],
        tags: &TagScope,
        comment: &str,
    ) -> String {
        let ops: Vec<&str> = ops.iter().map(|o| o.name()).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        let mut line = format!("{b64} {}", ops.join(","));
        if let Some(t) = tags.field() {
            line += " ";
            line += &t;
        }
        if !comment.is_empty() {
            line += " # ";
            line += comment;
        }
        line
    }
}
