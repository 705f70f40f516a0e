//! Key generation and storage.
//!
//! A key directory (mode 0700) holds:
//!
//! * `ed25519.key`  — Ed25519 identity secret (32-byte seed, hex), mode 0600
//! * `x25519.key`   — X25519 HPKE secret (hex), mode 0600
//! * `identity.pub` — the public halves, `ed25519 <base64>` and `x25519 <base64>` lines, mode 0644
//!
//! Secret files whose mode grants any group/other access are refused on load.

use crate::auth::parse_key32;
use crate::seal::X25519Keypair;
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const ED25519_FILE: &str = "ed25519.key";
pub const X25519_FILE: &str = "x25519.key";
pub const PUBLIC_FILE: &str = "identity.pub";

/// A party's secret keys: Ed25519 for signing, X25519 for receiving sealed data.
#[derive(Clone)]
pub struct Identity {
    pub ed25519: SigningKey,
    pub x25519: X25519Keypair,
}

/// The public half of an [`Identity`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicIdentity {
    pub ed25519: VerifyingKey,
    pub x25519: [u8; 32],
}

impl Identity {
    pub fn generate() -> Identity {
        Identity {
            ed25519: SigningKey::generate(&mut rand_core::OsRng),
            x25519: X25519Keypair::generate(),
        }
    }

    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            ed25519: self.ed25519.verifying_key(),
            x25519: self.x25519.public_bytes(),
        }
    }

    /// Writes the key files into `dir`. Refuses to overwrite unless `force`.
    pub fn write_to(&self, dir: &Path, force: bool) -> Result<()> {
        let files = [ED25519_FILE, X25519_FILE, PUBLIC_FILE].map(|f| dir.join(f));
        if !force {
            if let Some(f) = files.iter().find(|f| f.exists()) {
                bail!(
                    "{} already exists; refusing to overwrite (use --force)",
                    f.display()
                );
            }
        }
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        write_file(
            &files[0],
            format!("{}\n", hex::encode(self.ed25519.to_bytes())).as_bytes(),
            0o600,
            force,
        )?;
        write_file(
            &files[1],
            format!("{}\n", hex::encode(self.x25519.secret_bytes())).as_bytes(),
            0o600,
            force,
        )?;
        write_file(&files[2], self.public().to_text().as_bytes(), 0o644, force)?;
        Ok(())
    }

    /// Loads the key files from `dir`, refusing secrets readable by others.
    pub fn load(dir: &Path) -> Result<Identity> {
        let ed = read_secret(&dir.join(ED25519_FILE))?;
        let x = read_secret(&dir.join(X25519_FILE))?;
        let x25519 = X25519Keypair::from_secret_bytes(&x).map_err(|e| anyhow!("{e}"))?;
        Ok(Identity {
            ed25519: SigningKey::from_bytes(&ed),
            x25519,
        })
    }
}

impl PublicIdentity {
    pub fn to_text(&self) -> String {
        let b = base64::engine::general_purpose::STANDARD;
        format!(
            "ed25519 {}\nx25519 {}\n",
            b.encode(self.ed25519.to_bytes()),
            b.encode(self.x25519)
        )
    }

    pub fn parse(text: &str) -> Result<PublicIdentity> {
        let (mut ed, mut x) = (None, None);
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut it = line.split_whitespace();
            let (kind, val) = (
                it.next().unwrap_or(""),
                it.next()
                    .ok_or_else(|| anyhow!("missing key in {line:?}"))?,
            );
            let k = parse_key32(val)?;
            match kind {
                "ed25519" if ed.is_none() => {
                    ed = Some(VerifyingKey::from_bytes(&k).map_err(|_| anyhow!("bad Ed25519 key"))?)
                }
                "x25519" if x.is_none() => x = Some(k),
                _ => bail!("unexpected line {line:?}"),
            }
        }
        Ok(PublicIdentity {
            ed25519: ed.ok_or_else(|| anyhow!("no ed25519 line"))?,
            x25519: x.ok_or_else(|| anyhow!("no x25519 line"))?,
        })
    }

    pub fn load(path: &Path) -> Result<PublicIdentity> {
        let t = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&t).with_context(|| format!("in {}", path.display()))
    }
}

fn write_file(path: &Path, data: &[u8], mode: u32, replace: bool) -> Result<()> {
    // Write a fresh file (O_EXCL, final mode from the start) and rename it into place.
    let tmp: PathBuf = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    if !replace && path.exists() {
        let _ = fs::remove_file(&tmp);
        bail!(
            "{} appeared while writing; refusing to overwrite",
            path.display()
        );
    }
    fs::rename(&tmp, path)?;
    Ok(())
}

fn read_secret(path: &Path) -> Result<[u8; 32]> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is accessible by group/others (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let t = fs::read_to_string(path)?;
    let v = hex::decode(t.trim()).with_context(|| format!("{} is not hex", path.display()))?;
    v.try_into()
        .map_err(|_| anyhow!("{} does not hold 32 bytes", path.display()))
}
