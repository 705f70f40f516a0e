//! The Verilated card and the reference model side by side: every beat goes
//! to both, and every TLP the card sends must be the one the model predicts.

use crate::endpoint_model::EndpointModel;
use offcard_hdl::regmap::cfg;
use offcard_sim::root_complex::{CARD_BDF, ROOT_PORT_ID};
use offcard_sim::tlp::{self, Beat};
use offcard_sim::{RootComplex, Timing};

pub struct Harness {
    pub rc: RootComplex,
    pub model: EndpointModel,
    pub checked_tlps: u64,
}

impl Harness {
    /// Card with BAR0 at `bar0` and memory decoding on (bus mastering off,
    /// so MSIs stay pending unless a test turns them on).
    pub fn new(seed: u64, bar0: u64, timing: Timing) -> Self {
        let mut rc = RootComplex::new(seed, 1 << 16).unwrap();
        rc.timing = timing;
        rc.tlp_log = Some(vec![]);
        let mut h = Harness { rc, model: EndpointModel::new(), checked_tlps: 0 };
        h.send(&tlp::cfg_write0(ROOT_PORT_ID, 1, CARD_BDF, cfg::BAR0, bar0 as u32, 0xf));
        h.send(&tlp::cfg_write0(ROOT_PORT_ID, 2, CARD_BDF, cfg::BAR1, (bar0 >> 32) as u32, 0xf));
        h.send(&tlp::cfg_write0(ROOT_PORT_ID, 3, CARD_BDF, cfg::COMMAND_STATUS, cfg::COMMAND_MEM_ENABLE as u32, 0x3));
        h.check().unwrap();
        h
    }

    pub fn send(&mut self, dws: &[u32]) {
        self.send_beats(&tlp::to_beats(dws));
    }

    pub fn send_beats(&mut self, beats: &[Beat]) {
        for b in beats {
            self.model.beat(b);
        }
        self.rc.send_beats(beats);
    }

    /// Run the card until it is quiet and compare what it sent with the model.
    pub fn check(&mut self) -> Result<(), String> {
        self.rc.drain(64);
        if self.rc.pending_to_card() != 0 {
            return Err(format!("card stopped taking beats ({} still queued): hang", self.rc.pending_to_card()));
        }
        let got = std::mem::take(self.rc.tlp_log.as_mut().unwrap());
        let want = std::mem::take(&mut self.model.expected);
        for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
            if g != w {
                return Err(format!("TLP {i} of batch: card sent {g:08x?}, model expects {w:08x?}"));
            }
        }
        if got.len() != want.len() {
            return Err(format!("card sent {} TLPs, model expects {}", got.len(), want.len()));
        }
        self.checked_tlps += got.len() as u64;
        Ok(())
    }

    /// Read a BAR0 register through both (the read itself is a TLP both count).
    pub fn read_reg(&mut self, bar0: u64, off: u32) -> Result<u32, String> {
        self.send(&tlp::mem_read(ROOT_PORT_ID, 0x5a, bar0 + off as u64, 1, 0xf, 0, false));
        let want = self.model.expected.last().cloned();
        self.check()?;
        Ok(want.and_then(|w| w.get(3).copied()).unwrap_or(0))
    }
}
