//! The card in rust-hdl's own simulator, clocked the same way as the
//! Verilator model, for differential tests (rust-hdl's simulator and its
//! Verilog have disagreed before, rust-hdl issues #22 and #47) and for the
//! speed comparison in `offcard bench sim`.

use offcard_hdl::card::OffcardTop;
use offcard_hdl::rust_hdl::prelude::*;
use offcard_sim::{CardInputs, CardOutputs, CardSim};

pub struct RustHdlCard {
    uut: OffcardTop,
    cycles: u64,
}

impl RustHdlCard {
    pub fn new() -> Self {
        let mut uut = OffcardTop::default();
        uut.connect_all();
        let mut c = RustHdlCard { uut, cycles: 0 };
        let r = CardInputs { reset: 1, ..Default::default() };
        for _ in 0..4 {
            c.cycle(&r);
        }
        c
    }

    fn settle(&mut self) {
        assert!(simulate(&mut self.uut, 1000), "rust-hdl simulation did not settle");
    }

    /// Same contract as `CardModel::cycle`: apply inputs with the clock low,
    /// sample the outputs, then raise the clock.
    pub fn cycle(&mut self, i: &CardInputs) -> CardOutputs {
        let u = &mut self.uut;
        u.rx_data.next = i.rx_data.to_bits();
        u.rx_keep.next = (i.rx_keep as u64).to_bits();
        u.rx_sop.next = i.rx_sop != 0;
        u.rx_eop.next = i.rx_eop != 0;
        u.rx_valid.next = i.rx_valid != 0;
        u.tx_ready.next = i.tx_ready != 0;
        u.reset.next = i.reset != 0;
        u.net_rx_data.next = i.net_rx_data.to_bits();
        u.net_rx_bytes.next = (i.net_rx_bytes as u64).to_bits();
        u.net_rx_last.next = i.net_rx_last != 0;
        u.net_rx_valid.next = i.net_rx_valid != 0;
        u.net_tx_ready.next = i.net_tx_ready != 0;
        u.clock.next = Clock { clk: false };
        self.settle();
        let u = &self.uut;
        let out = CardOutputs {
            tx_data: u.tx_data.val().to_u64(),
            tx_keep: u.tx_keep.val().to_u64() as u8,
            tx_sop: u.tx_sop.val() as u8,
            tx_eop: u.tx_eop.val() as u8,
            tx_valid: u.tx_valid.val() as u8,
            rx_ready: u.rx_ready.val() as u8,
            net_tx_data: u.net_tx_data.val().to_u64(),
            net_tx_bytes: u.net_tx_bytes.val().to_u64() as u8,
            net_tx_last: u.net_tx_last.val() as u8,
            net_tx_valid: u.net_tx_valid.val() as u8,
            net_rx_ready: u.net_rx_ready.val() as u8,
        };
        self.uut.clock.next = Clock { clk: true };
        self.settle();
        self.cycles += 1;
        out
    }

    pub fn cycles(&self) -> u64 {
        self.cycles
    }
}

impl Default for RustHdlCard {
    fn default() -> Self {
        Self::new()
    }
}

impl CardSim for RustHdlCard {
    fn cycle(&mut self, inp: &CardInputs) -> CardOutputs {
        RustHdlCard::cycle(self, inp)
    }
    fn cycles(&self) -> u64 {
        self.cycles
    }
}

/// Run `f` on a thread with a stack big enough for rust-hdl's simulator of
/// the whole card (its update recursion outgrows a test thread's 2 MiB
/// since the card holds the virtqueue engine); its panic is passed on.
pub fn with_big_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match std::thread::Builder::new().stack_size(256 << 20).spawn(f).expect("spawn a simulator thread").join() {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e),
    }
}
