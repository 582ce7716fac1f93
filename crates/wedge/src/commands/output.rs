//! What container commands print for people: tables padded to their widest cell, the
//! `STATUS` column, sizes and durations read the way Docker prints them, event lines.

use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;
use wedge_client::types::{ContainerStats, ContainerSummary, Event};

/// The `wedge stats` table.
pub(super) fn stats_table(sample: &[ContainerStats]) -> String {
    let rows: Vec<Vec<String>> = sample
        .iter()
        .map(|s| {
            let memory = match s.memory_limit {
                0 => human_size(s.memory_bytes),
                limit => format!("{} / {}", human_size(s.memory_bytes), human_size(limit)),
            };
            vec![
                short_id(&s.id).to_string(),
                s.name.clone(),
                s.state.clone(),
                memory,
                s.fuel_used.map_or_else(|| "-".into(), |f| f.to_string()),
                format!("{:.2?}", Duration::from_nanos(s.cpu_time_ns)),
                s.restart_count.to_string(),
            ]
        })
        .collect();
    let headers = [
        "CONTAINER ID",
        "NAME",
        "STATE",
        "MEMORY",
        "FUEL USED",
        "CPU TIME",
        "RESTARTS",
    ];
    table(&headers, &rows)
}

/// `TIME container ACTION NAME (exit_code=N, reason=…)`.
pub(super) fn event_line(e: &Event) -> String {
    let mut line = format!("{} container {} {}", e.time, e.action, e.name);
    let attributes: Vec<String> = e
        .exit_code
        .map(|c| format!("exit_code={c}"))
        .into_iter()
        .chain(e.reason.as_ref().map(|r| format!("reason={r}")))
        .collect();
    if !attributes.is_empty() {
        line.push_str(&format!(" ({})", attributes.join(", ")));
    }
    line
}

/// The first 12 hex digits of an id.
pub(super) fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Columns padded to their widest cell, three spaces apart, one line per row.
pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let headers = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&headers).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Docker's STATUS column: `Up 3 minutes`, `Exited (1) 2 seconds ago`, `Created` …
pub(super) fn status(c: &ContainerSummary, now: DateTime<Utc>) -> String {
    let since = |time: &Option<String>| {
        time.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| human_duration(now.signed_duration_since(t)))
    };
    let code = c
        .exit_code
        .map_or_else(String::new, |code| format!(" ({code})"));
    let ago = since(&c.finished_at).map_or_else(String::new, |d| format!(" {d} ago"));
    let up = since(&c.started_at).map_or_else(|| "Up".to_string(), |d| format!("Up {d}"));
    match c.state.as_str() {
        "created" => "Created".into(),
        "running" => up,
        "paused" => format!("{up} (Paused)"),
        "restarting" => format!("Restarting{code}{ago}"),
        "exited" => format!("Exited{code}{ago}"),
        "dead" => "Dead".into(),
        other => other.into(),
    }
}

/// Docker's rounding of an elapsed time: `Less than a second`, `About a minute`,
/// `3 hours`, `2 weeks` …
fn human_duration(elapsed: TimeDelta) -> String {
    let seconds = elapsed.num_seconds().max(0);
    let minutes = seconds / 60;
    let hours = (seconds + 1800) / 3600;
    match () {
        () if seconds < 1 => "Less than a second".into(),
        () if seconds == 1 => "1 second".into(),
        () if seconds < 60 => format!("{seconds} seconds"),
        () if minutes == 1 => "About a minute".into(),
        () if minutes < 60 => format!("{minutes} minutes"),
        () if hours == 1 => "About an hour".into(),
        () if hours < 48 => format!("{hours} hours"),
        () if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        () if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        () if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        () => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// A size with four significant digits and a binary unit: `1.1MiB`, `16MiB`, `512B`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let decimals = match value {
        v if v >= 1000.0 => 0,
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(16 << 20), "16MiB");
        assert_eq!(human_size(1_153_434), "1.1MiB");
        assert_eq!(human_size(1536), "1.5KiB");
    }

    #[test]
    fn durations_round_like_docker() {
        let d = |s| human_duration(TimeDelta::seconds(s));
        assert_eq!(d(0), "Less than a second");
        assert_eq!(d(-3), "Less than a second");
        assert_eq!(d(1), "1 second");
        assert_eq!(d(59), "59 seconds");
        assert_eq!(d(90), "About a minute");
        assert_eq!(d(180), "3 minutes");
        assert_eq!(d(3600), "About an hour");
        assert_eq!(d(5 * 3600), "5 hours");
        assert_eq!(d(3 * 86400), "3 days");
    }

    fn summary(state: &str) -> ContainerSummary {
        ContainerSummary {
            id: "0123456789abcdef".repeat(4),
            name: "web".into(),
            image: "/apps/web.wasm".into(),
            state: state.into(),
            created: "2024-05-01T10:00:00Z".into(),
            started_at: Some("2024-05-01T10:00:00Z".into()),
            finished_at: Some("2024-05-01T10:03:00Z".into()),
            exit_code: Some(1),
            error: None,
            restart_count: 0,
            restart_policy: "no".into(),
            ports: None,
        }
    }

    #[test]
    fn status_column() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T10:03:02.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(status(&summary("running"), now), "Up 3 minutes");
        assert_eq!(status(&summary("paused"), now), "Up 3 minutes (Paused)");
        assert_eq!(status(&summary("exited"), now), "Exited (1) 2 seconds ago");
        assert_eq!(
            status(&summary("restarting"), now),
            "Restarting (1) 2 seconds ago"
        );
        assert_eq!(status(&summary("created"), now), "Created");
    }

    #[test]
    fn tables_pad_all_but_the_last_column() {
        let rows = vec![vec!["a-long-name".to_string(), "x".to_string()]];
        assert_eq!(
            table(&["NAME", "N"], &rows),
            "NAME          N\na-long-name   x\n"
        );
    }

    #[test]
    fn event_lines() {
        let mut e = Event {
            time: "2024-05-01T10:00:00Z".into(),
            action: "die".into(),
            id: "ab".repeat(32),
            name: "web".into(),
            exit_code: Some(3),
            reason: Some("fuel exhausted".into()),
        };
        assert_eq!(
            event_line(&e),
            "2024-05-01T10:00:00Z container die web (exit_code=3, reason=fuel exhausted)"
        );
        e.exit_code = None;
        e.reason = None;
        assert_eq!(event_line(&e), "2024-05-01T10:00:00Z container die web");
    }
}
