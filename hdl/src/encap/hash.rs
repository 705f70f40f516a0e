//! Toeplitz hash with the Microsoft RSS key (`offcard_net::hash::toeplitz`),
//! 64 input bits a step: the hash NICs compute, so the path a flow takes can
//! be reproduced with standard tools.
//!
//! Toeplitz is linear: for every input bit that is 1, XOR in the 32-bit key
//! window that starts at that bit's position. Here the key sits in a
//! register whose top 32 bits are the current step's first window; input
//! bit n of a step takes the window n bits further down, a fixed slice of
//! the register, and the register shifts up 64 bits per step. So one step
//! is 64 AND-XOR terms per hash bit, no table, and no shifter: in hardware
//! the slices are wires, and a cycle-based simulator evaluates 64 slices
//! instead of 64 shifts of a 320-bit word.
//! A 36-byte IPv6 tuple takes five steps; trailing zero bytes do not change
//! the hash, so the input can be padded to whole steps.

use rust_hdl::prelude::*;
use smart_default::SmartDefault;
use crate::regmap::net::RSS_KEY;

#[derive(LogicBlock, SmartDefault)]
pub struct EncapHash {
    pub clock: Signal<In, Clock>,
    /// Start a new hash (the key window goes back to key bit 0).
    pub start: Signal<In, Bit>,
    /// Absorb `data`: its byte j is input byte 8k+j at step k, bit 7 first.
    pub step: Signal<In, Bit>,
    pub data: Signal<In, Bits<64>>,
    /// The hash of the bytes absorbed since `start`.
    pub hash: Signal<Out, Bits<32>>,

    /// The key, the current window in bits 319:288.
    key: DFF<Bits<320>>,
    acc: DFF<Bits<32>>,
    hacc: Signal<Local, Bits<32>>,

    #[default(Constant::new(rss_key()))]
    c_key: Constant<Bits<320>>,
}

/// The RSS key as one register, first key byte in the top bits.
fn rss_key() -> Bits<320> {
    let mut key: Bits<320> = Bits::default();
    for b in RSS_KEY {
        key = (key << 8) | bit_cast::<320, 8>((b as u64).to_bits());
    }
    key
}

impl Logic for EncapHash {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, key, acc);
        self.hacc.next = self.acc.q.val();
        for j in 0..8 {
            for b in 0..8 {
                // Input bit n = 8j + b of the step: window key[319-n : 288-n].
                if self.data.val().get_bit(8 * j + 7 - b) {
                    self.hacc.next = self.hacc.val() ^ self.key.q.val().get_bits::<32>(288 - 8 * j - b);
                }
            }
        }
        if self.step.val() {
            self.acc.d.next = self.hacc.val();
            self.key.d.next = self.key.q.val() << 64;
        }
        if self.start.val() {
            self.key.d.next = self.c_key.val();
            self.acc.d.next = 0.into();
        }
        self.hash.next = self.acc.q.val();
    }
}
