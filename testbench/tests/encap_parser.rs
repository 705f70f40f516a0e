//! The encapsulation pipeline's parser (`encap_parser`) on its own: random
//! inner frames of every kind (VLAN or not; IPv4 with and without options,
//! IPv6, non-IP; TCP, UDP, ICMP, GRE; runts padded to 60 bytes; IP frames
//! too short to hold their ports) are captured the way the writer writes
//! them, taken, and their RSS input shifted out, while the next frame is
//! already being captured. Checked against the reference: the RSS input is
//! `FlowKey::bytes()` of `offcard_net::geneve::flow_key` (the MAC pair when
//! that finds no flow), the key is `offcard_net::tx::mapping_key`, and the
//! frame's tenant, length and time are the capture's. Also rust-hdl's
//! simulator against Verilator.

use offcard_hdl::encap::parser::EncapParser;
use offcard_net::geneve::flow_key;
use offcard_net::tx::{mapping_key, normalize};
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_bench::random_frame;
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::VecDeque;

/// A frame as the parser sees it: the inner frame as sent (normalized).
struct Frame {
    inner: Vec<u8>,
    tenant: u64,
}

/// The RSS input the reference hashes, zero-padded to the five words the
/// parser shifts out.
fn rss_input(inner: &[u8]) -> Vec<u8> {
    let mut v = flow_key(inner).map_or_else(|| inner[..12].to_vec(), |k| k.bytes());
    v.resize(40, 0);
    v
}

/// Capture writes of one frame, as the writer makes them: (index, word),
/// word 0 first, up to index 10 or the frame's last ring word.
fn capture_words(inner: &[u8]) -> Vec<(u64, u64)> {
    let ring_words = (inner.len() + 2).div_ceil(8);
    (0..ring_words.min(11))
        .map(|i| {
            let mut w = [0u8; 8];
            let lo = (8 * i).min(inner.len());
            let hi = (8 * i + 8).min(inner.len());
            w[..hi - lo].copy_from_slice(&inner[lo..hi]);
            (i as u64, u64::from_le_bytes(w))
        })
        .collect()
}

/// Capture the frames one after another (with random gaps between the
/// writes, as when the input stalls) while a stand-in header stage takes
/// each finished capture after a random wait and shifts its RSS input out
/// over the next five cycles. Returns the number of frames checked.
fn run(b: &mut dyn BlockSim, frames: &[Frame], seed: u64) -> usize {
    let mut rng = SmallRng::seed_from_u64(seed);
    // The writer: pending capture writes of the frame being captured.
    let mut writes: VecDeque<(u64, u64)> = VecDeque::new();
    let (mut next, mut started) = (0usize, vec![]);
    // The header stage: the frame taken and its tuple words so far.
    let mut taken: Option<(usize, Vec<u8>)> = None;
    let mut checked = 0;
    let mut now = 1000u64;
    let mut take_wait = 0;
    for p in ["cap_first", "cap_write", "cap_done", "take", "shift"] {
        b.set(p, 0);
    }
    for cycle in 0u64.. {
        b.set("now", now & 0xFFFF_FFFF);
        now += 1;
        for p in ["cap_first", "cap_write", "cap_done", "take", "shift"] {
            b.set(p, 0);
        }
        b.set("cap_data", rng.gen());
        b.set("cap_index", rng.gen_range(0..16));
        b.set("frame_tenant", rng.gen_range(0..16));
        b.set("frame_len", rng.gen_range(0..1 << 14));
        b.eval();
        let full = b.get("full") != 0;
        // The writer starts a frame when the capture is free.
        if writes.is_empty() && !full && next < frames.len() && rng.gen_bool(0.5) {
            writes.extend(capture_words(&frames[next].inner));
        }
        if let Some(&(i, w)) = writes.front() {
            if rng.gen_bool(0.7) {
                writes.pop_front();
                b.set("cap_write", 1);
                b.set("cap_index", i);
                b.set("cap_data", w);
                if i == 0 {
                    started.push(now - 1);
                    b.set("cap_first", 1);
                    b.set("frame_tenant", frames[next].tenant);
                    b.set("frame_len", frames[next].inner.len() as u64);
                }
                if writes.is_empty() {
                    b.set("cap_done", 1);
                    next += 1;
                }
            }
        }
        // The header stage: shift out the frame taken, take the next one.
        if let Some((k, words)) = taken.as_mut() {
            words.extend(b.get("tuple_word").to_le_bytes());
            if words.len() == 40 {
                assert_eq!(*words, rss_input(&frames[*k].inner), "frame {k}: RSS input");
                checked += 1;
                taken = None;
            } else {
                b.set("shift", 1);
            }
        } else if full {
            if take_wait == 0 {
                let k = checked;
                let f = &frames[k];
                assert_eq!(b.get("tenant"), f.tenant, "frame {k}: tenant");
                assert_eq!(b.get("len"), f.inner.len() as u64, "frame {k}: length");
                assert_eq!(b.get("frame_time"), started[k] & 0xFFFF_FFFF, "frame {k}: time of its first beat");
                let key = mapping_key(&f.inner);
                assert_eq!(b.get("is_ip") != 0, key.is_some(), "frame {k}: is IP");
                if let Some(key) = key {
                    assert_eq!(b.get("map_key") as u32, key, "frame {k}: mapping key");
                }
                b.set("take", 1);
                taken = Some((k, vec![]));
                take_wait = rng.gen_range(0..4);
            } else {
                take_wait -= 1;
            }
        }
        b.tick();
        if checked == frames.len() {
            b.eval();
            assert_eq!(b.get("full"), 0);
            break;
        }
        assert!(cycle < 200_000, "stuck after {checked} frames");
    }
    checked
}

fn frames(seed: u64, n: usize) -> Vec<Frame> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            // Mostly short frames: the interesting bytes are in the first 88.
            let len = match rng.gen_range(0..10) {
                0 => rng.gen_range(1..60),
                1 => rng.gen_range(100..1500),
                _ => rng.gen_range(60..100),
            };
            let data = random_frame(&mut rng, len);
            Frame { inner: normalize(&data, data.len()), tenant: rng.gen_range(0..16) }
        })
        .collect()
}

#[test]
fn rss_input_and_mapping_key_match_the_reference() {
    let fs = frames(1, 3000);
    // The kinds the reference tells apart all occur.
    let kinds = |f: &&Frame| (flow_key(&f.inner).map(|k| (k.v6, k.proto == 6 || k.proto == 17)), mapping_key(&f.inner).is_some());
    let mut seen: Vec<_> = fs.iter().map(|f| kinds(&f)).collect();
    seen.sort();
    seen.dedup();
    assert!(seen.len() >= 6, "frame kinds: {seen:?}");
    // IP frames too short to hold their ports (they hash the MAC pair).
    assert!(fs.iter().any(|f| flow_key(&f.inner).is_none() && mapping_key(&f.inner).is_some()));
    let mut b = VerilatedBlock::new("encap_parser");
    assert_eq!(run(&mut b, &fs, 2), fs.len());
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let fs = frames(3, 150);
    let (n, cycles) = rusthdl_vs_verilator::<EncapParser, _>(|b| run(b, &fs, 4));
    assert!(n == 150 && cycles > 1500, "{n} frames, {cycles} cycles");
}
