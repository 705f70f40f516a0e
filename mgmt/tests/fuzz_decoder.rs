//! Bounded fuzzing of every decoder, run in normal `cargo test`: a seeded
//! random-bytes + structure-aware mutation loop. Asserts no panic, that any
//! accepted input is canonical (re-encodes to the same bytes), and that no
//! mutated request ever gets an operation to run. The unbounded version is
//! the cargo-fuzz target in `mgmt/fuzz/`.

mod common;
use common::*;
use offcard_mgmt::client::{prepare, RequestOptions};
use offcard_mgmt::envelope::{verify_envelope, ResponsePayload};
use offcard_mgmt::protocol::{Op, OpOutput, Params, Request};
use offcard_mgmt::{AuthorizedKeys, Outcome};

/// xorshift64*: deterministic, so failures replay.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u8; 8] = [0x00, 0x01, 0x10, 0x3f, 0x40, 0x7f, 0x80, 0xff];

fn mutate(rng: &mut Rng, seed: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seed.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = v.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(8)];
            }
            2 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            3 => {
                let n = rng.below(len + 1);
                v.truncate(n);
            }
            4 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(8);
                for _ in 0..n {
                    v.insert(i, rng.next() as u8);
                }
            }
            5 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(len - i + 1).min(16);
                v.drain(i..i + n);
            }
            6 if len >= 4 => {
                // Overwrite a 4-byte window with a large/small big-endian length.
                let i = rng.below(len - 3);
                let val: u32 = [
                    0,
                    1,
                    0xffff,
                    0x10000,
                    0x7fff_ffff,
                    0xffff_ffff,
                    rng.next() as u32,
                ][rng.below(7)];
                v[i..i + 4].copy_from_slice(&val.to_be_bytes());
            }
            7 => {
                // Splice with another corpus entry.
                let o = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(o.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&o[from..]);
            }
            8 => v.extend((0..rng.below(32)).map(|_| rng.next() as u8)),
            _ => {
                v = (0..rng.below(256)).map(|_| rng.next() as u8).collect();
            }
        }
    }
    v
}

fn corpus(f: &Fixture) -> Vec<Vec<u8>> {
    let params = [
        Params::ReadCounters,
        Params::ProgramWayMask {
            tag: 3,
            mask: 0xff00,
        },
        Params::ProgramPathTable {
            tenant: 9,
            entries: vec![1, 2, 3, 4, 5],
        },
        Params::ReadWriteRecords { max: 10 },
        Params::ReadHostMemory {
            addr: 0x1000_0000,
            len: 64,
        },
        Params::ReadTagCounters { tag: 5 },
    ];
    let mut c = Vec::new();
    for p in &params {
        c.push(
            prepare(&f.caller, p, &RequestOptions::default())
                .unwrap()
                .bytes,
        );
        let sealed = RequestOptions {
            seal_params_to: Some(f.host_x25519()),
            ..Default::default()
        };
        c.push(prepare(&f.caller, p, &sealed).unwrap().bytes);
    }
    c
}

#[test]
fn request_decoder_survives_100k_mutations() {
    let f = fixture();
    let corpus = corpus(&f);
    let mut rng = Rng(0x0ffc_a4d5_eed0_0001);
    let mut accepted = 0usize;
    for i in 0..100_000 {
        let seed = &corpus[i % corpus.len()];
        let input = mutate(&mut rng, seed, &corpus);
        if let Ok(req) = Request::decode(&input) {
            accepted += 1;
            assert_eq!(req.encode(), input, "accepted a non-canonical request");
            if !corpus.contains(&input) {
                assert!(
                    req.verify_signature().is_err(),
                    "mutated request still verifies"
                );
            }
        }
    }
    // The mutator must exercise the deep paths, not only fail on the magic.
    assert!(accepted > 1000, "only {accepted} mutated inputs decoded");
}

#[test]
fn host_never_runs_a_mutated_request() {
    let f = fixture();
    let corpus = corpus(&f);
    let mut rng = Rng(0x5eed_0000_0000_0002);
    for i in 0..20_000 {
        let seed = &corpus[i % corpus.len()];
        let input = mutate(&mut rng, seed, &corpus);
        if corpus.contains(&input) {
            continue; // a splice may reproduce another valid corpus request exactly
        }
        let (resp, outcome) = f.host.process(&input);
        assert!(
            matches!(outcome, Outcome::Rejected(_)),
            "mutated input #{i} accepted: {outcome:?}"
        );
        verify_envelope(&f.host_vk(), &resp).expect("rejections are signed envelopes");
    }
    assert_eq!(f.backend.calls(), vec![]);
}

#[test]
fn response_and_result_decoders_survive_mutations() {
    let f = fixture();
    let mut responses = Vec::new();
    let mut outputs = Vec::new();
    for p in [
        Params::ReadCounters,
        Params::ReadHostMemory {
            addr: 0x1000_0000,
            len: 48,
        },
    ] {
        let r = prepare(&f.caller, &p, &RequestOptions::default()).unwrap();
        responses.push(f.host.handle(&r.bytes));
    }
    let r = prepare(
        &f.stranger,
        &Params::ReadCounters,
        &RequestOptions::default(),
    )
    .unwrap();
    responses.push(f.host.handle(&r.bytes));
    outputs.push(OpOutput::Counters(vec![("a".into(), 1), ("bb".into(), u64::MAX)]).encode());
    outputs.push(OpOutput::Bytes(vec![1, 2, 3]).encode());
    outputs.push(OpOutput::Failed("nope".into()).encode());
    outputs.push(OpOutput::Done.encode());
    let payloads: Vec<Vec<u8>> = responses
        .iter()
        .map(|r| verify_envelope(&f.host_vk(), r).unwrap().encode())
        .collect();
    let mut rng = Rng(0x5eed_0000_0000_0003);
    for i in 0..20_000 {
        let seed = &responses[i % responses.len()];
        let input = mutate(&mut rng, seed, &responses);
        if !responses.contains(&input) {
            assert!(
                verify_envelope(&f.host_vk(), &input).is_err(),
                "mutated envelope verified"
            );
        }
        let pin = mutate(&mut rng, &payloads[i % payloads.len()], &payloads);
        if let Ok(p) = ResponsePayload::decode(&pin) {
            assert_eq!(p.encode(), pin);
        }
        let oin = mutate(&mut rng, &outputs[i % outputs.len()], &outputs);
        if let Ok(o) = OpOutput::decode(&oin) {
            assert_eq!(o.encode(), oin, "non-canonical output accepted");
        }
        for op in Op::ALL {
            let pin = mutate(&mut rng, &oin, &outputs);
            if let Ok(p) = Params::decode(op, &pin) {
                assert_eq!(p.encode(), pin);
            }
        }
    }
}

#[test]
fn authorized_keys_parser_survives_garbage() {
    let f = fixture();
    let line =
        AuthorizedKeys::format_line(&f.caller.ed25519.verifying_key().to_bytes(), &Op::ALL, "x");
    let seeds = vec![
        line.clone().into_bytes(),
        format!("# c\n{line}\n\n").into_bytes(),
    ];
    let mut rng = Rng(0x5eed_0000_0000_0004);
    for i in 0..5_000 {
        let input = mutate(&mut rng, &seeds[i % 2], &seeds);
        let _ = AuthorizedKeys::parse(&String::from_utf8_lossy(&input));
    }
}
