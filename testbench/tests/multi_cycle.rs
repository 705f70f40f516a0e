//! Multi-cycle stepping is cycle-exact: while the root complex has nothing
//! to send it clocks the card in runs (`RootComplex::advance`, one
//! `CardModel::run_until_beat` FFI call until a beat crosses the card's
//! boundary), and must see exactly what it sees when every cycle is a
//! `step` of its own (`single_step`, the way it always clocked before).
//! The same driver program runs twice on traced models, once each way; the
//! cycle counts after every phase, the TLPs the card sent, the memory
//! writes with their cycles, the frames and the root port's counters must
//! agree, and so must the two VCD waveforms (every signal of the card,
//! every cycle) byte for byte.

use offcard_driver::dma::{DmaCard, DmaConfig, Descriptor};
use offcard_driver::{Card, CardTransport, NetCtl};
use offcard_sim::{CardModel, RootComplex, SimNetwork, SimTransport};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, PartialEq)]
struct Seen {
    /// (what, card cycle after it)
    checkpoints: Vec<(String, u64)>,
    tlps: Vec<Vec<u32>>,
    writes: Vec<(u64, u64, u64, u32)>,
    stats: String,
    frames: Vec<(u8, Vec<u8>)>,
    card_errors: Vec<String>,
}

fn program(single_step: bool, vcd: &Path) -> (Seen, (u64, u64)) {
    let mut model = CardModel::new_traced();
    model.trace_open(vcd).unwrap();
    let mut rc = RootComplex::with_card(model, 11, 8 << 20).unwrap();
    rc.single_step = single_step;
    rc.seen = Some(vec![]);
    let mut t = SimTransport::with_root_complex(rc).unwrap();
    t.rc.write_log = Some(vec![]);
    let mut cp = vec![("enumerated".to_string(), t.rc.card.cycles())];
    let mut card = Card::open(t).unwrap();
    card.scratch_test().unwrap();
    assert!(card.fire_msi(Duration::from_micros(50)).unwrap());
    let mut mark = |card: &mut Card<SimTransport>, what: &str| {
        let c = card.transport.rc.card.cycles();
        cp.push((what.to_string(), c));
    };
    mark(&mut card, "scratch and MSI");
    // Waiting with nothing to do: a timed-out interrupt wait and idle cycles.
    assert!(!card.transport.wait_interrupt(Duration::from_micros(30)).unwrap());
    card.transport.run_cycles(5_000);
    mark(&mut card, "idle");
    // A completion that never comes (no request has tag 200): the timeout.
    card.transport.rc.timing.timeout_cycles = 700;
    assert!(card.transport.rc.wait_completion(200, "nothing").is_err());
    card.transport.rc.timing.timeout_cycles = offcard_sim::Timing::default().timeout_cycles;
    mark(&mut card, "completion timeout");
    // DMA copies: the card's reads wait out the host's read latency.
    let mut dma = DmaCard::new(card, DmaConfig { ring_log2: 4, wrec_log2: 6, ..Default::default() }).unwrap();
    let mut src = dma.transport().alloc_dma(16384).unwrap();
    let dst = dma.transport().alloc_dma(65536).unwrap();
    src.write(0, &(0..16384).map(|i| (i * 13 + 5) as u8).collect::<Vec<_>>());
    for (i, &(off, len)) in [(0u64, 64u32), (3, 1500), (128, 4096), (7, 9000), (0, 16384)].iter().enumerate() {
        dma.post(0, Descriptor { src: src.iova + off, dst: dst.iova + 8192 * i as u64 + off, len, cookie: i as u64 }).unwrap();
    }
    let done = dma.complete_all(Duration::from_millis(5)).unwrap();
    assert_eq!(done.len(), 5);
    assert!(done.iter().all(|c| c.status == 0), "{done:?}");
    mark(&mut dma.card, "DMA copies");
    // A slow host: the card waits out long read latencies with nothing else
    // to do, so runs end where a completion falls due.
    let latency = dma.transport().rc.timing.read_latency_cycles;
    dma.transport().rc.timing.read_latency_cycles = 1_500;
    dma.post(0, Descriptor { src: src.iova + 64, dst: dst.iova + 60_000, len: 2000, cookie: 9 }).unwrap();
    dma.post(0, Descriptor { src: src.iova + 5000, dst: dst.iova + 50_000, len: 300, cookie: 10 }).unwrap();
    assert_eq!(dma.complete_all(Duration::from_millis(5)).unwrap().len(), 2);
    dma.transport().rc.timing.read_latency_cycles = latency;
    mark(&mut dma.card, "DMA with a slow host");
    // A stream that stalls at random for a while: every cycle is a step.
    dma.transport().rc.timing.tx_stall = 0.3;
    dma.transport().rc.timing.rx_gap = 0.2;
    for i in 0..20 {
        dma.card.transport.bar0_write32(offcard_regs::REG_SCRATCH0 as u32, i).unwrap();
        assert_eq!(dma.card.transport.bar0_read32(offcard_regs::REG_SCRATCH0 as u32).unwrap(), i);
    }
    dma.transport().rc.timing.tx_stall = 0.0;
    dma.transport().rc.timing.rx_gap = 0.0;
    mark(&mut dma.card, "stalls");
    // A frame out through encapsulation and back in through decapsulation.
    let tt = offcard_testbench::encap_bench::test_tenant(1, offcard_net::path::Policy::Spray);
    NetCtl::new(&mut dma.card).program_tenant(1, &tt.context()).unwrap();
    NetCtl::new(&mut dma.card).map_vni(1, tt.ctx.vni, 1, 2).unwrap();
    dma.set_queue_mode(1, offcard_regs::dma::QMODE_TX).unwrap();
    dma.set_queue_mode(2, offcard_regs::dma::QMODE_RX).unwrap();
    dma.post_rx_buffers(2, 2, 2048).unwrap();
    let inner: Vec<u8> = (0..700).map(|i| (i * 7) as u8).collect();
    dma.send_frame(1, 1, &inner).unwrap();
    dma.complete_all(Duration::from_millis(1)).unwrap();
    dma.transport().run_cycles(600);
    let sent = dma.transport().take_tx_frames();
    assert_eq!(sent.len(), 1, "the frame left the card");
    dma.transport().inject_rx_frame(&sent[0]);
    let mut frames = vec![];
    for _ in 0..50 {
        frames.extend(dma.poll_rx(2).unwrap());
        if !frames.is_empty() {
            break;
        }
        dma.wait(Duration::from_micros(20)).unwrap();
    }
    assert_eq!(frames, vec![(1u8, inner)], "the frame came back through decapsulation");
    mark(&mut dma.card, "frame out and in");
    dma.transport().rc.drain(200);
    mark(&mut dma.card, "drained");
    let mut t = dma.card.transport;
    let seen = Seen {
        checkpoints: cp,
        tlps: t.rc.seen.take().unwrap(),
        writes: t.rc.write_log.take().unwrap(),
        stats: format!("{:?}", t.rc.stats),
        frames,
        card_errors: t.rc.card_errors.clone(),
    };
    t.rc.card.trace_close();
    (seen, t.rc.card.run_stats())
}

