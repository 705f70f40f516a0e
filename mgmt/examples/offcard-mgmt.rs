//! Stand-alone driver of the CLI entry point, for trying the crate before the
//! `offcard` binary wires it in: `cargo run -p offcard-mgmt --example offcard-mgmt -- bench mgmt --json`.
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    offcard_mgmt::cli_main(&args)
}
