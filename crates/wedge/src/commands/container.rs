//! Container commands, answered by the daemon: `run -d`, `create`, `start`, `stop`,
//! `kill`, `restart`, `rm`, `pause`, `unpause`, `wait`, `ps`, `logs`, `stats`,
//! `events`.

use super::daemon_client::Daemon;
use crate::cli::{
    ContainersArgs, CreateArgs, EventsArgs, Format, LaunchArgs, LogsArgs, PsArgs, RmArgs,
    StatsArgs, StopArgs,
};
use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use std::env::VarError;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;
use wedge_daemon::types::{
    ContainerStats, ContainerSummary, CreateRequest, Created, Event, LogRecord,
};
use wedge_daemon::{Client, DaemonError, LogsQuery};
use wedge_image::app_source::AppSource;
use wedge_manifest::EnvGrant;

/// `wedge run -d`: creates the container, starts it and prints its id.
pub fn run_detached(host: Option<&str>, launch: LaunchArgs) -> anyhow::Result<i32> {
    let request = create_request(launch)?;
    let daemon = Daemon::new(host)?;
    let created = create_pulling(&daemon, &request)?;
    daemon
        .block_on(daemon.client.start(&created.id))
        .with_context(|| format!("container `{}` was created but not started", created.name))?;
    println!("{}", created.id);
    Ok(0)
}

/// `wedge create`: creates the container and prints its id.
pub fn create(host: Option<&str>, args: CreateArgs) -> anyhow::Result<i32> {
    let request = create_request(args.launch)?;
    let daemon = Daemon::new(host)?;
    let created = create_pulling(&daemon, &request)?;
    println!("{}", created.id);
    Ok(0)
}

/// Creates the container; an image the daemon's store lacks is pulled by the daemon
/// first, as `docker create` does.
fn create_pulling(daemon: &Daemon, request: &CreateRequest) -> anyhow::Result<Created> {
    match daemon.block_on(daemon.client.create(request)) {
        Err(DaemonError::Api { status: 404, .. }) if !request.image.starts_with('/') => {
            eprintln!(
                "Unable to find image `{}` in the daemon's store; pulling it",
                request.image
            );
            let pulled = daemon
                .block_on(daemon.client.pull(&request.image))
                .with_context(|| format!("cannot pull `{}`", request.image))?;
            eprintln!("{}@{}", pulled.reference, pulled.digest);
            Ok(daemon.block_on(daemon.client.create(request))?)
        }
        other => Ok(other?),
    }
}

/// The API request for the flags of `run -d` / `create`. Paths are made absolute from
/// this process's working directory and `-e KEY` takes this process's value, since the
/// daemon has neither.
fn create_request(launch: LaunchArgs) -> anyhow::Result<CreateRequest> {
    let image = if AppSource::looks_like_path(&launch.app) {
        absolute(Path::new(&launch.app))?
    } else {
        launch.app
    };
    let mut env = Vec::new();
    for grant in launch.env {
        match grant {
            EnvGrant::Set(..) => env.push(grant.to_string()),
            EnvGrant::Inherit(key) => match std::env::var(&key) {
                Ok(value) => env.push(format!("{key}={value}")),
                Err(VarError::NotPresent) => {}
                Err(VarError::NotUnicode(_)) => {
                    anyhow::bail!("environment variable `{key}` is not valid UTF-8")
                }
            },
        }
    }
    let volumes = launch
        .volumes
        .into_iter()
        .map(|mut v| {
            v.host = absolute(&v.host)?.into();
            Ok(v.to_string())
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(CreateRequest {
        name: launch.name,
        image,
        args: launch.args,
        env,
        volumes,
        allow_net: launch.allow_net.iter().map(ToString::to_string).collect(),
        allow_listen: launch
            .allow_listen
            .iter()
            .map(ToString::to_string)
            .collect(),
        allow_dns: launch.allow_dns,
        memory: launch.memory.map(|m| m.to_string()),
        fuel: launch.fuel,
        timeout: launch.timeout.map(|t| t.to_string()),
        grant_requested: launch.grant_requested,
        restart: launch.restart,
        engine: Some(launch.engine.to_string()),
    })
}

/// `path` made absolute from the working directory, as UTF-8 text for the API.
fn absolute(path: &Path) -> anyhow::Result<String> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("cannot make `{}` absolute", path.display()))?;
    absolute
        .into_os_string()
        .into_string()
        .map_err(|p| anyhow::anyhow!("path `{}` is not valid UTF-8", p.display()))
}

