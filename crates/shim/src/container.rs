//! One container the shim runs: its bundle, its process and how that process ended.

use containerd_shim::api::Status;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::watch;

/// The standard streams containerd gave a container (FIFO paths; empty: none).
#[derive(Debug, Clone, Default)]
pub struct Streams {
    /// The app's stdin.
    pub stdin: String,
    /// The app's stdout.
    pub stdout: String,
    /// The app's stderr.
    pub stderr: String,
}

/// How a container's process ended.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Its exit status (128 + the signal when a signal ended it).
    pub status: u32,
    /// When the shim saw it end.
    pub at: Timestamp,
}

/// A container, from `create` to `delete`.
pub struct Container {
    /// containerd's id for it.
    pub id: String,
    /// Its bundle directory.
    pub bundle: PathBuf,
    /// Its standard streams.
    pub streams: Streams,
    /// Its process (created with the container, waiting for `start`).
    pub pid: u32,
    /// The shim's end of the start FIFO, held open until the container is deleted.
    gate: Mutex<Option<File>>,
    state: Mutex<(Status, Option<Exit>)>,
    exited: watch::Sender<bool>,
}

impl Container {
    /// A created container whose process is `pid`.
    pub fn new(
        id: String,
        bundle: PathBuf,
        streams: Streams,
        pid: u32,
        gate: Option<File>,
    ) -> Container {
        Container {
            id,
            bundle,
            streams,
            pid,
            gate: Mutex::new(gate),
            state: Mutex::new((Status::CREATED, None)),
            exited: watch::Sender::new(false),
        }
    }

    /// Its status and, once stopped, how it ended.
    pub fn state(&self) -> (Status, Option<Exit>) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Marks it running; false when it is not in the created state.
    pub fn set_running(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 != Status::CREATED {
            return false;
        }
        state.0 = Status::RUNNING;
        true
    }

    /// Lets its process run the app: one byte on the start FIFO, which stays open
    /// (and the byte in it) for a process that has not opened its end yet.
    pub fn open_gate(&self) -> std::io::Result<()> {
        match self.gate.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(fifo) => fifo.write_all(b"s"),
            None => Ok(()),
        }
    }

    /// Records its end and wakes whoever waits for it.
    pub fn set_exited(&self, exit: Exit) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (Status::STOPPED, Some(exit));
        self.exited.send_replace(true);
    }

    /// How it ended, once it has.
    pub async fn wait(&self) -> Exit {
        let mut exited = self.exited.subscribe();
        loop {
            if let (_, Some(exit)) = self.state() {
                return exit;
            }
            if exited.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
