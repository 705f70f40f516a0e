//! The DMA engine's transfer buffer: eight byte-wide banks, so that eight
//! consecutive bytes can be written (under a byte mask) or read starting at
//! any byte position in one cycle. This is what lets the copy path move data
//! between arbitrarily aligned source and destination buffers at full rate:
//! completions are written at the destination's alignment and TLP payload is
//! read at whatever DW offset the header leaves, with no shifter pipeline.
//!
//! Bank b holds the bytes at positions p with p mod 8 = b, at index p / 8.
//! Reads have one cycle of latency (the banks are synchronous RAMs, which
//! synthesis maps to block RAM).

use rust_hdl::prelude::*;

/// Position width: 16 Ki entries per bank, 128 KiB in all.
pub const POS_BITS: usize = 17;

#[derive(LogicBlock, Default)]
pub struct ByteBuffer {
    pub clock: Signal<In, Clock>,
    pub wr_en: Signal<In, Bit>,
    pub wr_pos: Signal<In, Bits<POS_BITS>>,
    pub wr_data: Signal<In, Bits<64>>,
    pub wr_mask: Signal<In, Bits<8>>,
    pub rd_pos: Signal<In, Bits<POS_BITS>>,
    /// The eight bytes at the `rd_pos` of the previous cycle.
    pub rd_data: Signal<Out, Bits<64>>,
    bank0: RAM<Bits<8>, 14>,
    bank1: RAM<Bits<8>, 14>,
    bank2: RAM<Bits<8>, 14>,
    bank3: RAM<Bits<8>, 14>,
    bank4: RAM<Bits<8>, 14>,
    bank5: RAM<Bits<8>, 14>,
    bank6: RAM<Bits<8>, 14>,
    bank7: RAM<Bits<8>, 14>,
    rd_rot: DFF<Bits<3>>,
    w_rot: Signal<Local, Bits<3>>,
    w_idx: Signal<Local, Bits<14>>,
    w_data: Signal<Local, Bits<128>>,
    w_mask: Signal<Local, Bits<16>>,
    r_rot: Signal<Local, Bits<3>>,
    r_idx: Signal<Local, Bits<14>>,
    r_cat: Signal<Local, Bits<128>>,
}