/// `wedge start`.
pub fn start(host: Option<&str>, args: ContainersArgs) -> anyhow::Result<i32> {
    each(host, &args.containers, async |client, c| {
        client.start(c).await.map(|()| c.to_owned())
    })
}

/// `wedge stop`.
pub fn stop(host: Option<&str>, args: StopArgs) -> anyhow::Result<i32> {
    each(host, &args.containers, async |client, c| {
        client.stop(c, args.time).await.map(|()| c.to_owned())
    })
}

/// `wedge kill`.
pub fn kill(host: Option<&str>, args: ContainersArgs) -> anyhow::Result<i32> {
    each(host, &args.containers, async |client, c| {
        client.kill(c).await.map(|()| c.to_owned())
    })
}

/// `wedge restart`.
pub fn restart(host: Option<&str>, args: StopArgs) -> anyhow::Result<i32> {
    each(host, &args.containers, async |client, c| {
        client.restart(c, args.time).await.map(|()| c.to_owned())
    })
}

/// `wedge rm`.
pub fn rm(host: Option<&str>, args: RmArgs) -> anyhow::Result<i32> {
    each(host, &args.containers, async |client, c| {
        client.remove(c, args.force).await.map(|()| c.to_owned())
    })
}

/// `wedge pause`.
pub fn pause(host: Option<&str>, args: ContainersArgs) -> anyhow::Result<i32> {
    each(host, &args.containers, async |client, c| {
        client.pause(c).await.map(|()| c.to_owned())
    })
}

/// `wedge unpause`.
pub fn unpause(host: Option<&str>, args: ContainersArgs) -> anyhow::Result<i32> {
    each(host, &args.containers, async |client, c| {
        client.unpause(c).await.map(|()| c.to_owned())
    })
}

/// `wedge wait`: prints each container's exit code once its run ends.
pub fn wait(host: Option<&str>, args: ContainersArgs) -> anyhow::Result<i32> {
    each(host, &args.containers, async |client, c| {
        client.wait(c).await.map(|w| w.exit_code)
    })
}

/// Runs `action` on each container in turn and prints what it answers, one line each;
/// the first error stops the command.
fn each<T: Display>(
    host: Option<&str>,
    containers: &[String],
    action: impl AsyncFn(&Client, &str) -> Result<T, DaemonError>,
) -> anyhow::Result<i32> {
    let daemon = Daemon::new(host)?;
    for container in containers {
        let line = daemon.block_on(action(&daemon.client, container))?;
        println!("{line}");
    }
    Ok(0)
}

/// `wedge ps`.
pub fn ps(host: Option<&str>, args: PsArgs) -> anyhow::Result<i32> {
    let daemon = Daemon::new(host)?;
    let containers = daemon.block_on(daemon.client.list(args.all))?;
    if args.quiet {
        for c in &containers {
            println!("{}", short_id(&c.id));
        }
        return Ok(0);
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&containers)?),
        Format::Table => {
            let now = Utc::now();
            let rows: Vec<Vec<String>> = containers
                .iter()
                .map(|c| {
                    vec![
                        short_id(&c.id).to_string(),
                        c.name.clone(),
                        c.image.clone(),
                        c.state.clone(),
                        status(c, now),
                        c.restart_count.to_string(),
                    ]
                })
                .collect();
            let headers = [
                "CONTAINER ID",
                "NAME",
                "IMAGE",
                "STATE",
                "STATUS",
                "RESTARTS",
            ];
            print!("{}", table(&headers, &rows));
        }
    }
    Ok(0)
}

