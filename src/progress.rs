//! Progress bars on long steps (indicatif). They draw on stderr, so stdout
//! keeps only results (a benchmark's last line stays its JSON), and they are
//! hidden with `--quiet` or when stdout is not a terminal: a script or a test
//! that captures the output sees no bar and no control characters.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet` was given.
pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Whether bars are drawn at all.
pub fn enabled() -> bool {
    !quiet() && std::io::stdout().is_terminal()
}

fn target() -> ProgressDrawTarget {
    if enabled() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar of `len` steps with a message (`{pos}/{len}` and elapsed time).
pub fn bar(len: u64, msg: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target());
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg:<40} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(msg.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A spinner for a step whose length is not known (a simulation, a boot).
pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target());
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("static template"));
    pb.set_message(msg.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A log line for a step: printed above the bar while one is drawn, or to
/// stderr (unless `--quiet`) when bars are hidden.
pub fn note(pb: &ProgressBar, msg: &str) {
    if enabled() {
        pb.println(msg);
    } else if !quiet() {
        eprintln!("{msg}");
    }
}
