fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = offcard_vmm::cli_main(&args) {
        eprintln!("offcard-vmm: error: {e:#}");
        std::process::exit(1);
    }
}