/// `wedge logs`: stderr records to stderr, the others to stdout.
pub fn logs(host: Option<&str>, args: LogsArgs) -> anyhow::Result<i32> {
    let daemon = Daemon::new(host)?;
    let query = LogsQuery {
        follow: args.follow,
        tail: args.tail,
    };
    let mut failed = None;
    let print = |record: LogRecord| {
        if failed.is_some() {
            return;
        }
        let text = if args.timestamps {
            format!("{} {}", record.time, record.log)
        } else {
            record.log
        };
        let written = if record.stream == "stderr" {
            emit(std::io::stderr().lock(), text.as_bytes())
        } else {
            emit(std::io::stdout().lock(), text.as_bytes())
        };
        failed = written.err();
    };
    daemon.block_on(daemon.client.logs(&args.container, query, print))?;
    match failed {
        Some(e) => Err(e).context("cannot write the logs"),
        None => Ok(0),
    }
}

/// `wedge stats`: one sample, or one a second until interrupted.
pub fn stats(host: Option<&str>, args: StatsArgs) -> anyhow::Result<i32> {
    let daemon = Daemon::new(host)?;
    let clear = !args.no_stream && std::io::stdout().is_terminal();
    loop {
        let sample = daemon.block_on(sample(&daemon.client, &args.containers, args.all))?;
        let text = match args.format {
            Format::Json => serde_json::to_string(&sample)? + "\n",
            Format::Table if clear => format!("\x1b[2J\x1b[H{}", stats_table(&sample)),
            Format::Table => stats_table(&sample),
        };
        emit(std::io::stdout().lock(), text.as_bytes()).context("cannot write the stats")?;
        if args.no_stream {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The stats of the named containers, or of the listed ones when none are named.
async fn sample(
    client: &Client,
    names: &[String],
    all: bool,
) -> Result<Vec<ContainerStats>, DaemonError> {
    let mut out = Vec::new();
    if !names.is_empty() {
        for name in names {
            out.push(client.stats(name).await?);
        }
        return Ok(out);
    }
    for c in client.list(all).await? {
        match client.stats(&c.id).await {
            Ok(stats) => out.push(stats),
            // Removed since the listing.
            Err(e) if e.status() == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn stats_table(sample: &[ContainerStats]) -> String {
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

/// `wedge events`: one line per event until interrupted or the daemon goes away.
pub fn events(host: Option<&str>, args: EventsArgs) -> anyhow::Result<i32> {
    let daemon = Daemon::new(host)?;
    let mut failed = None;
    let print = |event: Event| {
        let line = match args.format {
            Format::Json => serde_json::to_string(&event).map_err(anyhow::Error::from),
            Format::Table => Ok(event_line(&event)),
        };
        let written = line.and_then(|line| {
            emit(std::io::stdout().lock(), format!("{line}\n").as_bytes())
                .context("cannot write the events")
        });
        failed = written.err();
        failed.is_none()
    };
    daemon.block_on(daemon.client.events(print))?;
    failed.map_or(Ok(0), Err)
}

/// `TIME container ACTION NAME (exit_code=N, reason=…)`.
fn event_line(e: &Event) -> String {
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

/// Writes `text` and flushes it. A reader that went away (`wedge logs -f c | head`)
/// ends wedge quietly, as SIGPIPE would.
fn emit(mut out: impl Write, text: &[u8]) -> std::io::Result<()> {
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        written => written,
    }
}

/// The first 12 hex digits of an id.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Columns padded to their widest cell, three spaces apart, one line per row.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
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
fn status(c: &ContainerSummary, now: DateTime<Utc>) -> String {
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
