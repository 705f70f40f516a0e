//! The encapsulation pipeline's Toeplitz stage (`encap_hash`) on its own:
//! against `offcard_net::hash::toeplitz` (itself checked against
//! Microsoft's RSS verification vectors) on random inputs of every RSS
//! length, fed 64 bits a step with idle cycles between the steps; and
//! rust-hdl's simulator against Verilator.

use offcard_hdl::encap::hash::EncapHash;
use offcard_net::hash::{rss_input_v4, toeplitz, RSS_KEY};
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};

/// Hash `input` (at most 36 bytes, the IPv6 RSS input) as the header stage
/// drives the block: `start`, then five steps of eight bytes (zero past the
/// input). Between steps the bench idles up to `max_idle` cycles with
/// garbage on `data`, which the block must ignore.
fn hash(b: &mut dyn BlockSim, rng: &mut SmallRng, input: &[u8], max_idle: u32) -> u32 {
    assert!(input.len() <= 36);
    let mut padded = input.to_vec();
    padded.resize(40, 0);
    b.set("step", 0);
    b.set("start", 1);
    b.set("data", rng.gen());
    b.tick();
    b.set("start", 0);
    for k in 0..5 {
        for _ in 0..rng.gen_range(0..=max_idle) {
            b.set("step", 0);
            b.set("data", rng.gen());
            b.tick();
        }
        b.set("step", 1);
        b.set("data", u64::from_le_bytes(padded[8 * k..8 * k + 8].try_into().unwrap()));
        b.tick();
    }
    b.set("step", 0);
    b.set("data", rng.gen());
    b.eval();
    b.get("hash") as u32
}

fn random_inputs(b: &mut dyn BlockSim, seed: u64, n: usize, max_idle: u32) -> usize {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut nonzero = 0;
    for i in 0..n {
        // The RSS lengths (IPv4 addresses, IPv4 with ports or the MAC
        // pair, IPv6 with ports), and any other length up to 36.
        let len = if i % 5 == 4 { rng.gen_range(0..=36) } else { [8, 12, 36][i % 3] };
        let input: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let got = hash(b, &mut rng, &input, max_idle);
        assert_eq!(got, toeplitz(&RSS_KEY, &input), "input {input:02x?}");
        nonzero += (got != 0) as usize;
    }
    nonzero
}

#[test]
fn random_inputs_hash_like_the_reference() {
    let mut b = VerilatedBlock::new("encap_hash");
    assert!(random_inputs(&mut b, 1, 2000, 3) > 1900);
    // Back to back (no idle step), as in the pipeline.
    random_inputs(&mut b, 2, 500, 0);
}

/// Microsoft's "Verifying the RSS Hash Calculation" IPv4 with TCP vectors.
#[test]
fn microsoft_rss_vectors() {
    let vectors = [
        ([161u8, 142, 100, 80], 1766u16, [66u8, 9, 149, 187], 2794u16, 0x51ccc178u32),
        ([65, 69, 140, 83], 4739, [199, 92, 111, 2], 14230, 0xc626b0ea),
        ([12, 22, 207, 184], 38024, [24, 19, 198, 95], 12898, 0x5c2b394a),
    ];
    let mut b = VerilatedBlock::new("encap_hash");
    let mut rng = SmallRng::seed_from_u64(3);
    for (dst, dport, src, sport, want) in vectors {
        assert_eq!(hash(&mut b, &mut rng, &rss_input_v4(src, dst, sport, dport), 2), want, "vector {dst:?}");
    }
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let (nonzero, cycles) = rusthdl_vs_verilator::<EncapHash, _>(|b| random_inputs(b, 4, 150, 2));
    assert!(nonzero > 140 && cycles > 1000, "{nonzero} hashes, {cycles} cycles");
}
