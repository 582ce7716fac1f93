//! Per-container log files: one JSON record per line (`{"time","stream","log"}`),
//! rotated by size, and a live feed for `wedge logs -f`.

use crate::types::LogRecord;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::{broadcast, watch};
use wedge_runtime::{IsTerminal, StdoutStream};

/// A live feed of new records, and a watch that turns false when the run ends.
pub type Follow = (broadcast::Receiver<LogRecord>, watch::Receiver<bool>);

/// Size-based rotation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Rotate the file once it reaches this many bytes.
    pub max_size: u64,
    /// Keep this many files in all (the live one and `max_files - 1` rotated ones).
    pub max_files: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: 10 << 20,
            max_files: 3,
        }
    }
}

/// A line longer than this is written as several records.
const MAX_RECORD: usize = 16 << 10;
/// The log file's name in the container's folder.
const FILE_NAME: &str = "container.log";

/// A container's log. Cheap to clone.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Mutex<LogFile>>,
    feed: broadcast::Sender<LogRecord>,
    running: Arc<watch::Sender<bool>>,
}

struct LogFile {
    path: PathBuf,
    config: LogConfig,
    /// Open while a run writes; closed between runs so idle containers hold no fd.
    file: Option<File>,
    size: u64,
    /// Unfinished lines of stdout and stderr.
    partial: [Vec<u8>; 2],
}

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl Log {
    /// The log in folder `dir` (created when first written).
    pub fn new(dir: &Path, config: LogConfig) -> Log {
        Log {
            inner: Arc::new(Mutex::new(LogFile {
                path: dir.join(FILE_NAME),
                config,
                file: None,
                size: 0,
                partial: [Vec::new(), Vec::new()],
            })),
            feed: broadcast::channel(1024).0,
            running: Arc::new(watch::channel(false).0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogFile> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live file's path.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// A guest output stream writing into this log.
    pub fn stream(&self, stream: Stream) -> LogStream {
        LogStream {
            log: self.clone(),
            stream,
        }
    }

    /// Marks a run as started or ended. At the end, unfinished lines are written and
    /// the file is closed; followers see the end of the stream.
    pub fn set_running(&self, running: bool) {
        if !running {
            let mut file = self.lock();
            for stream in [Stream::Stdout, Stream::Stderr] {
                let rest = std::mem::take(&mut file.partial[stream as usize]);
                if !rest.is_empty() {
                    let record = file.write(stream, &rest);
                    let _ = self.feed.send(record);
                }
            }
            file.file = None;
        }
        self.running.send_replace(running);
    }

    /// Writes a line of the daemon's own (e.g. why a run ended) to stderr.
    pub fn note(&self, line: &str) {
        let record = self
            .lock()
            .write(Stream::Stderr, format!("wedged: {line}\n").as_bytes());
        let _ = self.feed.send(record);
    }

    fn append(&self, stream: Stream, mut buf: &[u8]) {
        let mut file = self.lock();
        while !buf.is_empty() {
            let partial = &mut file.partial[stream as usize];
            // `partial` is always shorter than a record, so there is room.
            let room = MAX_RECORD - partial.len();
            let take = buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |i| i + 1)
                .min(room);
            let (chunk, rest) = buf.split_at(take);
            partial.extend_from_slice(chunk);
            buf = rest;
            if partial.ends_with(b"\n") || partial.len() >= MAX_RECORD {
                let line = std::mem::take(partial);
                let record = file.write(stream, &line);
                let _ = self.feed.send(record);
            }
        }
    }

    /// The last `tail` records (all when `None`), and, when `follow`, a feed of the
    /// ones written after them plus a watch that turns false when the run ends.
    pub fn read(&self, tail: Option<usize>, follow: bool) -> (Vec<LogRecord>, Option<Follow>) {
        // Holding the lock while reading: nothing is written between the snapshot and
        // the subscription.
        let file = self.lock();
        let feed = follow.then(|| (self.feed.subscribe(), self.running.subscribe()));
        let mut records = Vec::new();
        for path in file.files().iter().rev() {
            let Ok(f) = File::open(path) else { continue };
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                if let Ok(record) = serde_json::from_str::<LogRecord>(&line) {
                    records.push(record);
                }
            }
        }
        if let Some(n) = tail {
            records.drain(..records.len().saturating_sub(n));
        }
        (records, feed)
    }
}

impl LogFile {
    /// The live file followed by the rotated ones, newest first.
    fn files(&self) -> Vec<PathBuf> {
        (0..self.config.max_files.max(1))
            .map(|i| rotated(&self.path, i))
            .collect()
    }

    /// Appends one record, rotating first when the file is full. A write failure (disk
    /// full) drops the record rather than failing the guest.
    fn write(&mut self, stream: Stream, text: &[u8]) -> LogRecord {
        let record = LogRecord {
            time: crate::now(),
            stream: stream.name().into(),
            log: String::from_utf8_lossy(text).into_owned(),
        };
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        if self.file.is_some() && self.size + line.len() as u64 > self.config.max_size {
            self.rotate();
        }
        if self.file.is_none() {
            self.file = self.open().ok();
        }
        if let Some(f) = &mut self.file
            && f.write_all(&line).is_ok()
        {
            self.size += line.len() as u64;
        }
        record
    }

    fn open(&mut self) -> std::io::Result<File> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        Ok(file)
    }

    fn rotate(&mut self) {
        self.file = None;
        let n = self.config.max_files.max(1);
        if n == 1 {
            let _ = std::fs::remove_file(&self.path);
        }
        for i in (1..n).rev() {
            let _ = std::fs::rename(rotated(&self.path, i - 1), rotated(&self.path, i));
        }
        self.size = 0;
    }
}

/// `container.log`, `container.log.1`, …
fn rotated(path: &Path, i: u32) -> PathBuf {
    if i == 0 {
        return path.to_path_buf();
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{i}"));
    PathBuf::from(name)
}

/// A guest's stdout or stderr going into a [`Log`].
#[derive(Clone)]
pub struct LogStream {
    log: Log,
    stream: Stream,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.append(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_partial_lines_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new(
            dir.path(),
            LogConfig {
                max_size: 400,
                max_files: 2,
            },
        );
        log.set_running(true);
        log.append(Stream::Stdout, b"hello\nwor");
        log.append(Stream::Stderr, b"oops\n");
        log.append(Stream::Stdout, b"ld\n");
        let (records, _) = log.read(None, false);
        let texts: Vec<_> = records
            .iter()
            .map(|r| (r.stream.as_str(), r.log.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                ("stdout", "hello\n"),
                ("stderr", "oops\n"),
                ("stdout", "world\n")
            ]
        );
        log.append(Stream::Stdout, b"no newline");
        log.set_running(false);
        assert_eq!(log.read(Some(1), false).0[0].log, "no newline");
        log.set_running(true);
        for i in 0..100 {
            log.append(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        let (records, _) = log.read(None, false);
        assert!(records.len() < 20, "rotation keeps two small files");
        assert_eq!(records.last().unwrap().log, "line 99\n");
        assert!(
            std::fs::metadata(dir.path().join("container.log.1"))
                .unwrap()
                .len()
                <= 400
        );
        assert!(!dir.path().join("container.log.2").exists());
    }

    #[test]
    fn long_lines_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new(dir.path(), LogConfig::default());
        log.append(Stream::Stdout, &vec![b'x'; MAX_RECORD * 2 + 10]);
        log.set_running(false);
        let (records, _) = log.read(None, false);
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].log.len(), MAX_RECORD);
    }
}
