//! Progress bars for file transfers on stderr. indicatif draws them only when stderr is a
//! terminal, so a script's log gets the sentences and none of the bars.

use std::collections::HashMap;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::app::Notice;
use crate::sanitize::for_terminal;

/// Redraws a second.
const DRAW_HZ: u8 = 10;

pub struct Bars {
    multi: MultiProgress,
    /// By direction (incoming) and transfer number.
    bars: HashMap<(bool, u64), ProgressBar>,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(DRAW_HZ)),
            bars: HashMap::new(),
        }
    }

    /// Moves the bars a notice concerns.
    pub fn show(&mut self, notice: &Notice) {
        match notice {
            Notice::FileProgress { file, incoming, who, name, bytes, size, .. }
            | Notice::FileResumed { file, incoming, who, name, offset: bytes, size, .. } => {
                let bar = self.bars.entry((*incoming, *file)).or_insert_with(|| {
                    let arrow = if *incoming {
                        format!("⇣ {} ← {}", for_terminal(name), for_terminal(who))
                    } else {
                        format!("⇡ {} → {}", for_terminal(name), for_terminal(who))
                    };
                    let bar = self.multi.add(ProgressBar::new(*size));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix} [{bar:30}] {percent:>3}% {binary_bytes_per_sec:>12} {eta} left",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(arrow);
                    bar
                });
                bar.set_position(*bytes);
            }
            Notice::FileDone { file, incoming, .. } | Notice::FileFailed { file, incoming, .. } => {
                if let Some(bar) = self.bars.remove(&(*incoming, *file)) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
            }
            _ => {}
        }
    }

    /// Prints a line above the bars.
    pub fn println(&self, line: &str) {
        if self.bars.is_empty() {
            eprintln!("{line}");
        } else {
            self.multi.suspend(|| eprintln!("{line}"));
        }
    }
}
