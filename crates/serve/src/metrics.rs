//! Prometheus metrics of HTTP apps: requests by status, guest failures, load shed,
//! requests in flight, and histograms of request time and instance start time.

use crate::ServeError;
use bytes::Bytes;
use http_body_util::Full;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
#[cfg(feature = "server")]
use wedge_runtime::{GuestReport, Outcome};

/// A Prometheus histogram of durations with fixed bucket bounds (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    /// An empty histogram with these upper bounds, in seconds, ascending.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// Writes the `_bucket` (cumulative), `_sum` and `_count` series of `name`, each
    /// with `labels` (`key="value",…` or empty) in front of `le`.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{} {sum}", series(&format!("{name}_sum"), labels));
        let _ = writeln!(out, "{} {count}", series(&format!("{name}_count"), labels));
    }
}

/// `name{labels}`, or `name` alone when there are no labels.
fn series(name: &str, labels: &str) -> String {
    if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    }
}

/// Bucket bounds for request times, in seconds.
const REQUEST_BUCKETS: &[f64] = &[
    100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0,
    2.5, 5.0, 10.0,
];
/// Bucket bounds for instance start times, in seconds.
const INSTANTIATE_BUCKETS: &[f64] = &[
    10e-6, 20e-6, 30e-6, 50e-6, 75e-6, 100e-6, 150e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3,
];

/// Ways a guest can fail, as the `reason` label of `wedge_http_guest_failures_total`.
const FAILURES: [&str; 6] = ["trap", "timeout", "fuel", "exit", "killed", "refused"];

/// Picks one of an app's histograms.
type HistogramOf = fn(&HttpMetrics) -> &Histogram;

/// Counters of one HTTP app.
pub struct HttpMetrics {
    by_status: Mutex<BTreeMap<u16, u64>>,
    in_flight: AtomicI64,
    shed: AtomicU64,
    failures: [AtomicU64; FAILURES.len()],
    request_time: Histogram,
    instantiate_time: Histogram,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            by_status: Mutex::new(BTreeMap::new()),
            in_flight: AtomicI64::new(0),
            shed: AtomicU64::new(0),
            failures: Default::default(),
            request_time: Histogram::new(REQUEST_BUCKETS),
            instantiate_time: Histogram::new(INSTANTIATE_BUCKETS),
        }
    }
}

