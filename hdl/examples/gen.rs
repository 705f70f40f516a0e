fn main() {
    let name = std::env::args().nth(1).unwrap_or("card".into());
    print!("{}", offcard_hdl::block_verilog(&name).expect("unknown block"));
}
