//! Per-container log files: one JSON record per line (`{"time","stream","log"}`),
//! rotated by size, and a live feed for `wedge logs -f`.

use crate::types::LogRecord;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// A container's log. Cheap to clone.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Mutex<LogFile>>,
    running: Arc<watch::Sender<bool>>,
}

/// Output that could not be written to a log (the file could not be opened or written:
/// out of descriptors, disk full), counted rather than lost silently.
#[derive(Debug, Default)]
pub struct Dropped {
    /// Records dropped.
    pub records: AtomicU64,
    /// Bytes of the records' text dropped.
    pub bytes: AtomicU64,
}

impl Dropped {
    fn add(&self, bytes: usize) {
        self.records.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// `(records, bytes)`.
    pub fn get(&self) -> (u64, u64) {
        (
            self.records.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

struct LogFile {
    path: PathBuf,
    config: LogConfig,
    /// Open while a run writes; closed between runs so idle containers hold no fd.
    file: Option<File>,
    size: u64,
    /// Unfinished lines of stdout and stderr.
    partial: [Vec<u8>; 2],
    /// New records for followers; made by the first follower (a channel per container
    /// would cost its buffer on every idle container).
    feed: Option<broadcast::Sender<LogRecord>>,
    /// Records dropped since the last one written, and why: reported in the file by a
    /// note as soon as it can be written again.
    unreported: Option<(u64, u64, String)>,
    /// Everything this log dropped.
    dropped: Arc<Dropped>,
    /// Everything every log dropped (the daemon's metrics).
    all_dropped: Option<Arc<Dropped>>,
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
    /// The log at `path` (created when first written).
    pub fn new(path: PathBuf, config: LogConfig) -> Log {
        Log {
            inner: Arc::new(Mutex::new(LogFile {
                path,
                config,
                file: None,
                size: 0,
                partial: [Vec::new(), Vec::new()],
                feed: None,
                unreported: None,
                dropped: Arc::default(),
                all_dropped: None,
            })),
            running: Arc::new(watch::channel(false).0),
        }
    }

    /// Also counts what this log drops in `all` (the daemon's total).
    pub fn counting_drops_in(self, all: Arc<Dropped>) -> Log {
        self.lock().all_dropped = Some(all);
        self
    }

    /// What this log could not write: `(records, bytes)`.
    pub fn dropped(&self) -> (u64, u64) {
        self.lock().dropped.get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogFile> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live file's path.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Deletes the log's files, in the background: removing files can wait for the
    /// disk, which no API answer should.
    pub fn delete(&self) {
        let files = self.lock().files();
        tokio::task::spawn_blocking(move || {
            for f in files {
                let _ = std::fs::remove_file(f);
            }
        });
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
                    file.write(stream, &rest);
                }
            }
            file.report_drops();
            file.file = None;
        }
        self.running.send_replace(running);
    }

    /// Writes a line of the daemon's own (e.g. why a run ended) to stderr.
    pub fn note(&self, line: &str) {
        self.lock()
            .write(Stream::Stderr, format!("wedged: {line}\n").as_bytes());
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
                file.write(stream, &line);
            }
        }
    }

