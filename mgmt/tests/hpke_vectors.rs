//! RFC 9180 known-answer tests for the exact suite the protocol uses:
//! base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305.
//!
//! Three independent layers are checked against the vector:
//! 1. an independent re-implementation of the key schedule (hkdf + x25519-dalek),
//!    and the AEAD directly (chacha20poly1305) with the derived key/nonces;
//! 2. the `hpke` crate with a deterministic ephemeral key (all 257 encryptions,
//!    exports, and decryption on the receiver side);
//! 3. this crate's own `seal` wrappers.

use hkdf::Hkdf;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use offcard_mgmt::seal::{self, Aead, Kdf, Kem};
use rand_core::{CryptoRng, RngCore};
use serde_json::Value;
use sha2::Sha256;

const VECTOR: &str = include_str!("data/rfc9180_base_x25519_sha256_chacha20poly1305.json");

fn h(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap_or_else(|| panic!("missing {k}"))).unwrap()
}

fn vector() -> Value {
    let v: Value = serde_json::from_str(VECTOR).unwrap();
    assert_eq!(v["mode"], 0);
    assert_eq!(v["kem_id"].as_u64(), Some(seal::KEM_ID as u64));
    assert_eq!(v["kdf_id"].as_u64(), Some(seal::KDF_ID as u64));
    assert_eq!(v["aead_id"].as_u64(), Some(seal::AEAD_ID as u64));
    assert_eq!(v["encryptions"].as_array().unwrap().len(), 257);
    v
}

/// Returns the given bytes as "randomness" (for a deterministic ephemeral key).
struct FixedRng(Vec<u8>);
impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        unimplemented!()
    }
    fn next_u64(&mut self) -> u64 {
        unimplemented!()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert_eq!(dest.len(), self.0.len(), "unexpected RNG request");
        dest.copy_from_slice(&self.0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for FixedRng {}

// --- independent RFC 9180 key schedule --------------------------------------

fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Vec<u8> {
    let mut m = b"HPKE-v1".to_vec();
    m.extend_from_slice(suite);
    m.extend_from_slice(label);
    m.extend_from_slice(ikm);
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), &m);
    prk.to_vec()
}

fn labeled_expand(suite: &[u8], prk: &[u8], label: &[u8], info: &[u8], l: usize) -> Vec<u8> {
    let mut m = (l as u16).to_be_bytes().to_vec();
    m.extend_from_slice(b"HPKE-v1");
    m.extend_from_slice(suite);
    m.extend_from_slice(label);
    m.extend_from_slice(info);
    let mut out = vec![0u8; l];
    Hkdf::<Sha256>::from_prk(prk)
        .unwrap()
        .expand(&m, &mut out)
        .unwrap();
    out
}

fn kem_suite() -> Vec<u8> {
    let mut s = b"KEM".to_vec();
    s.extend_from_slice(&seal::KEM_ID.to_be_bytes());
    s
}

fn hpke_suite() -> Vec<u8> {
    let mut s = b"HPKE".to_vec();
    for id in [seal::KEM_ID, seal::KDF_ID, seal::AEAD_ID] {
        s.extend_from_slice(&id.to_be_bytes());
    }
    s
}

fn derive_sk(ikm: &[u8]) -> Vec<u8> {
    let prk = labeled_extract(&kem_suite(), b"", b"dkp_prk", ikm);
    labeled_expand(&kem_suite(), &prk, b"sk", b"", 32)
}

fn x25519_pk(sk: &[u8]) -> [u8; 32] {
    let s = x25519_dalek::StaticSecret::from(<[u8; 32]>::try_from(sk).unwrap());
    x25519_dalek::PublicKey::from(&s).to_bytes()
}

