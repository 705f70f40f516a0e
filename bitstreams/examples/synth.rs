//! Runs the synthesis flow without the `offcard` binary:
//! `cargo run -p offcard-synth --example synth -- [--board B] [--block X] [--json]`.
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    offcard_synth::cli_main(&args)
}
