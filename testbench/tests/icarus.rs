//! The generated Verilog in an event-driven simulator: Icarus Verilog runs
//! the whole card, and each block verilated on its own, with the per-cycle
//! stimulus a Verilator run saw, and every output agrees cycle by cycle. A
//! wall-clock limit turns a hang into a failure.

use offcard_driver::dma::{DmaCard, DmaConfig, Descriptor};
use offcard_driver::{Card, CardTransport};
use offcard_sim::{BlockSim, CardInputs, CardModel, CardOutputs, Recording, SimTransport, VerilatedBlock};
use offcard_testbench::icarus::{self, Values};
use offcard_testbench::tlp_gen::TlpGen;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::time::Duration;

fn icarus() -> offcard_toolchain::Icarus {
    // Once per test binary (the tests run in parallel threads).
    static ICARUS: std::sync::OnceLock<offcard_toolchain::Icarus> = std::sync::OnceLock::new();
    ICARUS
        .get_or_init(|| offcard_toolchain::find_or_install_icarus(&mut |m| eprintln!("icarus: {m}")).expect("Icarus Verilog"))
        .clone()
}

fn input_value(i: &CardInputs, port: &str) -> u128 {
    (match port {
        "reset" => i.reset as u64,
        "rx_data" => i.rx_data,
        "rx_keep" => i.rx_keep as u64,
        "rx_sop" => i.rx_sop as u64,
        "rx_eop" => i.rx_eop as u64,
        "rx_valid" => i.rx_valid as u64,
        "tx_ready" => i.tx_ready as u64,
        "net_rx_data" => i.net_rx_data,
        "net_rx_bytes" => i.net_rx_bytes as u64,
        "net_rx_last" => i.net_rx_last as u64,
        "net_rx_valid" => i.net_rx_valid as u64,
        "net_tx_ready" => i.net_tx_ready as u64,
        other => panic!("the card has an input {other} the C ABI does not drive"),
    }) as u128
}

fn output_value(o: &CardOutputs, port: &str) -> u128 {
    (match port {
        "rx_ready" => o.rx_ready as u64,
        "tx_data" => o.tx_data,
        "tx_keep" => o.tx_keep as u64,
        "tx_sop" => o.tx_sop as u64,
        "tx_eop" => o.tx_eop as u64,
        "tx_valid" => o.tx_valid as u64,
        "net_tx_data" => o.net_tx_data,
        "net_tx_bytes" => o.net_tx_bytes as u64,
        "net_tx_last" => o.net_tx_last as u64,
        "net_tx_valid" => o.net_tx_valid as u64,
        "net_rx_ready" => o.net_rx_ready as u64,
        other => panic!("the card has an output {other} the C ABI does not sample"),
    }) as u128
}

