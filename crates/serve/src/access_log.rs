//! One line per request: who asked, what, the status, how long it took and how long the
//! instance took.

use std::io::Write;
use std::sync::Mutex;

/// Where access-log lines go. Writes are whole lines, so concurrent requests never
/// interleave within one.
pub struct AccessLog {
    sink: Option<Mutex<Box<dyn Write + Send>>>,
}

impl AccessLog {
    /// No access log.
    pub fn off() -> AccessLog {
        AccessLog { sink: None }
    }

    /// Lines written to `sink`, each flushed as it is written.
    pub fn to(sink: impl Write + Send + 'static) -> AccessLog {
        AccessLog {
            sink: Some(Mutex::new(Box::new(sink))),
        }
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Writes one line (`line` has no newline). A sink that fails (a full disk) loses
    /// the line, never the request.
    #[cfg(feature = "server")]
    pub(crate) fn write(&self, line: &str) {
        if let Some(sink) = &self.sink {
            let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(sink, "{line}").and_then(|()| sink.flush());
        }
    }
}
