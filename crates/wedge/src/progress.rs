//! Progress bars for long transfers, drawn on stderr only when it is a terminal. The
//! bar uses no colour, so `NO_COLOR` terminals see the same plain text.

use std::io::IsTerminal;
use wedge_image::registry::{NoProgress, Progress};

/// A progress bar when stderr is a terminal, silence otherwise.
pub fn for_terminal() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar::new())
    } else {
        Box::new(NoProgress)
    }
}

/// One bar, reused blob after blob.
struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    fn new() -> Bar {
        let style = indicatif::ProgressStyle::with_template(
            "{msg:20} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(style);
        Bar { bar }
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        self.bar.reset();
        self.bar.set_length(total);
        self.bar.set_message(what.to_string());
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
        eprintln!(
            "{}: {} done",
            self.bar.message(),
            indicatif::HumanBytes(self.bar.position())
        );
    }
}