/// What the server records.
#[cfg(feature = "server")]
impl HttpMetrics {
    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request answered by the load shedder.
    pub(crate) fn shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request_finished(
        &self,
        status: u16,
        elapsed: Duration,
        report: Option<&GuestReport>,
    ) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        *self
            .by_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
        self.request_time.observe(elapsed);
        let Some(report) = report else { return };
        if report.refused.is_none() {
            self.instantiate_time.observe(report.instantiate);
        }
        let failure = match (&report.refused, &report.outcome) {
            (Some(_), _) => Some("refused"),
            (None, Outcome::Exited(0)) => None,
            (None, Outcome::Exited(_)) => Some("exit"),
            (None, Outcome::Trapped { .. }) => Some("trap"),
            (None, Outcome::TimedOut(_)) => Some("timeout"),
            (None, Outcome::OutOfFuel(_)) => Some("fuel"),
            (None, Outcome::Killed) => Some("killed"),
        };
        if let Some(i) = failure.and_then(|f| FAILURES.iter().position(|x| *x == f)) {
            self.failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl HttpMetrics {
    /// Requests answered so far with `status`.
    pub fn requests_with_status(&self, status: u16) -> u64 {
        let map = self.by_status.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&status).copied().unwrap_or(0)
    }

    /// The text exposition of several apps' metrics, each line labelled with its app's
    /// labels (`container="api"`, or empty for a lone server).
    pub fn render_all(apps: &[(String, &HttpMetrics)]) -> String {
        let mut out = String::new();
        let join = |labels: &str, extra: String| {
            if labels.is_empty() {
                extra
            } else {
                format!("{labels},{extra}")
            }
        };
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        header(
            &mut out,
            "wedge_http_requests_total",
            "counter",
            "Requests answered, by status code.",
        );
        for (labels, m) in apps {
            let map = m.by_status.lock().unwrap_or_else(|p| p.into_inner());
            for (code, n) in map.iter() {
                let l = join(labels, format!("code=\"{code}\""));
                let _ = writeln!(out, "wedge_http_requests_total{{{l}}} {n}");
            }
        }
        header(
            &mut out,
            "wedge_http_requests_in_flight",
            "gauge",
            "Requests received and not yet finished.",
        );
        for (labels, m) in apps {
            let n = m.in_flight.load(Ordering::Relaxed).max(0);
            let _ = writeln!(
                out,
                "{} {n}",
                series("wedge_http_requests_in_flight", labels)
            );
        }
        header(
            &mut out,
            "wedge_http_shed_total",
            "counter",
            "Requests refused with 503 because the concurrency limit and queue were full.",
        );
        for (labels, m) in apps {
            let n = m.shed.load(Ordering::Relaxed);
            let _ = writeln!(out, "{} {n}", series("wedge_http_shed_total", labels));
        }
        header(
            &mut out,
            "wedge_http_guest_failures_total",
            "counter",
            "Requests whose instance trapped, timed out, ran out of fuel, exited, was killed or could not be made.",
        );
        for (labels, m) in apps {
            for (reason, n) in FAILURES.iter().zip(&m.failures) {
                let l = join(labels, format!("reason=\"{reason}\""));
                let n = n.load(Ordering::Relaxed);
                let _ = writeln!(out, "wedge_http_guest_failures_total{{{l}}} {n}");
            }
        }
        let histograms: [(&str, &str, HistogramOf); 2] = [
            (
                "wedge_http_request_duration_seconds",
                "From a request's arrival to the end of its instance.",
                |m| &m.request_time,
            ),
            (
                "wedge_http_instantiate_seconds",
                "Making a request's store and instance.",
                |m| &m.instantiate_time,
            ),
        ];
        for (name, help, histogram) in histograms {
            header(&mut out, name, "histogram", help);
            for (labels, m) in apps {
                histogram(m).render(&mut out, name, labels);
            }
        }
        out
    }
}

/// Serves `GET /metrics` with `render()`'s text on `listener` until the task is dropped.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    render: impl Fn() -> String + Send + Sync + 'static,
) -> Result<(), ServeError> {
    let render = std::sync::Arc::new(render);
    loop {
        let (tcp, _) = listener.accept().await.map_err(ServeError::Accept)?;
        let render = render.clone();
        let service = hyper::service::service_fn(move |req: http::Request<_>| {
            let render = render.clone();
            async move {
                let mut response = http::Response::new(Full::new(Bytes::new()));
                if req.uri().path() == "/metrics" {
                    *response.body_mut() = Full::new(Bytes::from(render()));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                } else {
                    *response.status_mut() = http::StatusCode::NOT_FOUND;
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(tcp);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_statuses_failures_and_times() {
        let m = HttpMetrics::default();
        let ok = GuestReport {
            instantiate: Duration::from_micros(40),
            total: Duration::from_micros(90),
            outcome: Outcome::Exited(0),
            refused: None,
        };
        let timeout = GuestReport {
            outcome: Outcome::TimedOut(Duration::from_secs(1)),
            ..ok.clone()
        };
        for (status, report) in [(200, Some(&ok)), (504, Some(&timeout)), (503, None)] {
            m.request_started();
            m.request_finished(status, Duration::from_millis(2), report);
        }
        m.shed();
        let text = HttpMetrics::render_all(&[("container=\"api\"".into(), &m)]);
        assert!(text.contains("wedge_http_requests_total{container=\"api\",code=\"200\"} 1\n"));
        assert!(text.contains("wedge_http_requests_total{container=\"api\",code=\"504\"} 1\n"));
        assert!(text.contains("wedge_http_shed_total{container=\"api\"} 1\n"));
        assert!(
            text.contains(
                "wedge_http_guest_failures_total{container=\"api\",reason=\"timeout\"} 1\n"
            )
        );
        assert!(text.contains("wedge_http_requests_in_flight{container=\"api\"} 0\n"));
        assert!(text.contains(
            "wedge_http_instantiate_seconds_bucket{container=\"api\",le=\"0.00005\"} 2\n"
        ));
        assert!(text.contains("wedge_http_instantiate_seconds_count{container=\"api\"} 2\n"));
        let alone = HttpMetrics::render_all(&[(String::new(), &m)]);
        assert!(alone.contains("wedge_http_request_duration_seconds_count 3\n"));
        assert!(alone.contains("wedge_http_shed_total 1\n"));
        assert!(alone.contains("wedge_http_requests_total{code=\"200\"} 1\n"));
    }
}
