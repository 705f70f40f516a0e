//! The encapsulation pipeline's path selection (`encap_select`) on its own,
//! against `offcard_net::path::Selector` (the reference the whole pipeline
//! is checked with): random picks of several tenants with every policy,
//! bad-path masks (none, some, all) and idle gaps around the flowlet gap,
//! over a small hash space so flows share and revisit slots; every entropy
//! value and both events agree pick for pick. Also the flow-table clear
//! after reset, and rust-hdl's simulator against Verilator.

use offcard_hdl::encap::select::EncapSelect;
use offcard_net::path::{PathTable, Policy, Selector};
use offcard_regs::encap;
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};

const FLOW_TABLE_WORDS: u64 = 1024;

/// Wait out the clear after reset: `clearing` is high from reset on, for
/// one cycle per flow-table word. Returns the cycles it took.
fn wait_clear(b: &mut dyn BlockSim) -> u64 {
    for p in ["decide", "path_write"] {
        b.set(p, 0);
    }
    let mut n = 0;
    loop {
        b.eval();
        if b.get("clearing") == 0 {
            return n;
        }
        b.tick();
        n += 1;
        assert!(n < 5000, "the flow table clear never ends");
    }
}

fn program_paths(b: &mut dyn BlockSim, t: usize, paths: &PathTable) {
    for k in 0..4 {
        b.set("path_write", 1);
        b.set("path_tenant", t as u64);
        b.set("path_word", k as u64);
        b.set("path_data", paths.ports[2 * k] as u64 | (paths.ports[2 * k + 1] as u64) << 16);
        b.tick();
    }
    b.set("path_write", 0);
}

/// One pick as the header stage makes it: present the frame, decide two
/// cycles later (slot read, start registered), read the entropy value the
/// cycle after. Returns (port,
/// repicked, avoided).
fn pick(b: &mut dyn BlockSim, t: usize, policy: Policy, bad: u8, hash: u32, now: u32) -> (u16, bool, bool) {
    b.set("tenant", t as u64);
    b.set("hash", (hash & 0x1FF) as u64);
    b.set("frame_time", now as u64);
    b.set("policy", policy.code() as u64);
    b.set("gap", policy.gap() as u64);
    b.set("bad", bad as u64);
    b.set("decide", 0);
    b.tick();
    b.tick();
    b.set("decide", 1);
    b.eval();
    let events = (b.get("ev_repick") != 0, b.get("ev_avoided") != 0);
    b.tick();
    b.set("decide", 0);
    b.eval();
    // No event without a decision.
    assert_eq!((b.get("ev_repick"), b.get("ev_avoided")), (0, 0));
    (b.get("port") as u16, events.0, events.1)
}

/// Random picks against the reference. Returns (picks, repicks, avoided).
fn random_picks(b: &mut dyn BlockSim, seed: u64, n: usize) -> (usize, usize, usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let gap = 40;
    let policies = [Policy::PerFlow, Policy::Flowlet { gap_cycles: gap }, Policy::Spray, Policy::Flowlet { gap_cycles: 0 }];
    let mut tables: Vec<PathTable> = (0..4).map(|t| PathTable::spread(7 * t as u16 + 1)).collect();
    // Tenants 14 and 15 too: the top bits of the slot address.
    tables.push(PathTable::spread(99));
    tables.push(PathTable::spread(123));
    let tenant_ids = [0usize, 1, 2, 3, 14, 15];
    for (i, t) in tenant_ids.iter().enumerate() {
        program_paths(b, *t, &tables[i]);
    }
    let mut sel = Selector::default();
    let mut now = 5u32;
    let (mut repicks, mut avoided) = (0, 0);
    for i in 0..n {
        let k = rng.gen_range(0..tenant_ids.len());
        let t = tenant_ids[k];
        let policy = policies[k % policies.len()];
        // Bad masks change now and then: none, random, all bad.
        if rng.gen_bool(0.05) {
            tables[k].bad = match rng.gen_range(0..4) {
                0 => 0,
                1 => 0xFF,
                _ => rng.gen(),
            };
        }
        // A few flows per tenant, so slots are revisited; hash bits above 8
        // must not matter.
        let hash = rng.gen_range(0..24u32) * 0x15 | rng.gen::<u32>() << 9;
        let want = sel.pick(t, policy, &tables[k], hash, now);
        let got = pick(b, t, policy, tables[k].bad, hash, now);
        assert_eq!(got, (want.port, want.repicked, want.avoided_bad), "pick {i}: tenant {t} {policy:?} hash {hash:#x} now {now}");
        repicks += want.repicked as usize;
        avoided += want.avoided_bad as usize;
        // Time moves on by the cycles a pick takes, sometimes by more than
        // the gap, and wraps around 2^32 once.
        now = now.wrapping_add(2 + if rng.gen_bool(0.3) { rng.gen_range(0..3 * gap) } else { 0 });
        if i == n / 2 {
            now = u32::MAX - 200;
        }
    }
    (n, repicks, avoided)
}

#[test]
fn picks_agree_with_the_reference_selector() {
    let mut b = VerilatedBlock::new("encap_select");
    // The clear after reset: one cycle per flow-table word (the model was
    // in reset for four cycles and started clearing in the first).
    let n = wait_clear(&mut b);
    assert!(n + 4 >= FLOW_TABLE_WORDS && n <= FLOW_TABLE_WORDS, "clear took {n} cycles after reset");
    let (_, repicks, avoided) = random_picks(&mut b, 1, 6000);
    assert!(repicks > 100 && avoided > 100, "{repicks} flowlet repicks, {avoided} bad paths avoided");
}

/// Flow state left over from before a reset is gone: the clear writes every
/// slot, so the first picks after it behave as on a fresh table.
#[test]
fn reset_clears_the_flow_table() {
    let mut b = VerilatedBlock::new("encap_select");
    wait_clear(&mut b);
    random_picks(&mut b, 2, 500);
    b.set("reset", 1);
    b.tick();
    b.set("reset", 0);
    wait_clear(&mut b);
    // Against a fresh reference selector: a slot left over from before the
    // reset would give another offset (spray, flowlet) and fail the picks.
    random_picks(&mut b, 3, 500);
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let ((n, repicks, avoided), cycles) = rusthdl_vs_verilator::<EncapSelect, _>(|b| {
        wait_clear(b);
        random_picks(b, 4, 400)
    });
    assert!(n == 400 && repicks > 5 && avoided > 5 && cycles > 2 * 400, "{repicks} repicks, {avoided} avoided, {cycles} cycles");
    // The register layout the path-table port follows.
    assert_eq!(encap::T_PATHS / 4, encap::T_CONTEXT_DWS);
}
