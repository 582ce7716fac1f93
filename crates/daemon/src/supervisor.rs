//! A container's run loop, one async task per container: run the guest, record how it
//! ended, and restart it with exponential backoff when its policy says so.

use crate::lifecycle::{BACKOFF_RESET_AFTER, RestartPolicy, State};
use crate::logs::{Log, Stream};
use crate::manager::{Container, Shared};
use crate::metrics::ExitKind;
use crate::now;
use std::sync::Arc;
use std::time::Instant;
use wasmtime_wasi::cli::AsyncStdinStream;
#[cfg(feature = "serve")]
use wedge_runtime::HttpApp;
use wedge_runtime::{Control, Outcome, Policy, Prepared, RuntimeError, Stdio};
#[cfg(feature = "serve")]
use wedge_serve::{AccessLog, HttpMetrics, ServeConfig, Server};

/// What a container runs.
pub(crate) enum Workload {
    /// A command: `_start` or `wasi:cli/run`, once per run.
    Command(Arc<Prepared>),
    /// An HTTP app: a server on the container's port, a fresh instance per request.
    #[cfg(feature = "serve")]
    Http {
        app: Arc<HttpApp>,
        config: ServeConfig,
        metrics: Arc<HttpMetrics>,
    },
}

impl Workload {
    // Only an HTTP app writes to the log itself.
    #[cfg_attr(not(feature = "serve"), allow(unused_variables))]
    async fn run(
        &self,
        policy: &Policy,
        stdio: Stdio,
        control: &Control,
        log: &Log,
    ) -> Result<Outcome, RuntimeError> {
        match self {
            Workload::Command(prepared) => prepared.run_controlled(policy, stdio, control).await,
            #[cfg(feature = "serve")]
            Workload::Http {
                app,
                config,
                metrics,
            } => serve(app, config, metrics, control, log).await,
        }
    }
}

#[cfg(feature = "serve")]
/// Serves an HTTP app until it is stopped (a drain: exit 0) or killed (137). Its access
/// log goes to the container's stdout.
async fn serve(
    app: &Arc<HttpApp>,
    config: &ServeConfig,
    metrics: &Arc<HttpMetrics>,
    control: &Control,
    log: &Log,
) -> Result<Outcome, RuntimeError> {
    let host_error = |e: wedge_serve::ServeError| RuntimeError::Host(e.to_string());
    let server = Server::bind(
        app.clone(),
        config.clone(),
        AccessLog::to(log.stream(Stream::Stdout)),
        metrics.clone(),
        control.clone(),
    )
    .await
    .map_err(host_error)?;
    control.entered();
    let stop = async {
        tokio::select! {
            () = control.stop_requested() => {}
            () = control.killed() => {}
        }
    };
    tokio::select! {
        served = server.run(stop) => served.map_err(host_error)?,
        // A kill during the drain: the guests are killed through `control`.
        () = control.killed() => {}
    }
    Ok(if control.is_killed() {
        Outcome::Killed
    } else {
        Outcome::Exited(0)
    })
}

/// What a run needs, handed over by the manager.
pub(crate) struct Run {
    pub(crate) workload: Workload,
    pub(crate) policy: Policy,
    pub(crate) control: Control,
    /// The guest's end of its stdin pipe.
    pub(crate) stdin: tokio::io::DuplexStream,
    /// When the start was requested through the API (none for restarts).
    pub(crate) requested: Option<Instant>,
}

/// Runs the container until it ends for good (no restart, or an operator's stop or
/// kill), keeping its record, log, events and metrics up to date.
pub(crate) async fn supervise(shared: Arc<Shared>, c: Arc<Container>, run: Run) {
    let Run {
        workload,
        policy,
        control,
        mut stdin,
        requested,
    } = run;
    let mut requested = requested;
    let mut streak = 0u32;
    loop {
        let stdio = Stdio::Streams {
            stdin: Box::new(AsyncStdinStream::new(stdin)),
            stdout: Box::new(c.log.stream(Stream::Stdout)),
            stderr: Box::new(c.log.stream(Stream::Stderr)),
        };
        match requested.take() {
            Some(requested) => {
                let shared = shared.clone();
                control.on_entry(move || shared.metrics.started(Some(requested.elapsed())));
            }
            None => shared.metrics.started(None),
        }
        let began = Instant::now();
        let result = workload.run(&policy, stdio, &control, &c.log).await;
        let (exit_code, reason, kind) = classify(result);
        let restart = {
            let mut live = c.live();
            let r = &mut live.record;
            let restart = !control.is_killed()
                && c.spec
                    .restart
                    .should_restart(exit_code, r.restart_count, r.stopped_by_operator);
            r.exit_code = Some(exit_code);
            r.error = reason.clone();
            r.finished_at = Some(now());
            r.state = if restart {
                State::Restarting
            } else {
                State::Exited
            };
            if !restart {
                live.stdin = None;
            }
            save(&shared, &live.record);
            restart
        };
        if let Some(reason) = &reason {
            c.log.note(reason);
        }
        c.log.set_running(false);
        shared.metrics.exited(kind);
        if kind == ExitKind::Oom {
            shared.events.emit("oom", &c.id, &c.name, None, None);
        }
        shared
            .events
            .emit("die", &c.id, &c.name, Some(exit_code), reason);
        c.exits.send_modify(|n| *n += 1);
        if !restart {
            return;
        }

        if began.elapsed() >= BACKOFF_RESET_AFTER {
            streak = 0;
        }
        let delay = RestartPolicy::backoff(streak);
        streak += 1;
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = control.killed() => {}
        }
        let (writer, reader) = tokio::io::duplex(64);
        // A volume's folder replaced by a link since create is not followed: no
        // restart, and the reason in the container's `error`.
        let unpinned = crate::spec::check_pinned(&c.spec.flags.volumes).err();
        {
            let mut live = c.live();
            if let Some(e) = &unpinned {
                live.record.error = Some(e.to_string());
            }
            if control.is_killed() || live.record.stopped_by_operator || unpinned.is_some() {
                live.record.state = State::Exited;
                save(&shared, &live.record);
                drop(live);
                c.exits.send_modify(|n| *n += 1);
                return;
            }
            control.resume();
            live.stdin = Some(writer);
            live.record.restart_count += 1;
            live.record.state = State::Running;
            live.record.started_at = Some(now());
            save(&shared, &live.record);
        }
        stdin = reader;
        c.log.set_running(true);
        shared.metrics.restarted();
        shared.events.emit("restart", &c.id, &c.name, None, None);
        shared.events.emit("start", &c.id, &c.name, None, None);
    }
}

/// Saves a record from the run loop, which has no caller to report a failure to.
fn save(shared: &Shared, record: &crate::db::Record) {
    if let Err(e) = shared.db.update(record) {
        eprintln!("wedged: cannot save container `{}`: {e}", record.name);
    }
}

/// The exit code, the reason (for anything but a normal exit) and the metrics bucket.
fn classify(result: Result<Outcome, RuntimeError>) -> (i32, Option<String>, ExitKind) {
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => return (125, Some(e.to_string()), ExitKind::Failure),
    };
    let kind = match &outcome {
        Outcome::Exited(0) => ExitKind::Success,
        Outcome::Exited(_) => ExitKind::Failure,
        Outcome::Trapped {
            memory_limit: Some(_),
            ..
        } => ExitKind::Oom,
        Outcome::Trapped { .. } => ExitKind::Trap,
        Outcome::TimedOut(_) | Outcome::OutOfFuel(_) => ExitKind::Limit,
        Outcome::Killed => ExitKind::Killed,
    };
    (outcome.exit_code(), outcome.reason(), kind)
}
