//! Run the fabric benchmark over the reference selector and print the
//! figures: a table on stderr, one JSON line on stdout.
//! `cargo run --release -p offcard-net --example fabric_bench [quick]`
use offcard_net::workload::{figures_json, run_bench, BenchSpec, ReferenceSelector, RunConfig};

fn main() {
    let spec = if std::env::args().any(|a| a == "quick") { BenchSpec::quick() } else { BenchSpec::full() };
    let t = std::time::Instant::now();
    let b = run_bench(spec, &RunConfig::default(), &mut || Box::new(ReferenceSelector::default())).expect("bench");
    eprintln!("{:<12} {:<10} {:>8} {:>6} {:>8} {:>6} {:>10} {:>12} {:>7}  path packets", "workload", "case", "max/mean", "jain", "reord", "rbuf", "lat mean", "lat max ns", "drops");
    for f in &b.runs {
        eprintln!(
            "{:<12} {:<10} {:>8.4} {:>6.4} {:>8.4} {:>6} {:>10.1} {:>12.1} {:>7}  {:?}",
            f.workload, f.case.key(), f.max_mean, f.jain, f.reordered_ratio, f.reorder_buffer_max, f.latency_mean_ns, f.latency_max_ns, f.dropped, f.path_packets
        );
    }
    eprintln!("ports {:?}; {:.2} s", b.runs[0].ports, t.elapsed().as_secs_f64());
    println!("{}", serde_json::Value::Object(figures_json(&b)));
}
