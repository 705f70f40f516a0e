// Thin C ABI over the Verilated card (class Vtop), so Rust links it through
// the cc crate: one call per clock cycle (`cycle`), or one call for a run of
// cycles with the same inputs that stops at the first beat crossing the
// card's boundary (`run`), for a root complex that has nothing to send.
//
// The model's top is a generated simulation top (offcard_hdl::verilog_post::card_sim_top) around the card: the card's reset
// comes from a flop the ABI loads (see that file), the other ports are the
// card's.
//
// Compiled twice: once over the model verilated without tracing (Vtop,
// functions offcard_card_*), the fast one, and once over the model
// verilated with --trace (Vtopt, functions offcard_cardt_*), whose VCD
// output can be switched on and off at run time. Tracing support halves
// Verilator's speed even when no trace is open, hence two models.
#include <cstdint>
#include <memory>
#include "verilated.h"
#ifdef OFFCARD_TRACED
#include "Vtopt.h"
#include "verilated_vcd_c.h"
#define MODEL Vtopt
#define FN(n) offcard_cardt_##n
#else
#include "Vtop.h"
#define MODEL Vtop
#define FN(n) offcard_card_##n
#endif

// Field order and types match CardInputs / CardOutputs in src/model.rs (repr(C)).
struct CardIn {
    uint64_t rx_data;
    uint8_t rx_keep, rx_sop, rx_eop, rx_valid, tx_ready, reset;
    uint64_t net_rx_data;
    uint8_t net_rx_bytes, net_rx_last, net_rx_valid, net_tx_ready;
};

struct CardOut {
    uint64_t tx_data;
    uint8_t tx_keep, tx_sop, tx_eop, tx_valid, rx_ready;
    uint64_t net_tx_data;
    uint8_t net_tx_bytes, net_tx_last, net_tx_valid, net_rx_ready;
};

struct Card {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<MODEL> top;
#ifdef OFFCARD_TRACED
    VerilatedVcdC* vcd = nullptr;
#endif
    uint64_t time = 0;
};

static inline void apply(MODEL* t, const CardIn* in) {
    // The card's reset is a flop that takes `reset` at every clock edge; a
    // cycle whose reset differs from it loads it first (and settles the
    // logic behind it) without clocking the card.
    t->reset = in->reset & 1;
    if (t->reset != t->reset_state) {
        t->reset_load = 1;
        t->eval();
        t->reset_load = 0;
    }
    t->rx_data = in->rx_data;
    t->rx_keep = in->rx_keep;
    t->rx_sop = in->rx_sop;
    t->rx_eop = in->rx_eop;
    t->rx_valid = in->rx_valid;
    t->tx_ready = in->tx_ready;
    t->net_rx_data = in->net_rx_data;
    t->net_rx_bytes = in->net_rx_bytes;
    t->net_rx_last = in->net_rx_last;
    t->net_rx_valid = in->net_rx_valid;
    t->net_tx_ready = in->net_tx_ready;
}

static inline void sample(const MODEL* t, CardOut* out) {
    out->tx_data = t->tx_data;
    out->tx_keep = t->tx_keep;
    out->tx_sop = t->tx_sop;
    out->tx_eop = t->tx_eop;
    out->tx_valid = t->tx_valid;
    out->rx_ready = t->rx_ready;
    out->net_tx_data = t->net_tx_data;
    out->net_tx_bytes = t->net_tx_bytes;
    out->net_tx_last = t->net_tx_last;
    out->net_tx_valid = t->net_tx_valid;
    out->net_rx_ready = t->net_rx_ready;
}

extern "C" {

Card* FN(new)() {
    auto* c = new Card();
    c->ctx = std::make_unique<VerilatedContext>();
#ifdef OFFCARD_TRACED
    c->ctx->traceEverOn(true);
#endif
    c->top = std::make_unique<MODEL>(c->ctx.get(), "top");
    c->top->clock = 0;
    c->top->eval();
    return c;
}

void FN(free)(Card* c) {
    if (!c) return;
#ifdef OFFCARD_TRACED
    if (c->vcd) { c->vcd->close(); delete c->vcd; }
#endif
    c->top->final();
    delete c;
}

// One cycle with the inputs already applied: evaluate with the clock low and
// report the outputs of this cycle (the combinational outputs see the
// inputs), then raise the clock.
static inline void clock_cycle(Card* c, MODEL* t, CardOut* out) {
    t->clock = 0;
    t->eval();
    sample(t, out);
#ifdef OFFCARD_TRACED
    if (c->vcd) c->vcd->dump(c->time);
#endif
    c->time += 5;
    t->clock = 1;
    t->eval();
#ifdef OFFCARD_TRACED
    if (c->vcd) c->vcd->dump(c->time);
#endif
    c->time += 5;
}

// Apply inputs with the clock low and report the outputs of this cycle (the
// combinational outputs see the new inputs), then raise the clock.
void FN(cycle)(Card* c, const CardIn* in, CardOut* out) {
    MODEL* t = c->top.get();
    apply(t, in);
    clock_cycle(c, t, out);
}

// Whether a beat crosses one of the card's four streams in a cycle with
// these inputs and outputs (valid and ready both high).
static inline bool transfer(const CardIn* in, const CardOut* o) {
    return (o->tx_valid && in->tx_ready) || (o->net_tx_valid && in->net_tx_ready) || (in->rx_valid && o->rx_ready) ||
           (in->net_rx_valid && o->net_rx_ready);
}

// Up to `max` cycles with the same inputs, each as `cycle` runs it (VCD
// dumps included); stops after the first cycle in which a beat crosses
// the boundary. Returns the cycles run; `out` gets the outputs of the last
// one (untouched when max is 0). The cycles before the last carried nothing
// across, so a caller that acts only on transfers misses nothing.
uint64_t FN(run)(Card* c, const CardIn* in, CardOut* out, uint64_t max) {
    MODEL* t = c->top.get();
    apply(t, in);
    for (uint64_t n = 1; n <= max; ++n) {
        clock_cycle(c, t, out);
        if (transfer(in, out)) return n;
    }
    return max;
}

// Evaluate with the clock low only: outputs for these inputs, no state change.
void FN(peek)(Card* c, const CardIn* in, CardOut* out) {
    MODEL* t = c->top.get();
    apply(t, in);
    t->clock = 0;
    t->eval();
    sample(t, out);
}

int FN(trace_open)(Card* c, const char* path) {
#ifdef OFFCARD_TRACED
    if (c->vcd) return 1;
    c->vcd = new VerilatedVcdC();
    c->top->trace(c->vcd, 99);
    c->vcd->open(path);
    return c->vcd->isOpen() ? 0 : 2;
#else
    (void)c; (void)path;
    return 3;
#endif
}

void FN(trace_close)(Card* c) {
#ifdef OFFCARD_TRACED
    if (!c->vcd) return;
    c->vcd->close();
    delete c->vcd;
    c->vcd = nullptr;
#else
    (void)c;
#endif
}

}
