//! The Verilated card models' simulation top is generated from the card's
//! ports: every port of the card, passed through, but reset from the flop.

#[test]
fn simulation_top_passes_every_card_port_and_takes_reset_from_a_flop() {
    let card = offcard_hdl::card_verilog();
    let ports = offcard_hdl::verilog_post::module_ports(&card, offcard_hdl::TOP_MODULE);
    assert!(ports.len() >= 24, "card ports found: {ports:?}");
    assert!(ports.iter().any(|p| p.0 == "output" && p.1 == "[63:0] " && p.2 == "tx_data"), "{ports:?}");
    let top = offcard_hdl::verilog_post::card_sim_top(&card);
    for (dir, width, name) in &ports {
        assert!(top.contains(&format!("    {dir} wire {width}{name};\n")), "{name} not declared in:\n{top}");
        if name != "reset" {
            assert!(top.contains(&format!(".{name}({name})")), "{name} not connected in:\n{top}");
        }
    }
    assert!(top.contains(".reset(reset_q)") && top.contains("reset_q <= reset"), "{top}");
    assert!(top.contains("input wire reset_load;") && top.contains("output wire reset_state;"));
}
