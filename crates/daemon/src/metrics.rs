//! Prometheus metrics: containers by state, starts, restarts, how runs ended, and a
//! start-latency histogram.

use crate::lifecycle::State;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wedge_runtime::BusCounters;

/// Upper bounds of the start-latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 20] = [
    25e-6, 50e-6, 75e-6, 100e-6, 125e-6, 150e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3, 2e-3, 5e-3,
    10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0,
];

/// How a run ended, for the `wedge_container_exits_total` counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Exit status 0.
    Success,
    /// A non-zero exit status.
    Failure,
    /// A trap.
    Trap,
    /// The memory cap was hit.
    Oom,
    /// A time or fuel limit.
    Limit,
    /// Killed (by an operator or a stop's grace period).
    Killed,
}

const EXIT_KINDS: [(ExitKind, &str); 6] = [
    (ExitKind::Success, "success"),
    (ExitKind::Failure, "failure"),
    (ExitKind::Trap, "trap"),
    (ExitKind::Oom, "oom"),
    (ExitKind::Limit, "limit"),
    (ExitKind::Killed, "killed"),
];

/// The daemon's counters.
#[derive(Default)]
pub struct Metrics {
    starts: AtomicU64,
    restarts: AtomicU64,
    exits: [AtomicU64; 6],
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
}

impl Metrics {
    /// Counts a run started; `latency` is the time from the API request to the
    /// guest's entry point, for starts an operator asked for.
    pub fn started(&self, latency: Option<Duration>) {
        self.starts.fetch_add(1, Ordering::Relaxed);
        let Some(latency) = latency else { return };
        let secs = latency.as_secs_f64();
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns
            .fetch_add(latency.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Counts a restart made by a restart policy.
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a finished run.
    pub fn exited(&self, kind: ExitKind) {
        let i = EXIT_KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0);
        self.exits[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition format, with `by_state` giving the container count per state
    /// and `bus` the message bus's counters.
    pub fn render(&self, by_state: &[(State, usize)], bus: BusCounters) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP wedge_containers Containers by state.");
        let _ = writeln!(out, "# TYPE wedge_containers gauge");
        for (state, n) in by_state {
            let _ = writeln!(out, "wedge_containers{{state=\"{}\"}} {n}", state.as_str());
        }
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        };
        counter(
            &mut out,
            "wedge_container_starts_total",
            "Guest runs started.",
            &self.starts,
        );
        counter(
            &mut out,
            "wedge_container_restarts_total",
            "Restarts made by restart policies.",
            &self.restarts,
        );
        let _ = writeln!(
            out,
            "# HELP wedge_container_exits_total Finished runs by how they ended."
        );
        let _ = writeln!(out, "# TYPE wedge_container_exits_total counter");
        for ((_, label), v) in EXIT_KINDS.iter().zip(&self.exits) {
            let _ = writeln!(
                out,
                "wedge_container_exits_total{{reason=\"{label}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let traps = self.exits[2].load(Ordering::Relaxed) + self.exits[3].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP wedge_container_traps_total Runs that ended in a trap."
        );
        let _ = writeln!(out, "# TYPE wedge_container_traps_total counter");
        let _ = writeln!(out, "wedge_container_traps_total {traps}");
        for (name, kind, help, v) in [
            (
                "wedge_messages_published_total",
                "counter",
                "Messages published on the bus.",
                bus.published,
            ),
            (
                "wedge_messages_delivered_total",
                "counter",
                "Messages put in a subscription's queue.",
                bus.delivered,
            ),
            (
                "wedge_messages_dropped_total",
                "counter",
                "Messages lost to a full subscription queue or a full bus (the overflow policy).",
                bus.dropped,
            ),
            (
                "wedge_messages_refused_total",
                "counter",
                "Messages from the MQTT broker refused as larger than the payload limit.",
                bus.refused,
            ),
            (
                "wedge_messages_queued",
                "gauge",
                "Messages waiting in subscription queues.",
                bus.queued_messages,
            ),
            (
                "wedge_messages_queued_bytes",
                "gauge",
                "Bytes (topics and payloads) waiting in subscription queues.",
                bus.queued_bytes,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        let name = "wedge_container_start_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} From the start request to the guest's entry point."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition() {
        let m = Metrics::default();
        m.started(Some(Duration::from_micros(150)));
        m.started(Some(Duration::from_millis(3)));
        m.started(None);
        m.restarted();
        m.exited(ExitKind::Trap);
        m.exited(ExitKind::Oom);
        let bus = BusCounters {
            published: 5,
            delivered: 4,
            dropped: 1,
            refused: 2,
            queued_messages: 3,
            queued_bytes: 300,
        };
        let text = m.render(&[(State::Running, 2), (State::Exited, 1)], bus);
        assert!(text.contains("wedge_messages_dropped_total 1\n"));
        assert!(text.contains("wedge_messages_refused_total 2\n"));
        assert!(text.contains(
            "# TYPE wedge_messages_queued_bytes gauge\nwedge_messages_queued_bytes 300\n"
        ));
        assert!(text.contains("wedge_containers{state=\"running\"} 2\n"));
        assert!(text.contains("wedge_container_starts_total 3\n"));
        assert!(text.contains("wedge_container_restarts_total 1\n"));
        assert!(text.contains("wedge_container_traps_total 2\n"));
        assert!(text.contains("wedge_container_start_latency_seconds_bucket{le=\"0.0002\"} 1\n"));
        assert!(text.contains("wedge_container_start_latency_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("wedge_container_start_latency_seconds_count 2\n"));
    }
}
