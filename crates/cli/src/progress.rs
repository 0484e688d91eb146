//! Progress bars (`indicatif`) for packaging, uploads and downloads, drawn on stderr
//! only when it is a terminal; elsewhere they are hidden and cost nothing.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::stderr_is_tty;

/// How often a spinner moves.
const TICK: Duration = Duration::from_millis(100);

fn target() -> ProgressDrawTarget {
    if stderr_is_tty() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A spinner counting files and bytes while a directory is packaged.
pub fn packaging(dir: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target());
    bar.set_style(
        ProgressStyle::with_template("{spinner:.cyan} packaging {msg} {binary_bytes} read")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(dir.to_owned());
    bar.enable_steady_tick(TICK);
    bar
}

/// A bar for moving `total` bytes (`verb`: "uploading", "downloading").
pub fn transfer(verb: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30.cyan/blue}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(verb.to_owned());
    bar
}
