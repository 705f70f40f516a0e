//! A block in rust-hdl's own simulator behind [`BlockSim`], the contract
//! of the Verilated block models, so one test bench drives either and the
//! differential tests (rust-hdl's simulator and its Verilog have disagreed
//! before: rust-hdl issues #22 and #47) compare them cycle by cycle. Each
//! block says how its ports are reached by name ([`NamedPorts`]); clocking,
//! settling and reset are here once.

use offcard_hdl::rust_hdl::prelude::*;
use offcard_sim::BlockSim;

/// Port access by name for one rust-hdl block.
pub trait NamedPorts: Block + Default {
    /// The block's name in `offcard_hdl::SIM_BLOCKS` (for messages).
    const NAME: &'static str;
    /// Drive input `port`; `false` if the block has no such input.
    fn set_port(&mut self, port: &str, v: u64) -> bool;
    fn get_port(&self, port: &str) -> Option<u64>;
    fn clock_signal(&mut self) -> &mut Signal<In, Clock>;
}

pub struct RustHdlBlock<U: NamedPorts> {
    uut: Box<U>,
    cycles: u64,
}

impl<U: NamedPorts> RustHdlBlock<U> {
    /// The block, connected and held in reset for four cycles.
    pub fn new() -> Self {
        let mut uut = Box::<U>::default();
        uut.connect_all();
        let mut s = RustHdlBlock { uut, cycles: 0 };
        s.set("reset", 1);
        for _ in 0..4 {
            s.tick();
        }
        s.set("reset", 0);
        s.eval();
        s
    }

    fn clock(&mut self, level: bool) {
        self.uut.clock_signal().next = Clock { clk: level };
        assert!(simulate(&mut *self.uut, 2000), "rust-hdl simulation of {} did not settle", U::NAME);
    }
}

impl<U: NamedPorts> Default for RustHdlBlock<U> {
    fn default() -> Self {
        Self::new()
    }
}

impl<U: NamedPorts> BlockSim for RustHdlBlock<U> {
    fn set(&mut self, port: &str, v: u64) {
        assert!(self.uut.set_port(port, v), "{} has no input {port:?}", U::NAME);
    }
    fn get(&self, port: &str) -> u64 {
        self.uut.get_port(port).unwrap_or_else(|| panic!("{} has no output {port:?}", U::NAME))
    }
    fn eval(&mut self) {
        self.clock(false);
    }
    fn tick(&mut self) {
        self.clock(false);
        self.clock(true);
        self.clock(false);
        self.cycles += 1;
    }
    fn cycles(&self) -> u64 {
        self.cycles
    }
}

/// The decapsulation block's ports (its test bench is testbench/tests/decap_block.rs).
impl NamedPorts for offcard_hdl::geneve_decap::GeneveDecap {
    const NAME: &'static str = "geneve_decap";
    fn set_port(&mut self, port: &str, v: u64) -> bool {
        let u = self;
        match port {
            "reset" => u.reset.next = v != 0,
            "in_data" => u.in_data.next = v.to_bits(),
            "in_bytes" => u.in_bytes.next = v.to_bits(),
            "in_last" => u.in_last.next = v != 0,
            "in_valid" => u.in_valid.next = v != 0,
            "out_ready" => u.out_ready.next = v != 0,
            "bar_addr" => u.bar.addr.next = v.to_bits(),
            "bar_wr_en" => u.bar.wr_en.next = v != 0,
            "bar_wr_data" => u.bar.wr_data.next = v.to_bits(),
            "bar_wr_mask" => u.bar.wr_mask.next = v.to_bits(),
            _ => return false,
        }
        true
    }
    fn get_port(&self, port: &str) -> Option<u64> {
        let u = self;
        match port {
            "in_ready" => Some(u.in_ready.val() as u64),
            "out_data" => Some(u.out_data.val().to_u64()),
            "out_bytes" => Some(u.out_bytes.val().to_u64()),
            "out_last" => Some(u.out_last.val() as u64),
            "out_valid" => Some(u.out_valid.val() as u64),
            "out_tenant" => Some(u.out_tenant.val().to_u64()),
            "out_queue" => Some(u.out_queue.val().to_u64()),
            "out_len" => Some(u.out_len.val().to_u64()),
            "bar_rd_data" => Some(u.bar.rd_data.val().to_u64()),
            _ => None,
        }
    }
    fn clock_signal(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}

/// The TLP register slice's ports (its test bench is testbench/tests/tlp_skid.rs).
impl NamedPorts for offcard_hdl::tlp_skid::TlpSkid {
    const NAME: &'static str = "tlp_skid";
    fn set_port(&mut self, port: &str, v: u64) -> bool {
        let u = self;
        match port {
            "reset" => u.reset.next = v != 0,
            "rx_data" => u.rx.data.next = v.to_bits(),
            "rx_keep" => u.rx.keep.next = v.to_bits(),
            "rx_sop" => u.rx.sop.next = v != 0,
            "rx_eop" => u.rx.eop.next = v != 0,
            "rx_valid" => u.rx.valid.next = v != 0,
            "tx_ready" => u.tx.ready.next = v != 0,
            _ => return false,
        }
        true
    }
    fn get_port(&self, port: &str) -> Option<u64> {
        let u = self;
        match port {
            "rx_ready" => Some(u.rx.ready.val() as u64),
            "tx_data" => Some(u.tx.data.val().to_u64()),
            "tx_keep" => Some(u.tx.keep.val().to_u64()),
            "tx_sop" => Some(u.tx.sop.val() as u64),
            "tx_eop" => Some(u.tx.eop.val() as u64),
            "tx_valid" => Some(u.tx.valid.val() as u64),
            _ => None,
        }
    }
    fn clock_signal(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}

/// A port's value as the `u64` the block models carry.
pub trait PortValue {
    fn from_port(v: u64) -> Self;
    fn to_port(&self) -> u64;
}

impl PortValue for bool {
    fn from_port(v: u64) -> Self {
        v != 0
    }
    fn to_port(&self) -> u64 {
        *self as u64
    }
}

impl<const N: usize> PortValue for Bits<N> {
    fn from_port(v: u64) -> Self {
        v.to_bits()
    }
    fn to_port(&self) -> u64 {
        self.to_u64()
    }
}

/// `NamedPorts` from the block's input and output port names; `ignore`
/// names inputs the block does not have but benches may set (`reset` of a
/// block without one).
#[macro_export]
macro_rules! named_ports {
    ($t:ty, $name:literal, in: [$($i:ident),* $(,)?], out: [$($o:ident),* $(,)?] $(, ignore: [$($x:literal),*])?) => {
        impl $crate::rusthdl_block::NamedPorts for $t {
            const NAME: &'static str = $name;
            fn set_port(&mut self, port: &str, v: u64) -> bool {
                match port {
                    $(stringify!($i) => self.$i.next = $crate::rusthdl_block::PortValue::from_port(v),)*
                    $($($x => {})*)?
                    _ => return false,
                }
                true
            }
            fn get_port(&self, port: &str) -> Option<u64> {
                match port {
                    $(stringify!($o) => Some($crate::rusthdl_block::PortValue::to_port(&self.$o.val())),)*
                    _ => None,
                }
            }
            fn clock_signal(&mut self) -> &mut offcard_hdl::rust_hdl::prelude::Signal<offcard_hdl::rust_hdl::prelude::In, offcard_hdl::rust_hdl::prelude::Clock> {
                &mut self.clock
            }
        }
    };
}

