//! Guest output shared by many short-lived instances (an HTTP request's, a pushed
//! message's): each store gets its own handle on the same stdout and stderr.

use crate::Stdio;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Where the guests' stdout and stderr go, shared by every instance of an app.
#[derive(Clone)]
pub enum SharedOutput {
    /// The host process's stdout and stderr.
    Inherit,
    /// Discarded.
    Null,
    /// Streams of the caller's choosing (a container's log).
    Shared {
        /// The guests' stdout.
        stdout: Arc<dyn StdoutStream + Sync>,
        /// The guests' stderr.
        stderr: Arc<dyn StdoutStream + Sync>,
    },
}

impl SharedOutput {
    /// Shares a single run's output (its stdin is dropped: instances get none).
    pub(crate) fn from_stdio(stdio: Stdio) -> SharedOutput {
        match stdio {
            Stdio::Inherit => SharedOutput::Inherit,
            Stdio::Null => SharedOutput::Null,
            Stdio::Streams { stdout, stderr, .. } => SharedOutput::Shared {
                stdout: Arc::from(stdout),
                stderr: Arc::from(stderr),
            },
        }
    }

    /// The streams of one instance.
    pub(crate) fn stdio(&self) -> Stdio {
        match self {
            SharedOutput::Inherit => Stdio::Inherit,
            SharedOutput::Null => Stdio::Null,
            SharedOutput::Shared { stdout, stderr } => Stdio::Streams {
                stdin: Box::new(wasmtime_wasi::p2::pipe::ClosedInputStream),
                stdout: Box::new(SharedStream(stdout.clone())),
                stderr: Box::new(SharedStream(stderr.clone())),
            },
        }
    }

    /// Writes a line of the host's own (`wedge: …`) to the guests' stderr.
    pub(crate) async fn note(&self, line: &str) {
        match self {
            SharedOutput::Inherit => eprintln!("wedge: {line}"),
            SharedOutput::Null => {}
            SharedOutput::Shared { stderr, .. } => {
                let mut stream = Box::into_pin(stderr.async_stream());
                let text = format!("wedge: {line}\n");
                // The log is the only place to say it; a failing log has no other.
                let _ = stream.write_all(text.as_bytes()).await;
                let _ = stream.flush().await;
            }
        }
    }
}

/// One shared output stream handed to a store as its own.
struct SharedStream(Arc<dyn StdoutStream + Sync>);

impl IsTerminal for SharedStream {
    fn is_terminal(&self) -> bool {
        self.0.is_terminal()
    }
}

impl StdoutStream for SharedStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        self.0.async_stream()
    }
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        self.0.p2_stream()
    }
}