/// The whole card: enumeration, BAR sizing, register traffic, MSI, a DMA
/// copy with write records, a frame out through encapsulation and one in
/// through decapsulation, then a random TLP program (malformed TLPs
/// included), as the root-complex model presented them to Verilator.
#[test]
fn whole_card_in_icarus_matches_verilator_cycle_by_cycle() {
    // The card starts in reset, as the C ABI's model does (4 cycles).
    let mut rec = Recording::new(CardModel::new());
    for _ in 0..4 {
        rec.log.push((CardInputs { reset: 1, ..Default::default() }, CardOutputs::default()));
    }
    let t = SimTransport::with_card(rec, 5, 4 << 20).unwrap();
    let mut card = Card::open(t).unwrap();
    card.scratch_test().unwrap();
    assert!(card.fire_msi(Duration::from_micros(50)).unwrap());
    let mut dma = DmaCard::new(card, DmaConfig { ring_log2: 3, wrec_log2: 4, ..Default::default() }).unwrap();
    let mut src = dma.transport().alloc_dma(4096).unwrap();
    let dst = dma.transport().alloc_dma(4096).unwrap();
    src.write(0, &(0..4096).map(|i| (i * 5) as u8).collect::<Vec<_>>());
    dma.post(0, Descriptor { src: src.iova + 3, dst: dst.iova + 9, len: 1500, cookie: 7 }).unwrap();
    assert_eq!(dma.complete_all(Duration::from_millis(1)).unwrap()[0].status, 0);
    // A frame out through encapsulation and one in through decapsulation.
    {
        use offcard_driver::NetCtl;
        use offcard_net::path::Policy;
        use offcard_sim::SimNetwork;
        let tt = offcard_testbench::encap_bench::test_tenant(1, Policy::Spray);
        NetCtl::new(&mut dma.card).program_tenant(1, &tt.context()).unwrap();
        NetCtl::new(&mut dma.card).map_vni(1, tt.ctx.vni, 1, 2).unwrap();
        dma.set_queue_mode(1, offcard_regs::dma::QMODE_TX).unwrap();
        dma.set_queue_mode(2, offcard_regs::dma::QMODE_RX).unwrap();
        dma.post_rx_buffers(2, 2, 2048).unwrap();
        let inner: Vec<u8> = (0..300).map(|i| (i * 7) as u8).collect();
        dma.send_frame(1, 1, &inner).unwrap();
        dma.complete_all(Duration::from_millis(1)).unwrap();
        dma.transport().run_cycles(400);
        let sent = dma.transport().take_tx_frames();
        assert_eq!(sent.len(), 1, "the frame left the card");
        dma.transport().inject_rx_frame(&sent[0]);
        let mut got = vec![];
        for _ in 0..50 {
            got.extend(dma.poll_rx(2).unwrap());
            if !got.is_empty() {
                break;
            }
            dma.wait(Duration::from_micros(20)).unwrap();
        }
        assert_eq!(got, vec![(1u8, inner)], "the frame came back through decapsulation");
    }
    // Random legal and malformed TLPs, drained between bursts.
    let mut rng = SmallRng::seed_from_u64(19);
    let bar0 = dma.transport().info.bar0;
    let mut gen = TlpGen::new(bar0, 0, 0x0100);
    for _ in 0..60 {
        let beats = gen.any(&mut rng);
        dma.transport().rc.send_beats(&beats);
        dma.transport().rc.drain(30);
    }
    let mut t = dma.card.transport;
    let log = std::mem::take(&mut t.rc.card.log);
    let verilog = offcard_hdl::card_verilog();
    let top = offcard_hdl::TOP_MODULE;
    let ports = icarus::ports(&verilog, top);
    let ins: Vec<_> = ports.iter().filter(|p| p.input && p.name != "clock").collect();
    let outs: Vec<_> = ports.iter().filter(|p| !p.input).collect();
    let stim: Vec<Values> = log.iter().map(|(i, _)| ins.iter().map(|p| input_value(i, &p.name)).collect()).collect();
    // The first cycles' outputs (in reset) are not compared: the ABI's own
    // reset cycles were not sampled.
    let want: Vec<Values> = log.iter().map(|(_, o)| outs.iter().map(|p| output_value(o, &p.name)).collect()).collect();
    eprintln!("whole card: {} cycles of stimulus", stim.len());
    // Every block's module has its own name: all of them compile together
    // with the card in one Icarus run (no module defined twice).
    let all: String = std::iter::once(verilog.clone()).chain(offcard_hdl::SIM_BLOCKS.iter().map(|b| offcard_hdl::block_verilog(b).unwrap())).collect();
    icarus::run(&icarus(), &all, top, &stim[..50], &icarus::work_dir("card-and-blocks"), Duration::from_secs(120))
        .expect("the card and every block compile together");
    let got = icarus::run(&icarus(), &verilog, top, &stim, &icarus::work_dir("card"), Duration::from_secs(600)).unwrap();
    icarus::compare(&verilog, top, &got[4..], &want[4..]).unwrap();
    // rust-hdl's own output, without the single-assignment pass, stops
    // simulated time at the card's first TLP (blocks that read each other's
    // outputs wake each other forever): the harness turns that into an error.
    let raw = offcard_hdl::card_verilog_raw();
    let e = icarus::run(&icarus(), &raw, "top", &stim[..400], &icarus::work_dir("card-raw"), Duration::from_secs(20))
        .err()
        .expect("the raw rust-hdl Verilog was expected to hang in Icarus");
    assert!(e.contains("hung"), "{e}");
    let _ = std::fs::remove_dir_all(icarus::work_dir("card-raw"));
}

/// Each block verilated on its own: random inputs every cycle (reset held
/// for the first four), the same in both simulators.
#[test]
fn every_verilated_block_in_icarus_matches_verilator() {
    let ic = icarus();
    for name in offcard_hdl::SIM_BLOCKS {
        let verilog = offcard_hdl::block_verilog(name).unwrap();
        let top = offcard_hdl::module_name(name);
        let ports = icarus::ports(&verilog, &top);
        let ins: Vec<_> = ports.iter().filter(|p| p.input && p.name != "clock").cloned().collect();
        let outs: Vec<_> = ports.iter().filter(|p| !p.input).cloned().collect();
        // The Verilated block comes out of `new` after four cycles in reset
        // with every other input 0: Icarus gets the same four first.
        let mut b = VerilatedBlock::new(name);
        let mut rng = SmallRng::seed_from_u64(0x1ca5);
        let reset_cycles: Vec<Values> = (0..4).map(|_| ins.iter().map(|p| (p.name == "reset") as u128).collect()).collect();
        let (mut stim, mut want) = (reset_cycles, vec![vec![0u128; outs.len()]; 4]);
        for _ in 0..3000 {
            let v: Values = ins
                .iter()
                .map(|p| match p.name.as_str() {
                    "reset" => 0,
                    _ if p.width >= 64 => rng.gen::<u64>() as u128,
                    _ => (rng.gen::<u64>() & ((1u64 << p.width) - 1)) as u128,
                })
                .collect();
            // Verilog's `rx$data` (a bundle's member) is the model's `rx_data`.
            for (p, x) in ins.iter().zip(&v) {
                b.set(&offcard_hdl::bus::port_name(&p.name), *x as u64);
            }
            b.eval();
            want.push(outs.iter().map(|p| b.get(&offcard_hdl::bus::port_name(&p.name)) as u128).collect::<Values>());
            b.tick();
            stim.push(v);
        }
        let got = icarus::run(&ic, &verilog, &top, &stim, &icarus::work_dir(name), Duration::from_secs(300))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        icarus::compare(&verilog, &top, &got[4..], &want[4..]).unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!("{name}: {} cycles agree", stim.len());
    }
}