#[test]
fn independent_key_schedule_matches_vector() {
    let v = vector();
    // DeriveKeyPair
    let sk_r = derive_sk(&h(&v, "ikmR"));
    let sk_e = derive_sk(&h(&v, "ikmE"));
    assert_eq!(sk_r, h(&v, "skRm"));
    assert_eq!(sk_e, h(&v, "skEm"));
    assert_eq!(x25519_pk(&sk_r).to_vec(), h(&v, "pkRm"));
    assert_eq!(x25519_pk(&sk_e).to_vec(), h(&v, "pkEm"));
    assert_eq!(h(&v, "enc"), h(&v, "pkEm"));
    // Encap: dh = DH(skE, pkR); shared_secret = ExtractAndExpand(dh, enc || pkRm)
    let dh = x25519_dalek::StaticSecret::from(<[u8; 32]>::try_from(sk_e.as_slice()).unwrap())
        .diffie_hellman(&x25519_dalek::PublicKey::from(
            <[u8; 32]>::try_from(h(&v, "pkRm").as_slice()).unwrap(),
        ));
    let mut kem_context = h(&v, "enc");
    kem_context.extend_from_slice(&h(&v, "pkRm"));
    let eae_prk = labeled_extract(&kem_suite(), b"", b"eae_prk", dh.as_bytes());
    let shared = labeled_expand(&kem_suite(), &eae_prk, b"shared_secret", &kem_context, 32);
    assert_eq!(shared, h(&v, "shared_secret"));
    // KeySchedule (mode_base, empty psk / psk_id)
    let s = hpke_suite();
    let psk_id_hash = labeled_extract(&s, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(&s, b"", b"info_hash", &h(&v, "info"));
    let mut ksc = vec![0u8];
    ksc.extend_from_slice(&psk_id_hash);
    ksc.extend_from_slice(&info_hash);
    assert_eq!(ksc, h(&v, "key_schedule_context"));
    let secret = labeled_extract(&s, &shared, b"secret", b"");
    assert_eq!(secret, h(&v, "secret"));
    let key = labeled_expand(&s, &secret, b"key", &ksc, 32);
    let base_nonce = labeled_expand(&s, &secret, b"base_nonce", &ksc, 12);
    let exporter = labeled_expand(&s, &secret, b"exp", &ksc, 32);
    assert_eq!(key, h(&v, "key"));
    assert_eq!(base_nonce, h(&v, "base_nonce"));
    assert_eq!(exporter, h(&v, "exporter_secret"));
    // Every encryption: nonce = base_nonce XOR I2OSP(seq, 12); ChaCha20Poly1305 directly.
    use chacha20poly1305::aead::{Aead as _, KeyInit, Payload};
    let aead = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key).unwrap();
    for (seq, e) in v["encryptions"].as_array().unwrap().iter().enumerate() {
        let mut nonce = base_nonce.clone();
        for (i, b) in (seq as u128).to_be_bytes()[4..].iter().enumerate() {
            nonce[i] ^= b;
        }
        assert_eq!(nonce, h(e, "nonce"), "nonce of seq {seq}");
        let ct = aead
            .encrypt(
                nonce.as_slice().into(),
                Payload {
                    msg: &h(e, "pt"),
                    aad: &h(e, "aad"),
                },
            )
            .unwrap();
        assert_eq!(ct, h(e, "ct"), "ciphertext of seq {seq}");
    }
    // Exports: LabeledExpand(exporter_secret, "sec", exporter_context, L)
    for x in v["exports"].as_array().unwrap() {
        let l = x["L"].as_u64().unwrap() as usize;
        assert_eq!(
            labeled_expand(&s, &exporter, b"sec", &h(x, "exporter_context"), l),
            h(x, "exported_value")
        );
    }
}

