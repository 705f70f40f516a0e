//! The encapsulation pipeline's stages on their own (hdl/src/encap/): their
//! ports by name for rust-hdl's simulator ([`NamedPorts`]), and a
//! differential run of a whole test bench on both simulators
//! ([`rusthdl_vs_verilator`]): the bench drives the block through
//! [`BlockSim`], reacting to its outputs, and every output of every cycle
//! is recorded and compared. The test benches themselves are
//! testbench/tests/encap_<stage>.rs.

use crate::rusthdl_block::{NamedPorts, RustHdlBlock};
use offcard_hdl::encap::{hash::EncapHash, header::EncapHeader, lookup::EncapLookup, output::EncapOutput};
use offcard_hdl::encap::{parser::EncapParser, select::EncapSelect, writer::EncapWriter};
use offcard_sim::{BlockSim, VerilatedBlock};

crate::named_ports!(EncapWriter, "encap_writer",
    in: [reset, in_data, in_bytes, in_last, in_valid, in_tenant, in_len, tenant_enable, capture_full, clearing, rptr],
    out: [in_ready, ring_write, ring_data, wptr, cap_first, cap_write, cap_index, cap_data, cap_done, frame_tenant,
        frame_len, ev_drop, ev_mismatch, ev_clamped]);

crate::named_ports!(EncapParser, "encap_parser",
    in: [reset, cap_first, cap_write, cap_index, cap_data, cap_done, frame_tenant, frame_len, now, take, shift],
    out: [full, tenant, len, frame_time, map_key, is_ip, tuple_word]);

crate::named_ports!(EncapHash, "encap_hash", in: [start, step, data], out: [hash], ignore: ["reset"]);

crate::named_ports!(EncapSelect, "encap_select",
    in: [reset, tenant, hash, frame_time, policy, gap, bad, decide, path_write, path_tenant, path_word, path_data],
    out: [port, ev_repick, ev_avoided, clearing]);

crate::named_ports!(EncapLookup, "encap_lookup",
    in: [reset, start, want, tag, key, map_req_ready, map_rsp_valid, map_rsp_hit, map_rsp_value],
    out: [pending, hit, value, map_req_valid, map_req_tag, map_req_key, map_req_op, map_req_value, ev_hit, ev_miss,
        ev_timeout]);

crate::named_ports!(EncapHeader, "encap_header",
    in: [reset, next_valid, next_tenant, next_len, next_time, port, map_pending, map_hit, map_value, ctx_write,
        ctx_tenant, ctx_dw, ctx_data, hdr_index, hdr_release],
    out: [take, step, decide, tenant, frame_time, policy, gap, bad, hdr_valid, hdr_words, hdr_last_bytes, hdr_word]);

crate::named_ports!(EncapOutput, "encap_output",
    in: [reset, hdr_valid, hdr_words, hdr_last_bytes, hdr_word, wptr, ring_data, out_ready],
    out: [hdr_index, hdr_release, rptr, out_data, out_bytes, out_last, out_valid, ev_frame]);

/// A block that records all its outputs before every clock edge (after
/// the inputs of that cycle are set), so that the same reactive bench run
/// on two simulators can be compared cycle by cycle.
pub struct Traced<S: BlockSim> {
    pub sim: S,
    outputs: Vec<&'static str>,
    /// Per cycle, the outputs in the order of `outputs`.
    pub trace: Vec<Vec<u64>>,
}

impl<S: BlockSim> Traced<S> {
    pub fn new(sim: S, outputs: Vec<&'static str>) -> Self {
        Traced { sim, outputs, trace: vec![] }
    }
}

impl<S: BlockSim> BlockSim for Traced<S> {
    fn set(&mut self, port: &str, value: u64) {
        self.sim.set(port, value)
    }
    fn get(&self, port: &str) -> u64 {
        self.sim.get(port)
    }
    fn eval(&mut self) {
        self.sim.eval()
    }
    fn tick(&mut self) {
        self.sim.eval();
        let row = self.outputs.iter().map(|p| self.sim.get(p)).collect();
        self.trace.push(row);
        self.sim.tick()
    }
    fn cycles(&self) -> u64 {
        self.sim.cycles()
    }
}

/// Run `bench` on the Verilated block and on rust-hdl's simulator of the
/// same block: every output agrees on every cycle. Returns the Verilated
/// run's result and the number of cycles compared.
pub fn rusthdl_vs_verilator<U: NamedPorts, R>(mut bench: impl FnMut(&mut dyn BlockSim) -> R) -> (R, usize) {
    let v = VerilatedBlock::new(U::NAME);
    let outputs: Vec<&'static str> = v.abi().outputs.iter().map(|(n, _)| *n).collect();
    let mut v = Traced::new(v, outputs.clone());
    let result = bench(&mut v);
    let mut r = Traced::new(RustHdlBlock::<U>::new(), outputs.clone());
    bench(&mut r);
    assert_eq!(v.trace.len(), r.trace.len(), "{}: the bench ran a different number of cycles", U::NAME);
    for (c, (a, b)) in v.trace.iter().zip(&r.trace).enumerate() {
        for (k, p) in outputs.iter().enumerate() {
            assert_eq!(a[k], b[k], "{}: cycle {c}: output {p} differs (Verilator vs rust-hdl)", U::NAME);
        }
    }
    (result, v.trace.len())
}