    /// The last `tail` records (all when `None`), and, when `follow`, a feed of the
    /// ones written after them plus a watch that turns false when the run ends.
    pub fn read(&self, tail: Option<usize>, follow: bool) -> (Vec<LogRecord>, Option<Follow>) {
        // Holding the lock while reading: nothing is written between the snapshot and
        // the subscription.
        let mut file = self.lock();
        let feed = follow.then(|| {
            let feed = file
                .feed
                .get_or_insert_with(|| broadcast::channel(1024).0)
                .subscribe();
            (feed, self.running.subscribe())
        });
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

    /// Appends one record, rotating first when the file is full, and hands it to
    /// followers. A failure (out of descriptors, disk full) drops the record rather than
    /// failing the guest, but never silently: it is counted, the daemon's log says so
    /// once, and a note in this log tells how much was lost once it can be written.
    fn write(&mut self, stream: Stream, text: &[u8]) {
        let record = LogRecord {
            time: crate::now(),
            stream: stream.name().into(),
            log: String::from_utf8_lossy(text).into_owned(),
        };
        self.report_drops();
        if let Err(e) = self.append_record(&record) {
            self.drop_record(text.len(), &e);
        }
        if let Some(feed) = &self.feed
            && feed.send(record).is_err()
        {
            // Every follower is gone.
            self.feed = None;
        }
    }

    /// Writes one record to the file, rotating first when it is full.
    fn append_record(&mut self, record: &LogRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        if self.file.is_some() && self.size + line.len() as u64 > self.config.max_size {
            self.rotate();
        }
        let mut file = match self.file.take() {
            Some(f) => f,
            None => self.open()?,
        };
        // On a failure the file is closed, and reopened at the next record.
        file.write_all(&line)?;
        self.size += line.len() as u64;
        self.file = Some(file);
        Ok(())
    }

    /// Counts a record that could not be written.
    fn drop_record(&mut self, bytes: usize, error: &std::io::Error) {
        self.dropped.add(bytes);
        if let Some(all) = &self.all_dropped {
            all.add(bytes);
        }
        if let Some((records, total, _)) = &mut self.unreported {
            *records += 1;
            *total += bytes as u64;
            return;
        }
        eprintln!(
            "wedged: cannot write the log `{}`, dropping its records until it can: {error}",
            self.path.display()
        );
        self.unreported = Some((1, bytes as u64, error.to_string()));
    }

    /// Writes a note of the records dropped since the last one written, if any and if
    /// the file can be written again.
    fn report_drops(&mut self) {
        let Some((records, bytes, error)) = self.unreported.take() else {
            return;
        };
        let note = LogRecord {
            time: crate::now(),
            stream: Stream::Stderr.name().into(),
            log: format!("wedged: {records} log records ({bytes} bytes) were dropped: {error}\n"),
        };
        if self.append_record(&note).is_err() {
            self.unreported = Some((records, bytes, error));
        } else if let Some(feed) = &self.feed {
            let _ = feed.send(note);
        }
    }

    /// Opens the live file for appending; its folder is created the first time.
    fn open(&mut self) -> std::io::Result<File> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        let file = match options.open(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                options.open(&self.path)?
            }
            other => other?,
        };
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

/// `<id>.log`, `<id>.log.1`, …
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

/// For lines the daemon writes on the app's behalf (an HTTP app's access log).
impl std::io::Write for LogStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.log.append(self.stream, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
            dir.path().join("c.log"),
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
        assert!(std::fs::metadata(dir.path().join("c.log.1")).unwrap().len() <= 400);
        assert!(!dir.path().join("c.log.2").exists());
    }

    #[test]
    fn records_that_cannot_be_written_are_counted_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        // The log's folder is a file: the log cannot be opened.
        std::fs::write(dir.path().join("blocked"), "").unwrap();
        let log = Log::new(dir.path().join("blocked/c.log"), LogConfig::default());
        let all = Arc::new(Dropped::default());
        let log = log.counting_drops_in(all.clone());
        log.append(Stream::Stdout, b"lost\nalso lost\n");
        assert_eq!(log.dropped(), (2, 15));
        assert_eq!(all.get(), (2, 15));
        std::fs::remove_file(dir.path().join("blocked")).unwrap();
        log.append(Stream::Stdout, b"kept\n");
        let texts: Vec<String> = log.read(None, false).0.into_iter().map(|r| r.log).collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(
            texts[0].starts_with("wedged: 2 log records (15 bytes) were dropped: "),
            "{texts:?}"
        );
        assert_eq!(texts[1], "kept\n");
    }

    #[test]
    fn long_lines_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new(dir.path().join("c.log"), LogConfig::default());
        log.append(Stream::Stdout, &vec![b'x'; MAX_RECORD * 2 + 10]);
        log.set_running(false);
        let (records, _) = log.read(None, false);
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].log.len(), MAX_RECORD);
    }
}