impl Logic for ByteBuffer {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, rd_rot);
        self.bank0.read_clock.next = self.clock.val();
        self.bank1.read_clock.next = self.clock.val();
        self.bank2.read_clock.next = self.clock.val();
        self.bank3.read_clock.next = self.clock.val();
        self.bank4.read_clock.next = self.clock.val();
        self.bank5.read_clock.next = self.clock.val();
        self.bank6.read_clock.next = self.clock.val();
        self.bank7.read_clock.next = self.clock.val();
        self.bank0.write_clock.next = self.clock.val();
        self.bank1.write_clock.next = self.clock.val();
        self.bank2.write_clock.next = self.clock.val();
        self.bank3.write_clock.next = self.clock.val();
        self.bank4.write_clock.next = self.clock.val();
        self.bank5.write_clock.next = self.clock.val();
        self.bank6.write_clock.next = self.clock.val();
        self.bank7.write_clock.next = self.clock.val();

        // ---- write: rotate lanes left by the position's byte offset ------
        self.w_rot.next = self.wr_pos.val().get_bits::<3>(0);
        self.w_idx.next = self.wr_pos.val().get_bits::<14>(3);
        // Doubling then shifting is a rotate without a 64-bit shift by 64.
        self.w_data.next = ((bit_cast::<128, 64>(self.wr_data.val()) << 64) | bit_cast::<128, 64>(self.wr_data.val()))
            << (bit_cast::<8, 3>(self.w_rot.val()) << 3);
        self.w_mask.next = ((bit_cast::<16, 8>(self.wr_mask.val()) << 8) | bit_cast::<16, 8>(self.wr_mask.val()))
            << bit_cast::<8, 3>(self.w_rot.val());
        // After the shift, bank b's byte is in byte b + 8 of the doubled word.
        self.bank0.write_data.next = self.w_data.val().get_bits::<8>(64);
        self.bank1.write_data.next = self.w_data.val().get_bits::<8>(72);
        self.bank2.write_data.next = self.w_data.val().get_bits::<8>(80);
        self.bank3.write_data.next = self.w_data.val().get_bits::<8>(88);
        self.bank4.write_data.next = self.w_data.val().get_bits::<8>(96);
        self.bank5.write_data.next = self.w_data.val().get_bits::<8>(104);
        self.bank6.write_data.next = self.w_data.val().get_bits::<8>(112);
        self.bank7.write_data.next = self.w_data.val().get_bits::<8>(120);
        self.bank0.write_enable.next = self.wr_en.val() & self.w_mask.val().get_bit(8);
        self.bank1.write_enable.next = self.wr_en.val() & self.w_mask.val().get_bit(9);
        self.bank2.write_enable.next = self.wr_en.val() & self.w_mask.val().get_bit(10);
        self.bank3.write_enable.next = self.wr_en.val() & self.w_mask.val().get_bit(11);
        self.bank4.write_enable.next = self.wr_en.val() & self.w_mask.val().get_bit(12);
        self.bank5.write_enable.next = self.wr_en.val() & self.w_mask.val().get_bit(13);
        self.bank6.write_enable.next = self.wr_en.val() & self.w_mask.val().get_bit(14);
        self.bank7.write_enable.next = self.wr_en.val() & self.w_mask.val().get_bit(15);
        // Banks below the start offset hold the bytes that wrapped into the next index.
        self.bank0.write_address.next = self.w_idx.val();
        self.bank1.write_address.next = self.w_idx.val();
        self.bank2.write_address.next = self.w_idx.val();
        self.bank3.write_address.next = self.w_idx.val();
        self.bank4.write_address.next = self.w_idx.val();
        self.bank5.write_address.next = self.w_idx.val();
        self.bank6.write_address.next = self.w_idx.val();
        self.bank7.write_address.next = self.w_idx.val();
        if self.w_rot.val() > 0 {
            self.bank0.write_address.next = self.w_idx.val() + 1;
        }
        if self.w_rot.val() > 1 {
            self.bank1.write_address.next = self.w_idx.val() + 1;
        }
        if self.w_rot.val() > 2 {
            self.bank2.write_address.next = self.w_idx.val() + 1;
        }
        if self.w_rot.val() > 3 {
            self.bank3.write_address.next = self.w_idx.val() + 1;
        }
        if self.w_rot.val() > 4 {
            self.bank4.write_address.next = self.w_idx.val() + 1;
        }
        if self.w_rot.val() > 5 {
            self.bank5.write_address.next = self.w_idx.val() + 1;
        }
        if self.w_rot.val() > 6 {
            self.bank6.write_address.next = self.w_idx.val() + 1;
        }

        // ---- read: same index rule, rotate right one cycle later ---------
        self.r_rot.next = self.rd_pos.val().get_bits::<3>(0);
        self.r_idx.next = self.rd_pos.val().get_bits::<14>(3);
        self.rd_rot.d.next = self.r_rot.val();
        self.bank0.read_address.next = self.r_idx.val();
        self.bank1.read_address.next = self.r_idx.val();
        self.bank2.read_address.next = self.r_idx.val();
        self.bank3.read_address.next = self.r_idx.val();
        self.bank4.read_address.next = self.r_idx.val();
        self.bank5.read_address.next = self.r_idx.val();
        self.bank6.read_address.next = self.r_idx.val();
        self.bank7.read_address.next = self.r_idx.val();
        if self.r_rot.val() > 0 {
            self.bank0.read_address.next = self.r_idx.val() + 1;
        }
        if self.r_rot.val() > 1 {
            self.bank1.read_address.next = self.r_idx.val() + 1;
        }
        if self.r_rot.val() > 2 {
            self.bank2.read_address.next = self.r_idx.val() + 1;
        }
        if self.r_rot.val() > 3 {
            self.bank3.read_address.next = self.r_idx.val() + 1;
        }
        if self.r_rot.val() > 4 {
            self.bank4.read_address.next = self.r_idx.val() + 1;
        }
        if self.r_rot.val() > 5 {
            self.bank5.read_address.next = self.r_idx.val() + 1;
        }
        if self.r_rot.val() > 6 {
            self.bank6.read_address.next = self.r_idx.val() + 1;
        }
        self.r_cat.next = (bit_cast::<128, 8>(self.bank7.read_data.val()) << 56)
            | (bit_cast::<128, 8>(self.bank6.read_data.val()) << 48)
            | (bit_cast::<128, 8>(self.bank5.read_data.val()) << 40)
            | (bit_cast::<128, 8>(self.bank4.read_data.val()) << 32)
            | (bit_cast::<128, 8>(self.bank3.read_data.val()) << 24)
            | (bit_cast::<128, 8>(self.bank2.read_data.val()) << 16)
            | (bit_cast::<128, 8>(self.bank1.read_data.val()) << 8)
            | bit_cast::<128, 8>(self.bank0.read_data.val())
            | (bit_cast::<128, 8>(self.bank7.read_data.val()) << 120)
            | (bit_cast::<128, 8>(self.bank6.read_data.val()) << 112)
            | (bit_cast::<128, 8>(self.bank5.read_data.val()) << 104)
            | (bit_cast::<128, 8>(self.bank4.read_data.val()) << 96)
            | (bit_cast::<128, 8>(self.bank3.read_data.val()) << 88)
            | (bit_cast::<128, 8>(self.bank2.read_data.val()) << 80)
            | (bit_cast::<128, 8>(self.bank1.read_data.val()) << 72)
            | (bit_cast::<128, 8>(self.bank0.read_data.val()) << 64);
        self.rd_data.next = bit_cast::<64, 128>(self.r_cat.val() >> (bit_cast::<8, 3>(self.rd_rot.q.val()) << 3));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random masked writes and reads at arbitrary byte positions agree with
    /// a byte array (rust-hdl's simulator; the card-level tests cover the
    /// Verilated version).
    #[test]
    fn unaligned_masked_writes_and_reads_match_a_byte_array() {
        let mut uut = ByteBuffer::default();
        uut.connect_all();
        let mut model = vec![0u8; 1 << 12];
        let mut seed = 0x1234_5678u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let clock = |u: &mut ByteBuffer| {
            u.clock.next = Clock { clk: false };
            assert!(simulate(u, 100));
            u.clock.next = Clock { clk: true };
            assert!(simulate(u, 100));
        };
        for _ in 0..400 {
            let pos = (rnd() % 4000) as usize;
            let data = rnd();
            let mask = (rnd() & 0xff) as u8;
            uut.wr_en.next = true;
            uut.wr_pos.next = (pos as u64).to_bits();
            uut.wr_data.next = data.to_bits();
            uut.wr_mask.next = (mask as u64).to_bits();
            clock(&mut uut);
            for i in 0..8 {
                if mask >> i & 1 != 0 {
                    model[pos + i] = (data >> (8 * i)) as u8;
                }
            }
        }
        uut.wr_en.next = false;
        for _ in 0..400 {
            let pos = (rnd() % 4000) as usize;
            uut.rd_pos.next = (pos as u64).to_bits();
            clock(&mut uut);
            uut.clock.next = Clock { clk: false };
            assert!(simulate(&mut uut, 100));
            let got = uut.rd_data.val().to_u64();
            let want = u64::from_le_bytes(model[pos..pos + 8].try_into().unwrap());
            assert_eq!(got, want, "read at {pos}");
        }
    }
}
