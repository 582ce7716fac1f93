//! Container commands, answered by the daemon: `run -d`, `create`, `start`, `stop`,
//! `kill`, `restart`, `rm`, `pause`, `unpause`, `wait`, `ps`, `logs`, `stats`,
//! `events`.

use super::daemon_client::Daemon;
use super::output::{event_line, short_id, stats_table, status, table};
use crate::cli::{
    ContainersArgs, CreateArgs, EventsArgs, Format, LaunchArgs, LogsArgs, PsArgs, RmArgs,
    StatsArgs, StopArgs,
};
use anyhow::Context;
use chrono::Utc;
use std::env::VarError;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;
use wedge_client::types::{ContainerStats, CreateRequest, Created, Event, LogRecord};
use wedge_client::{Client, ClientError, LogsQuery};
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
        Err(ClientError::Api { status: 404, .. }) if !request.image.starts_with('/') => {
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
    let mut grants = launch.grants.grants();
    let mut env = Vec::with_capacity(grants.env.len());
    for grant in grants.env {
        match grant {
            EnvGrant::Set(..) => env.push(grant),
            EnvGrant::Inherit(key) => match std::env::var(&key) {
                Ok(value) => env.push(EnvGrant::Set(key, value)),
                Err(VarError::NotPresent) => {}
                Err(VarError::NotUnicode(_)) => {
                    anyhow::bail!("environment variable `{key}` is not valid UTF-8")
                }
            },
        }
    }
    grants.env = env;
    for volume in &mut grants.volumes {
        volume.host = absolute(&volume.host)?.into();
    }
    for model in &mut grants.nn.models {
        model.path = absolute(&model.path)?.into();
    }
    Ok(CreateRequest {
        name: launch.name,
        image,
        args: launch.args,
        grants,
        grant_requested: launch.grant_requested,
        restart: launch.restart,
        engine: launch.engine.map(|engine| engine.to_string()),
        port: launch.port,
        body_timeout: launch.body_timeout.map(|t| t.to_string()),
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
    action: impl AsyncFn(&Client, &str) -> Result<T, ClientError>,
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
                        c.ports.clone().unwrap_or_default(),
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
                "PORTS",
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
) -> Result<Vec<ContainerStats>, ClientError> {
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
            Err(ClientError::Api { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
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

/// Writes `text` and flushes it. A reader that went away (`wedge logs -f c | head`)
/// ends wedge quietly, as SIGPIPE would.
fn emit(mut out: impl Write, text: &[u8]) -> std::io::Result<()> {
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        written => written,
    }
}
