//! One request from arrival to its access-log line. The line needs both the status sent
//! and how the guest ended, which arrive in either order: whichever comes second writes
//! it and counts the request in the metrics.

use crate::{AccessLog, HttpMetrics};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU16, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use wedge_runtime::GuestReport;

/// What is known about one request.
pub(crate) struct Exchange {
    peer: SocketAddr,
    request_line: String,
    started: Instant,
    status: AtomicU16,
    /// The reason the host answered in the guest's place, if it did.
    note: OnceLock<String>,
    report: OnceLock<GuestReport>,
    /// Parts still missing: the status, and the guest's end.
    missing: AtomicU8,
    log: Arc<AccessLog>,
    metrics: Arc<HttpMetrics>,
}

impl Exchange {
    /// Starts the record of a request that arrived now.
    pub(crate) fn begin<B>(
        peer: SocketAddr,
        request: &http::Request<B>,
        log: Arc<AccessLog>,
        metrics: Arc<HttpMetrics>,
    ) -> Arc<Exchange> {
        let request_line = if log.enabled() {
            format!(
                "{} {} {:?}",
                request.method(),
                request.uri(),
                request.version()
            )
        } else {
            String::new()
        };
        metrics.request_started();
        Arc::new(Exchange {
            peer,
            request_line,
            started: Instant::now(),
            status: AtomicU16::new(0),
            note: OnceLock::new(),
            report: OnceLock::new(),
            missing: AtomicU8::new(2),
            log,
            metrics,
        })
    }

    /// Records the status sent, and `note` when the host answered instead of the guest.
    fn responded(self: &Arc<Self>, status: http::StatusCode, note: Option<String>) {
        self.status.store(status.as_u16(), Ordering::Relaxed);
        if let Some(note) = note {
            let _ = self.note.set(note);
        }
        self.part_done();
    }

    /// Records how the guest ended; `None` when no guest ran for this request.
    pub(crate) fn guest_done(self: &Arc<Self>, report: Option<&GuestReport>) {
        if let Some(report) = report {
            let _ = self.report.set(report.clone());
        }
        self.part_done();
    }

    fn part_done(&self) {
        if self.missing.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }

    fn finish(&self) {
        let status = self.status.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let report = self.report.get();
        self.metrics.request_finished(status, elapsed, report);
        if !self.log.enabled() {
            return;
        }
        let mut line = format!(
            "{} \"{}\" {status} {:.3}ms",
            self.peer,
            self.request_line,
            elapsed.as_secs_f64() * 1e3
        );
        if let Some(r) = report {
            let _ = write!(
                line,
                " instance={:.3}ms start={}us",
                r.total.as_secs_f64() * 1e3,
                r.instantiate.as_micros()
            );
            if let Some(reason) = r.refused.clone().or_else(|| r.outcome.reason()) {
                let _ = write!(line, " error=\"{}\"", reason.replace('"', "'"));
            }
        }
        if let Some(note) = self.note.get()
            && report.is_none_or(|r| !r.failed())
        {
            let _ = write!(line, " error=\"{}\"", note.replace('"', "'"));
        }
        self.log.write(&line);
    }
}

/// The status part of an [`Exchange`], still to be recorded. Dropped unrecorded (hyper
/// drops a request's future when its client goes away), it records 499, nginx's "client
/// closed request", so the request is still logged and counted.
pub(crate) struct PendingStatus(Option<Arc<Exchange>>);

/// The status logged for a request whose client went away before the response.
const CLIENT_CLOSED: u16 = 499;

impl PendingStatus {
    /// The status of `exchange`, to be recorded.
    pub(crate) fn new(exchange: &Arc<Exchange>) -> PendingStatus {
        PendingStatus(Some(exchange.clone()))
    }

    /// Records the status sent, and `note` when the host answered instead of the guest.
    pub(crate) fn record(mut self, status: http::StatusCode, note: Option<String>) {
        if let Some(exchange) = self.0.take() {
            exchange.responded(status, note);
        }
    }
}

impl Drop for PendingStatus {
    fn drop(&mut self) {
        if let Some(exchange) = self.0.take() {
            let status = http::StatusCode::from_u16(CLIENT_CLOSED).expect("a valid status code");
            let note = "the client went away before the response".to_string();
            exchange.responded(status, Some(note));
        }
    }
}
