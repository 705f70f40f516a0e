// Thin C ABI over the Verilated card (class Vtop), so Rust links it through
// the cc crate. One call per clock cycle keeps the FFI cost out of the figures.
#include <cstdint>
#include <memory>
#include "Vtop.h"
#include "verilated.h"
#include "verilated_vcd_c.h"

struct CardIn {
    uint64_t rx_data;
    uint8_t rx_keep, rx_sop, rx_eop, rx_valid, tx_ready, reset;
};

struct CardOut {
    uint64_t tx_data;
    uint8_t tx_keep, tx_sop, tx_eop, tx_valid, rx_ready;
};

struct Card {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vtop> top;
    VerilatedVcdC* vcd = nullptr;
    uint64_t time = 0;
};

static inline void apply(Vtop* t, const CardIn* in) {
    t->rx_data = in->rx_data;
    t->rx_keep = in->rx_keep;
    t->rx_sop = in->rx_sop;
    t->rx_eop = in->rx_eop;
    t->rx_valid = in->rx_valid;
    t->tx_ready = in->tx_ready;
    t->reset = in->reset;
}

static inline void sample(const Vtop* t, CardOut* out) {
    out->tx_data = t->tx_data;
    out->tx_keep = t->tx_keep;
    out->tx_sop = t->tx_sop;
    out->tx_eop = t->tx_eop;
    out->tx_valid = t->tx_valid;
    out->rx_ready = t->rx_ready;
}

extern "C" {

Card* offcard_card_new() {
    auto* c = new Card();
    c->ctx = std::make_unique<VerilatedContext>();
    c->ctx->traceEverOn(true);
    c->top = std::make_unique<Vtop>(c->ctx.get(), "top");
    c->top->clock = 0;
    c->top->eval();
    return c;
}

void offcard_card_free(Card* c) {
    if (!c) return;
    if (c->vcd) { c->vcd->close(); delete c->vcd; }
    c->top->final();
    delete c;
}

// Apply inputs with the clock low and report the outputs of this cycle (the
// combinational outputs see the new inputs), then raise the clock.
void offcard_card_cycle(Card* c, const CardIn* in, CardOut* out) {
    Vtop* t = c->top.get();
    apply(t, in);
    t->clock = 0;
    t->eval();
    sample(t, out);
    if (c->vcd) c->vcd->dump(c->time);
    c->time += 5;
    t->clock = 1;
    t->eval();
    if (c->vcd) c->vcd->dump(c->time);
    c->time += 5;
}

// Evaluate with the clock low only: outputs for these inputs, no state change.
void offcard_card_peek(Card* c, const CardIn* in, CardOut* out) {
    Vtop* t = c->top.get();
    apply(t, in);
    t->clock = 0;
    t->eval();
    sample(t, out);
}

int offcard_card_trace_open(Card* c, const char* path) {
    if (c->vcd) return 1;
    c->vcd = new VerilatedVcdC();
    c->top->trace(c->vcd, 99);
    c->vcd->open(path);
    return c->vcd->isOpen() ? 0 : 2;
}

void offcard_card_trace_close(Card* c) {
    if (!c->vcd) return;
    c->vcd->close();
    delete c->vcd;
    c->vcd = nullptr;
}

}
