//! Safe wrapper over the Verilated card (the C ABI in `csrc/card_abi.cpp`).

use std::ffi::CString;
use std::path::Path;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CardInputs {
    pub rx_data: u64,
    pub rx_keep: u8,
    pub rx_sop: u8,
    pub rx_eop: u8,
    pub rx_valid: u8,
    pub tx_ready: u8,
    pub reset: u8,
    /// The Ethernet port, into the card (outer frames, decapsulated on card).
    pub net_rx_data: u64,
    pub net_rx_bytes: u8,
    pub net_rx_last: u8,
    pub net_rx_valid: u8,
    pub net_tx_ready: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CardOutputs {
    pub tx_data: u64,
    pub tx_keep: u8,
    pub tx_sop: u8,
    pub tx_eop: u8,
    pub tx_valid: u8,
    pub rx_ready: u8,
    /// The Ethernet port, out of the card (encapsulated frames).
    pub net_tx_data: u64,
    pub net_tx_bytes: u8,
    pub net_tx_last: u8,
    pub net_tx_valid: u8,
    pub net_rx_ready: u8,
}

#[repr(C)]
struct RawCard {
    _private: [u8; 0],
}

extern "C" {
    fn offcard_card_new() -> *mut RawCard;
    fn offcard_card_free(c: *mut RawCard);
    fn offcard_card_cycle(c: *mut RawCard, inp: *const CardInputs, out: *mut CardOutputs);
    fn offcard_card_run(c: *mut RawCard, inp: *const CardInputs, out: *mut CardOutputs, max: u64) -> u64;
    fn offcard_card_peek(c: *mut RawCard, inp: *const CardInputs, out: *mut CardOutputs);
    fn offcard_card_trace_open(c: *mut RawCard, path: *const std::os::raw::c_char) -> i32;
    fn offcard_card_trace_close(c: *mut RawCard);
    fn offcard_cardt_new() -> *mut RawCard;
    fn offcard_cardt_free(c: *mut RawCard);
    fn offcard_cardt_cycle(c: *mut RawCard, inp: *const CardInputs, out: *mut CardOutputs);
    fn offcard_cardt_run(c: *mut RawCard, inp: *const CardInputs, out: *mut CardOutputs, max: u64) -> u64;
    fn offcard_cardt_peek(c: *mut RawCard, inp: *const CardInputs, out: *mut CardOutputs);
    fn offcard_cardt_trace_open(c: *mut RawCard, path: *const std::os::raw::c_char) -> i32;
    fn offcard_cardt_trace_close(c: *mut RawCard);
    fn offcard_fast_wide_selftest(cases: *mut u64) -> u64;
}

/// Compares the wide-shift helpers every model is compiled with
/// (`csrc/fast_wide.h`) against Verilator's own, bit for bit, over many
/// widths, amounts and inputs. Returns (comparisons, mismatching words).
pub fn fast_wide_selftest() -> (u64, u64) {
    let mut cases = 0u64;
    // SAFETY: a pure function of its own data; writes one u64 through the
    // valid pointer it is given.
    let bad = unsafe { offcard_fast_wide_selftest(&mut cases) };
    (cases, bad)
}

/// The entry points of one of the two builds of the model.
struct Abi {
    free: unsafe extern "C" fn(*mut RawCard),
    cycle: unsafe extern "C" fn(*mut RawCard, *const CardInputs, *mut CardOutputs),
    run: unsafe extern "C" fn(*mut RawCard, *const CardInputs, *mut CardOutputs, u64) -> u64,
    peek: unsafe extern "C" fn(*mut RawCard, *const CardInputs, *mut CardOutputs),
    trace_open: unsafe extern "C" fn(*mut RawCard, *const std::os::raw::c_char) -> i32,
    trace_close: unsafe extern "C" fn(*mut RawCard),
}

static FAST: Abi = Abi {
    free: offcard_card_free,
    cycle: offcard_card_cycle,
    run: offcard_card_run,
    peek: offcard_card_peek,
    trace_open: offcard_card_trace_open,
    trace_close: offcard_card_trace_close,
};

static TRACED: Abi = Abi {
    free: offcard_cardt_free,
    cycle: offcard_cardt_cycle,
    run: offcard_cardt_run,
    peek: offcard_cardt_peek,
    trace_open: offcard_cardt_trace_open,
    trace_close: offcard_cardt_trace_close,
};

/// Anything clocked like the card: the Verilated model, or rust-hdl's own
/// simulation of the same design (for differential tests).
pub trait CardSim {
    /// One clock cycle: apply inputs, return this cycle's outputs, clock.
    fn cycle(&mut self, inp: &CardInputs) -> CardOutputs;
    fn cycles(&self) -> u64;

    /// Up to `max` cycles with the same inputs, stopping after the first
    /// cycle in which a beat crosses one of the card's four streams (valid
    /// and ready both high: `tx`, `net_tx`, `rx`, `net_rx`). Returns the
    /// cycles run and the outputs of the last of them (default outputs when
    /// `max` is 0). Cycle for cycle the same as calling `cycle` that many
    /// times; the Verilated model does it in one call across the FFI.
    fn run_until_beat(&mut self, inp: &CardInputs, max: u64) -> (u64, CardOutputs) {
        let mut out = CardOutputs::default();
        for n in 1..=max {
            out = self.cycle(inp);
            if out.transfers(inp) {
                return (n, out);
            }
        }
        (max, out)
    }
}

impl CardOutputs {
    /// Whether a beat crosses one of the card's streams in a cycle with
    /// these inputs and outputs.
    pub fn transfers(&self, inp: &CardInputs) -> bool {
        (self.tx_valid != 0 && inp.tx_ready != 0)
            || (self.net_tx_valid != 0 && inp.net_tx_ready != 0)
            || (inp.rx_valid != 0 && self.rx_ready != 0)
            || (inp.net_rx_valid != 0 && self.net_rx_ready != 0)
    }
}

impl CardSim for CardModel {
    fn cycle(&mut self, inp: &CardInputs) -> CardOutputs {
        CardModel::cycle(self, inp)
    }
    fn cycles(&self) -> u64 {
        CardModel::cycles(self)
    }
    fn run_until_beat(&mut self, inp: &CardInputs, max: u64) -> (u64, CardOutputs) {
        CardModel::run_until_beat(self, inp, max)
    }
}

/// A card simulation that records what went in and came out of every
/// cycle, to replay the same stimulus in another simulator (Icarus) and
/// compare cycle by cycle.
pub struct Recording<C: CardSim> {
    pub inner: C,
    pub log: Vec<(CardInputs, CardOutputs)>,
}

impl<C: CardSim> Recording<C> {
    pub fn new(inner: C) -> Self {
        Recording { inner, log: Vec::new() }
    }
}

impl<C: CardSim> CardSim for Recording<C> {
    fn cycle(&mut self, inp: &CardInputs) -> CardOutputs {
        let out = self.inner.cycle(inp);
        self.log.push((*inp, out));
        out
    }
    fn cycles(&self) -> u64 {
        self.inner.cycles()
    }
}

/// Verilator version the model was built with.
pub const VERILATOR_VERSION: &str = env!("OFFCARD_VERILATOR_VERSION");

/// One instance of the card's generated Verilog, clocked by the caller.
pub struct CardModel {
    raw: *mut RawCard,
    abi: &'static Abi,
    cycles: u64,
    tracing: bool,
    /// Calls of `run_until_beat` and the cycles they ran.
    runs: u64,
    run_cycles: u64,
}

// SAFETY: the model is plain C++ state with no thread affinity; it is moved,
// never shared (no Sync).
unsafe impl Send for CardModel {}

impl CardModel {
    /// A new model (the fast build, without tracing), held in reset for a
    /// few cycles.
    pub fn new() -> Self {
        // SAFETY: the C ABI's constructor returns an owned instance (checked in `make`).
        Self::make(unsafe { offcard_card_new() }, &FAST)
    }

    /// A model built with tracing support: `trace_open` and `trace_close`
    /// switch VCD output at run time (it runs at about half the speed).
    pub fn new_traced() -> Self {
        // SAFETY: as in `new`.
        Self::make(unsafe { offcard_cardt_new() }, &TRACED)
    }

    fn make(raw: *mut RawCard, abi: &'static Abi) -> Self {
        assert!(!raw.is_null(), "Verilator model allocation failed");
        let mut m = CardModel { raw, abi, cycles: 0, tracing: false, runs: 0, run_cycles: 0 };
        m.reset(4);
        m
    }

    /// Hold the synchronous reset for `cycles` clock cycles.
    pub fn reset(&mut self, cycles: u32) {
        let inp = CardInputs { reset: 1, ..Default::default() };
        for _ in 0..cycles {
            self.cycle(&inp);
        }
    }

    /// One clock cycle: apply `inp`, return the outputs seen during the cycle
    /// (before the rising edge), then clock.
    #[inline]
    pub fn cycle(&mut self, inp: &CardInputs) -> CardOutputs {
        let mut out = CardOutputs::default();
        // SAFETY: `raw` is this model's live instance; `inp` and `out` are
        // valid `#[repr(C)]` structs the C ABI reads and writes.
        unsafe { (self.abi.cycle)(self.raw, inp, &mut out) };
        self.cycles += 1;
        out
    }

    /// Up to `max` cycles with the same inputs in one call, stopping after
    /// the first cycle in which a beat crosses the card's boundary (see
    /// [`CardSim::run_until_beat`]): the cycles run and the last one's outputs.
    pub fn run_until_beat(&mut self, inp: &CardInputs, max: u64) -> (u64, CardOutputs) {
        let mut out = CardOutputs::default();
        // SAFETY: as in `cycle`; the C ABI writes `out` only for cycles it runs.
        let n = unsafe { (self.abi.run)(self.raw, inp, &mut out, max) };
        self.cycles += n;
        self.runs += 1;
        self.run_cycles += n;
        (n, out)
    }

    /// How many calls of [`run_until_beat`](Self::run_until_beat) there
    /// were and how many cycles they ran (the rest went one call a cycle).
    pub fn run_stats(&self) -> (u64, u64) {
        (self.runs, self.run_cycles)
    }

    /// Outputs for `inp` in the current state, without clocking.
    pub fn peek(&mut self, inp: &CardInputs) -> CardOutputs {
        let mut out = CardOutputs::default();
        // SAFETY: as in `cycle`.
        unsafe { (self.abi.peek)(self.raw, inp, &mut out) };
        out
    }

    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// Start writing a VCD waveform to `path` (switchable at run time).
    pub fn trace_open(&mut self, path: &Path) -> std::io::Result<()> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: live instance and a NUL-terminated path that outlives the call.
        match unsafe { (self.abi.trace_open)(self.raw, c.as_ptr()) } {
            0 => {
                self.tracing = true;
                Ok(())
            }
            1 => Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a trace is already open")),
            3 => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this model was built without tracing: create it with CardModel::new_traced()",
            )),
            _ => Err(std::io::Error::other(format!("cannot open trace file {}", path.display()))),
        }
    }

    pub fn trace_close(&mut self) {
        // SAFETY: live instance.
        unsafe { (self.abi.trace_close)(self.raw) };
        self.tracing = false;
    }

    pub fn is_tracing(&self) -> bool {
        self.tracing
    }
}

impl Default for CardModel {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CardModel {
    fn drop(&mut self) {
        // SAFETY: frees the instance this model owns, once (drop).
        unsafe { (self.abi.free)(self.raw) };
    }
}
