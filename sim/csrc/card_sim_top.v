// Simulation top around the card for the Verilated card models (sim/build.rs,
// csrc/card_abi.cpp): the same ports as offcard_card, plus two that only
// the C ABI uses, and the card's reset taken from a flop instead of a port.
//
// Why: rust-hdl writes a block's synchronous reset inside its combinational
// `always @(*)` (`if (reset) x$d = ...`), so with reset a top-level input
// most of the card's combinational logic depends on an input and Verilator
// evaluates it in its input-combinational region, on every eval (twice a
// cycle), as well as after each clock edge. Held in `reset_q`, reset is
// state: that logic runs once a cycle, after the edge.
//
// Same behaviour, cycle for cycle: the ABI presents each cycle's reset on
// `reset` and `reset_q` takes it at every clock edge, so in the next cycle
// the card sees it again; when a cycle's reset differs from `reset_state`
// (the first cycle of a reset and the first after it), the ABI pulses
// `reset_load` first, which loads `reset_q` and settles the logic behind
// it, before that cycle is evaluated. The card's own flops are clocked only
// by `clock`. The Icarus comparison (testbench/tests/icarus.rs) drives
// offcard_card's own ports, reset included, with what this model saw.
module offcard_sim_top(clock, reset, reset_load, reset_state,
    rx_data, rx_keep, rx_sop, rx_eop, rx_valid, rx_ready,
    tx_data, tx_keep, tx_sop, tx_eop, tx_valid, tx_ready,
    net_tx_data, net_tx_bytes, net_tx_last, net_tx_valid, net_tx_ready,
    net_rx_data, net_rx_bytes, net_rx_last, net_rx_valid, net_rx_ready);
    input wire clock;
    input wire reset;
    input wire reset_load;
    output wire reset_state;
    input wire [63:0] rx_data;
    input wire [1:0] rx_keep;
    input wire rx_sop;
    input wire rx_eop;
    input wire rx_valid;
    output wire rx_ready;
    output wire [63:0] tx_data;
    output wire [1:0] tx_keep;
    output wire tx_sop;
    output wire tx_eop;
    output wire tx_valid;
    input wire tx_ready;
    output wire [63:0] net_tx_data;
    output wire [3:0] net_tx_bytes;
    output wire net_tx_last;
    output wire net_tx_valid;
    input wire net_tx_ready;
    input wire [63:0] net_rx_data;
    input wire [3:0] net_rx_bytes;
    input wire net_rx_last;
    input wire net_rx_valid;
    output wire net_rx_ready;

    reg reset_q = 1'b0;
    always @(posedge clock or posedge reset_load) reset_q <= reset;
    assign reset_state = reset_q;

    offcard_card card(
        .clock(clock), .reset(reset_q),
        .rx_data(rx_data), .rx_keep(rx_keep), .rx_sop(rx_sop), .rx_eop(rx_eop), .rx_valid(rx_valid), .rx_ready(rx_ready),
        .tx_data(tx_data), .tx_keep(tx_keep), .tx_sop(tx_sop), .tx_eop(tx_eop), .tx_valid(tx_valid), .tx_ready(tx_ready),
        .net_tx_data(net_tx_data), .net_tx_bytes(net_tx_bytes), .net_tx_last(net_tx_last), .net_tx_valid(net_tx_valid),
        .net_tx_ready(net_tx_ready),
        .net_rx_data(net_rx_data), .net_rx_bytes(net_rx_bytes), .net_rx_last(net_rx_last), .net_rx_valid(net_rx_valid),
        .net_rx_ready(net_rx_ready));
endmodule
