//! Spinners and progress bars on stderr, drawn only when stderr is a terminal (so scripts,
//! pipes and tests never see them).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn target() -> ProgressDrawTarget {
    if super::stderr_is_tty() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A spinner with a message, ticking on its own until finished.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        pb.set_style(style);
    }
    pb.set_message(super::sanitize_line(&message.into()));
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// A progress bar of `len` steps.
pub fn bar(len: u64, message: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} ({eta} left)") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(super::sanitize_line(&message.into()));
    pb
}

/// A counter for a task of unknown length.
pub fn counter(message: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}: {human_pos} ({elapsed})") {
        pb.set_style(style);
    }
    pb.set_message(super::sanitize_line(&message.into()));
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}
