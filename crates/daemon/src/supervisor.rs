//! A container's run loop, one async task per container: run the guest, record how it
//! ended, and restart it with exponential backoff when its policy says so.

use crate::lifecycle::{BACKOFF_RESET_AFTER, RestartPolicy, State};
use crate::logs::Stream;
use crate::manager::{Container, Shared};
use crate::metrics::ExitKind;
use crate::now;
use std::sync::Arc;
use std::time::Instant;
use wasmtime_wasi::cli::AsyncStdinStream;
use wedge_runtime::{Control, Outcome, Policy, Prepared, RuntimeError, Stdio};

/// What a run needs, handed over by the manager.
pub(crate) struct Run {
    pub(crate) prepared: Arc<Prepared>,
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
        prepared,
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
        let result = prepared.run_controlled(&policy, stdio, &control).await;
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
        {
            let mut live = c.live();
            if control.is_killed() || live.record.stopped_by_operator {
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
