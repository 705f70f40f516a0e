//! HPKE (RFC 9180) base mode with the single suite this crate uses:
//! DHKEM(X25519, HKDF-SHA256) (0x0020), HKDF-SHA256 (0x0001),
//! ChaCha20Poly1305 (0x0003).
//!
//! A sealed blob is `enc (32 bytes) || ciphertext (plaintext + 16-byte tag)`.

use hpke::{
    aead::ChaCha20Poly1305, kdf::HkdfSha256, kem::X25519HkdfSha256, Deserializable, Kem as _,
    OpModeR, OpModeS, Serializable,
};
use rand_core::{CryptoRng, OsRng, RngCore};

pub type Kem = X25519HkdfSha256;
pub type Kdf = HkdfSha256;
pub type Aead = ChaCha20Poly1305;
pub type PublicKey = <Kem as hpke::Kem>::PublicKey;
pub type PrivateKey = <Kem as hpke::Kem>::PrivateKey;

pub const KEM_ID: u16 = 0x0020;
pub const KDF_ID: u16 = 0x0001;
pub const AEAD_ID: u16 = 0x0003;
pub const ENC_LEN: usize = 32;
pub const TAG_LEN: usize = 16;

/// HPKE `info` for results sealed to the caller.
pub const RESULT_INFO: &[u8] = b"offcard-mgmt/result/v1";
/// HPKE `info` for request params sealed to the host.
pub const PARAMS_INFO: &[u8] = b"offcard-mgmt/params/v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealError(pub &'static str);

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HPKE: {}", self.0)
    }
}
impl std::error::Error for SealError {}

/// An X25519 keypair for HPKE.
#[derive(Clone)]
pub struct X25519Keypair {
    pub secret: PrivateKey,
    pub public: PublicKey,
}

impl X25519Keypair {
    pub fn generate() -> Self {
        Self::generate_with(&mut OsRng)
    }
    pub fn generate_with<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let (secret, public) = Kem::gen_keypair(rng);
        X25519Keypair { secret, public }
    }
    pub fn from_secret_bytes(b: &[u8; 32]) -> Result<Self, SealError> {
        let secret = PrivateKey::from_bytes(b).map_err(|_| SealError("bad X25519 secret key"))?;
        let public = Kem::sk_to_pk(&secret);
        Ok(X25519Keypair { secret, public })
    }
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes().into()
    }
    pub fn public_bytes(&self) -> [u8; 32] {
        self.public.to_bytes().into()
    }
}

pub fn public_from_bytes(b: &[u8]) -> Result<PublicKey, SealError> {
    PublicKey::from_bytes(b).map_err(|_| SealError("bad X25519 public key"))
}

/// Seals `pt` to `recipient` (single-shot base mode), using `rng` for the
/// ephemeral key. Returns `enc || ciphertext`.
pub fn seal_with<R: RngCore + CryptoRng>(
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    pt: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, SealError> {
    let pk = public_from_bytes(recipient)?;
    let (enc, ct) =
        hpke::single_shot_seal::<Aead, Kdf, Kem, _>(&OpModeS::Base, &pk, info, pt, aad, rng)
            .map_err(|_| SealError("seal failed"))?;
    let mut out = Vec::with_capacity(ENC_LEN + ct.len());
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

pub fn seal(
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    pt: &[u8],
) -> Result<Vec<u8>, SealError> {
    seal_with(recipient, info, aad, pt, &mut OsRng)
}

/// Opens `enc || ciphertext` with `sk`.
pub fn open(sk: &PrivateKey, info: &[u8], aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, SealError> {
    if blob.len() < ENC_LEN + TAG_LEN {
        return Err(SealError("sealed blob too short"));
    }
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&blob[..ENC_LEN])
        .map_err(|_| SealError("bad encapsulated key"))?;
    hpke::single_shot_open::<Aead, Kdf, Kem>(&OpModeR::Base, sk, &enc, info, &blob[ENC_LEN..], aad)
        .map_err(|_| SealError("open failed (wrong key, or tampered/unbound ciphertext)"))
}

/// A base-mode sender context set up ahead of time: the encapsulation (and
/// the check that the recipient key is usable, i.e. not a small-order point)
/// happens in [`Sealer::new`], the AEAD sealing later.
pub struct Sealer {
    enc: [u8; ENC_LEN],
    ctx: hpke::aead::AeadCtxS<Aead, Kdf, Kem>,
}

impl Sealer {
    pub fn new<R: RngCore + CryptoRng>(
        recipient: &[u8; 32],
        info: &[u8],
        rng: &mut R,
    ) -> Result<Sealer, SealError> {
        let pk = public_from_bytes(recipient)?;
        let (enc, ctx) = hpke::setup_sender::<Aead, Kdf, Kem, _>(&OpModeS::Base, &pk, info, rng)
            .map_err(|_| SealError("unusable recipient key"))?;
        Ok(Sealer {
            enc: enc.to_bytes().into(),
            ctx,
        })
    }

    /// Seals one message; returns `enc || ciphertext`.
    pub fn seal(mut self, pt: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let ct = self
            .ctx
            .seal(pt, aad)
            .map_err(|_| SealError("seal failed"))?;
        let mut out = Vec::with_capacity(ENC_LEN + ct.len());
        out.extend_from_slice(&self.enc);
        out.extend_from_slice(&ct);
        Ok(out)
    }
}