#[test]
fn hpke_crate_sender_matches_all_vector_encryptions() {
    let v = vector();
    let (sk_r, pk_r) = Kem::derive_keypair(&h(&v, "ikmR"));
    assert_eq!(sk_r.to_bytes().to_vec(), h(&v, "skRm"));
    assert_eq!(pk_r.to_bytes().to_vec(), h(&v, "pkRm"));
    let (sk_e, pk_e) = Kem::derive_keypair(&h(&v, "ikmE"));
    assert_eq!(sk_e.to_bytes().to_vec(), h(&v, "skEm"));
    assert_eq!(pk_e.to_bytes().to_vec(), h(&v, "pkEm"));

    let mut rng = FixedRng(h(&v, "ikmE"));
    let (enc, mut sctx) =
        hpke::setup_sender::<Aead, Kdf, Kem, _>(&OpModeS::Base, &pk_r, &h(&v, "info"), &mut rng)
            .unwrap();
    assert_eq!(enc.to_bytes().to_vec(), h(&v, "enc"));
    for (seq, e) in v["encryptions"].as_array().unwrap().iter().enumerate() {
        let ct = sctx.seal(&h(e, "pt"), &h(e, "aad")).unwrap();
        assert_eq!(ct, h(e, "ct"), "sender ciphertext of seq {seq}");
    }
    for x in v["exports"].as_array().unwrap() {
        let mut out = vec![0u8; x["L"].as_u64().unwrap() as usize];
        sctx.export(&h(x, "exporter_context"), &mut out).unwrap();
        assert_eq!(out, h(x, "exported_value"));
    }
}

#[test]
fn hpke_crate_receiver_opens_all_vector_encryptions() {
    let v = vector();
    let sk_r = seal::PrivateKey::from_bytes(&h(&v, "skRm")).unwrap();
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&h(&v, "enc")).unwrap();
    let mut rctx =
        hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &sk_r, &enc, &h(&v, "info"))
            .unwrap();
    for (seq, e) in v["encryptions"].as_array().unwrap().iter().enumerate() {
        let pt = rctx
            .open(&h(e, "ct"), &h(e, "aad"))
            .unwrap_or_else(|_| panic!("open seq {seq}"));
        assert_eq!(pt, h(e, "pt"));
    }
    for x in v["exports"].as_array().unwrap() {
        let mut out = vec![0u8; x["L"].as_u64().unwrap() as usize];
        rctx.export(&h(x, "exporter_context"), &mut out).unwrap();
        assert_eq!(out, h(x, "exported_value"));
    }
}

#[test]
fn crate_seal_wrappers_reproduce_first_vector_encryption() {
    let v = vector();
    let e0 = &v["encryptions"][0];
    let pk_r: [u8; 32] = h(&v, "pkRm").try_into().unwrap();
    // seal_with: single-shot base mode = first encryption (seq 0) of the context.
    let blob = seal::seal_with(
        &pk_r,
        &h(&v, "info"),
        &h(e0, "aad"),
        &h(e0, "pt"),
        &mut FixedRng(h(&v, "ikmE")),
    )
    .unwrap();
    let mut expected = h(&v, "enc");
    expected.extend_from_slice(&h(e0, "ct"));
    assert_eq!(blob, expected);
    // Sealer (what the host uses for results) gives the same bytes.
    let s = seal::Sealer::new(&pk_r, &h(&v, "info"), &mut FixedRng(h(&v, "ikmE"))).unwrap();
    assert_eq!(s.seal(&h(e0, "pt"), &h(e0, "aad")).unwrap(), expected);
    // open: the receiver key opens it; a changed aad or info does not.
    let kp = seal::X25519Keypair::from_secret_bytes(&h(&v, "skRm").try_into().unwrap()).unwrap();
    assert_eq!(kp.public_bytes(), pk_r);
    assert_eq!(
        seal::open(&kp.secret, &h(&v, "info"), &h(e0, "aad"), &expected).unwrap(),
        h(e0, "pt")
    );
    assert!(seal::open(&kp.secret, &h(&v, "info"), b"Count-1", &expected).is_err());
    assert!(seal::open(&kp.secret, b"other info", &h(e0, "aad"), &expected).is_err());
}