/// A VCD without its `$date` section (the one thing that differs between runs).
fn vcd_body(p: &Path) -> Vec<u8> {
    let text = std::fs::read(p).unwrap();
    let s = String::from_utf8_lossy(&text);
    let start = s.find("$date").unwrap_or(0);
    let end = s[start..].find("$end").map(|e| start + e + 4).unwrap_or(start);
    let mut v = text[..start].to_vec();
    v.extend_from_slice(&text[end..]);
    v
}

#[test]
fn multi_cycle_runs_match_single_cycles_signal_for_signal() {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let (a_vcd, b_vcd): (PathBuf, PathBuf) =
        (dir.join(format!("offcard-multi-{pid}-runs.vcd")), dir.join(format!("offcard-multi-{pid}-single.vcd")));
    let (runs, (calls, run_cycles)) = program(false, &a_vcd);
    let (single, (calls1, _)) = program(true, &b_vcd);
    assert_eq!(calls1, 0, "the single-step program made no multi-cycle call");
    let total = runs.checkpoints.last().unwrap().1;
    eprintln!("{total} cycles; {run_cycles} of them in {calls} multi-cycle calls");
    // The program spends most of its time waiting: the runs must carry it.
    assert!(run_cycles * 2 > total && calls * 4 < run_cycles, "{calls} calls ran {run_cycles} of {total} cycles");
    assert!(runs.card_errors.is_empty(), "{:?}", runs.card_errors);
    assert_eq!(runs, single);
    let (a, b) = (vcd_body(&a_vcd), vcd_body(&b_vcd));
    assert!(a.len() > 100_000, "the trace is too short to mean anything ({} bytes)", a.len());
    assert!(a == b, "the two waveforms differ ({} and {} bytes)", a.len(), b.len());
    std::fs::remove_file(&a_vcd).unwrap();
    std::fs::remove_file(&b_vcd).unwrap();
}
