//! The container manager: lifecycle operations checked against the state machine,
//! every change saved to the database before it is acknowledged, and recovery of what
//! a crashed daemon left behind.

use crate::apps::{Apps, runtime_error};
use crate::db::{Db, Record};
use crate::events::EventBus;
use crate::lifecycle::{Action, KILLED_BY_CRASH, State};
use crate::logs::{Dropped, Follow, Log, LogConfig};
use crate::metrics::Metrics;
use crate::spec::Spec;
use crate::supervisor::{self, Run, Workload};
use crate::types::{
    ContainerInfo, ContainerStats, ContainerSummary, CreateRequest, Created, LogRecord,
    WaitResponse,
};
use crate::{DaemonError, now, paths};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};
use wedge_runtime::{
    BusLimits, Control, DEFAULT_MEMORY, HostServices, MessageBus, NnModels, Policy,
};
use wedge_serve::HttpMetrics;

/// How the daemon is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data root: database, images, code cache, logs.
    pub root: PathBuf,
    /// Slots in the pooling allocator (`None`: allocate on demand).
    pub pool_size: Option<u32>,
    /// Log rotation.
    pub log: LogConfig,
    /// What the message bus's subscription queues hold, and what a full one gives up.
    pub queue: BusLimits,
    /// Largest image layer a pull accepts, in bytes.
    pub max_layer_size: u64,
    /// Whether pulls use the code precompiled for this machine that images carry.
    pub use_precompiled: bool,
}

/// The manager. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Manager {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    root: PathBuf,
    pub(crate) db: Db,
    apps: Apps,
    pub(crate) events: EventBus,
    pub(crate) metrics: Metrics,
    /// Messaging between the containers.
    bus: MessageBus,
    /// WASI-NN models, each loaded once and shared by the containers granted it.
    nn_models: NnModels,
    log_config: LogConfig,
    /// Log records no container's log could write.
    log_drops: Arc<Dropped>,
    containers: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<String, Arc<Container>>,
    by_name: HashMap<String, String>,
}

/// One container in memory.
pub(crate) struct Container {
    pub(crate) id: String,
    pub(crate) name: String,
    config: CreateRequest,
    pub(crate) spec: Spec,
    pub(crate) log: Log,
    /// Serializes operator actions on this container.
    ops: tokio::sync::Mutex<()>,
    pub(crate) live: Mutex<Live>,
    /// Bumped whenever a run ends.
    pub(crate) exits: watch::Sender<u64>,
    /// An HTTP app's request counters, kept across its runs.
    http_metrics: Option<Arc<HttpMetrics>>,
}

/// The mutable part of a container.
pub(crate) struct Live {
    pub(crate) record: Record,
    /// Steers the current run (and keeps the last run's figures for stats).
    pub(crate) control: Option<Control>,
    /// The write end of the guest's stdin; dropping it is the polite stop.
    pub(crate) stdin: Option<tokio::io::DuplexStream>,
    /// The memory cap of the current run.
    memory_limit: u64,
}

impl Container {
    pub(crate) fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> State {
        self.live().record.state
    }
}

impl Manager {
    /// Opens the database under `config.root` and recovers: every container is listed
    /// again; one the database shows as running was ended by the daemon's death
    /// (exit 137) and is started again when its restart policy says so.
    pub async fn open(config: Config) -> Result<Manager, DaemonError> {
        std::fs::create_dir_all(&config.root).map_err(|e| {
            DaemonError::Internal(format!("cannot create `{}`: {e}", config.root.display()))
        })?;
        let db = Db::open(&paths::database(&config.root))?;
        let (records, unreadable) = db.all()?;
        let manager = Manager {
            shared: Arc::new(Shared {
                apps: Apps::new(
                    &config.root,
                    config.pool_size,
                    config.max_layer_size,
                    config.use_precompiled,
                )?,
                root: config.root,
                db,
                events: EventBus::default(),
                metrics: Metrics::default(),
                bus: MessageBus::new(config.queue),
                nn_models: NnModels::default(),
                log_config: config.log,
                log_drops: Arc::default(),
                containers: Mutex::new(Registry::default()),
            }),
        };
        for row in unreadable {
            if let Some(record) = dead_record(&manager.shared.db, row) {
                let spec = placeholder_spec(&record.config.image)?;
                manager.register(record, spec);
            }
        }
        let mut to_start = Vec::new();
        for mut record in records {
            let found = record.state;
            let spec = Spec::parse(&record.config);
            let starts = spec.as_ref().is_ok_and(|s| {
                s.restart.starts_with_daemon(
                    found,
                    record.restart_count,
                    record.stopped_by_operator,
                )
            });
            if found.is_active() {
                record.state = State::Exited;
                record.exit_code = Some(KILLED_BY_CRASH);
                record.error = Some("wedged stopped while it was running".into());
                record.finished_at = Some(now());
                if starts {
                    record.restart_count += 1;
                }
            }
            let spec = match spec {
                Ok(spec) => spec,
                Err(e) => {
                    eprintln!(
                        "wedged: container `{}` ({}): unusable config: {e}; marked dead",
                        record.name, record.id
                    );
                    record.state = State::Dead;
                    record.error = Some(format!("unusable config: {e}"));
                    placeholder_spec(&record.config.image)?
                }
            };
            manager.shared.db.update(&record)?;
            let c = manager.register(record, spec);
            if starts {
                to_start.push(c);
            }
        }
        for c in to_start {
            let _op = c.ops.lock().await;
            if let Err(e) = manager.launch(&c, None) {
                eprintln!("wedged: cannot restart `{}`: {e}", c.name);
            }
        }
        Ok(manager)
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.shared
            .containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn register(&self, record: Record, spec: Spec) -> Arc<Container> {
        let spec_serves_http = spec.port.is_some();
        let c = Arc::new(Container {
            id: record.id.clone(),
            name: record.name.clone(),
            config: record.config.clone(),
            spec,
            log: Log::new(
                paths::container_log(&self.shared.root, &record.id),
                self.shared.log_config,
            )
            .counting_drops_in(self.shared.log_drops.clone()),
            ops: tokio::sync::Mutex::new(()),
            live: Mutex::new(Live {
                record,
                control: None,
                stdin: None,
                memory_limit: DEFAULT_MEMORY,
            }),
            exits: watch::channel(0).0,
            http_metrics: spec_serves_http.then(|| Arc::new(HttpMetrics::default())),
        });
        let mut reg = self.registry();
        reg.by_name.insert(c.name.clone(), c.id.clone());
        reg.by_id.insert(c.id.clone(), c.clone());
        c
    }

    /// A container by id, name, or unique id prefix (in that order).
    fn find(&self, key: &str) -> Result<Arc<Container>, DaemonError> {
        let reg = self.registry();
        if let Some(c) = reg.by_id.get(key) {
            return Ok(c.clone());
        }
        if let Some(id) = reg.by_name.get(key) {
            return Ok(reg.by_id[id].clone());
        }
        let mut matches = reg
            .by_id
            .iter()
            .filter(|(id, _)| !key.is_empty() && id.starts_with(key));
        match (matches.next(), matches.next()) {
            (Some((_, c)), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(DaemonError::BadRequest(format!(
                "`{key}` matches more than one container: give more of the id"
            ))),
            (None, _) => Err(DaemonError::NoSuchContainer(key.into())),
        }
    }

    /// Creates a container after checking its config and that its app exists; its
    /// volumes' host paths are resolved and pinned now ([`crate::spec::pin_volumes`]).
    pub fn create(&self, mut request: CreateRequest) -> Result<Created, DaemonError> {
        Spec::parse(&request)?;
        crate::spec::pin_volumes(&mut request)?;
        let spec = Spec::parse(&request)?;
        self.shared.apps.source(&request.image)?;
        let id = new_id()?;
        let name = request.name.clone().unwrap_or_else(|| id[..12].to_string());
        if self.registry().by_name.contains_key(&name) {
            return Err(DaemonError::Conflict(format!(
                "the container name `{name}` is already in use"
            )));
        }
        let record = Record {
            id: id.clone(),
            name: name.clone(),
            config: request,
            state: State::Created,
            exit_code: None,
            error: None,
            restart_count: 0,
            created_at: now(),
            started_at: None,
            finished_at: None,
            stopped_by_operator: false,
        };
        self.shared.db.insert(&record)?;
        self.register(record, spec);
        self.shared.events.emit("create", &id, &name, None, None);
        Ok(Created { id, name })
    }

    /// Containers, oldest first; only those with a run in progress unless `all`.
    pub fn list(&self, all: bool) -> Vec<ContainerSummary> {
        let mut list: Vec<ContainerSummary> = self
            .registry()
            .by_id
            .values()
            .map(|c| summary(c))
            .filter(|s| all || State::parse(&s.state).is_some_and(State::is_active))
            .collect();
        list.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        list
    }

    /// Containers per state, for the metrics.
    pub fn count_by_state(&self) -> Vec<(State, usize)> {
        let mut counts: Vec<(State, usize)> = State::ALL.into_iter().map(|s| (s, 0)).collect();
        for c in self.registry().by_id.values() {
            let state = c.state();
            if let Some(entry) = counts.iter_mut().find(|(s, _)| *s == state) {
                entry.1 += 1;
            }
        }
        counts
    }

    /// Everything about one container.
    pub fn inspect(&self, key: &str) -> Result<ContainerInfo, DaemonError> {
        let c = self.find(key)?;
        let (log_dropped_records, log_dropped_bytes) = c.log.dropped();
        Ok(ContainerInfo {
            summary: summary(&c),
            config: c.config.clone(),
            log_path: c.log.path().display().to_string(),
            log_dropped_records,
            log_dropped_bytes,
        })
    }

    /// Resource use of one container.
    pub fn stats(&self, key: &str) -> Result<ContainerStats, DaemonError> {
        let c = self.find(key)?;
        let live = c.live();
        let control = live.control.as_ref();
        Ok(ContainerStats {
            id: c.id.clone(),
            name: c.name.clone(),
            state: live.record.state.as_str().into(),
            memory_bytes: if live.record.state.is_active() {
                control.map_or(0, Control::memory_bytes)
            } else {
                0
            },
            memory_limit: live.memory_limit,
            fuel_used: control.and_then(Control::fuel_used),
            cpu_time_ns: control.map_or(0, |c| c.busy_time().as_nanos() as u64),
            restart_count: live.record.restart_count,
        })
    }

    /// Starts a created or exited container; `requested` is when the API call came in
    /// (for the start-latency histogram).
    pub async fn start(&self, key: &str, requested: Instant) -> Result<(), DaemonError> {
        let c = self.find(key)?;
        let _op = c.ops.lock().await;
        c.state().check(Action::Start, &c.name)?;
        self.launch(&c, Some(requested))
    }

    /// Loads and links the app, grants its policy and spawns its run. A failure is
    /// recorded in the container's `error` and returned; the state does not change.
    fn launch(&self, c: &Arc<Container>, requested: Option<Instant>) -> Result<(), DaemonError> {
        let prepared = tokio::task::block_in_place(|| self.prepare(c));
        let (workload, policy) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let mut live = c.live();
                live.record.error = Some(e.to_string());
                self.shared.db.update(&live.record)?;
                return Err(e);
            }
        };
        let control = Control::new();
        let (stdin, guest_stdin) = tokio::io::duplex(64);
        {
            let mut live = c.live();
            live.record.state = State::Running;
            live.record.started_at = Some(now());
            live.record.error = None;
            live.record.stopped_by_operator = false;
            live.control = Some(control.clone());
            live.stdin = Some(stdin);
            live.memory_limit = policy.memory;
            self.shared.db.update(&live.record)?;
        }
        c.log.set_running(true);
        self.shared.events.emit("start", &c.id, &c.name, None, None);
        tokio::spawn(supervisor::supervise(
            self.shared.clone(),
            c.clone(),
            Run {
                workload,
                policy,
                control,
                stdin: guest_stdin,
                requested,
            },
        ));
        Ok(())
    }

    fn prepare(&self, c: &Container) -> Result<(Workload, Policy), DaemonError> {
        crate::spec::check_pinned(&c.spec.flags.volumes)?;
        let source = self.shared.apps.source(&c.config.image)?;
        let launch = source.launch(
            c.spec.flags.clone(),
            c.spec.grant_requested,
            c.spec.args.clone(),
        );
        let host = HostServices {
            keyvalue: &|| self.shared.apps.keyvalue(),
            bus: &|| self.shared.bus.clone(),
            nn_models: &self.shared.nn_models,
        };
        let policy = Policy::grant(&launch.grants, launch.argv, &launch.kv_namespace, &host)
            .map_err(runtime_error)?;
        let fuel = policy.fuel.is_some();
        let (Some(listen), Some(metrics)) = (c.spec.port, &c.http_metrics) else {
            let prepared = self.shared.apps.prepare(&source, c.spec.engine, fuel)?;
            return Ok((Workload::Command(prepared), policy));
        };
        #[cfg(not(feature = "serve"))]
        {
            let _ = (listen, metrics);
            Err(DaemonError::BadRequest(crate::spec::NO_HTTP_SERVER.into()))
        }
        #[cfg(feature = "serve")]
        self.prepare_http(c, &source, policy, listen, metrics.clone())
    }

    /// The workload of a container with a port: its app served over HTTP.
    #[cfg(feature = "serve")]
    fn prepare_http(
        &self,
        c: &Container,
        source: &wedge_image::app_source::AppSource,
        policy: Policy,
        listen: std::net::SocketAddr,
        metrics: Arc<HttpMetrics>,
    ) -> Result<(Workload, Policy), DaemonError> {
        use crate::logs::Stream;
        use wedge_runtime::{HttpApp, RequestLimits, SharedOutput};
        use wedge_serve::ServeConfig;
        let fuel = policy.fuel.is_some();
        let app = self.shared.apps.app(source, c.spec.engine, fuel)?;
        let output = SharedOutput::Shared {
            stdout: Arc::new(c.log.stream(Stream::Stdout)),
            stderr: Arc::new(c.log.stream(Stream::Stderr)),
        };
        let mut limits = RequestLimits::new(wedge_serve::DEFAULT_MAX_BODY);
        if let Some(idle) = c.spec.body_timeout {
            limits.body_timeout = idle;
        }
        let app = HttpApp::new(&app, policy.clone(), output, limits).map_err(runtime_error)?;
        let workload = Workload::Http {
            app: Arc::new(app),
            config: ServeConfig {
                listen,
                ..ServeConfig::default()
            },
            metrics,
        };
        Ok((workload, policy))
    }

    /// Stops a container: closes its stdin, waits up to `grace`, then kills it. The
    /// container's lock is held only to ask for the stop, not while the grace period
    /// runs: a `kill` or `rm -f` meanwhile wins at once, whatever `grace` is.
    pub async fn stop(&self, key: &str, grace: Duration) -> Result<(), DaemonError> {
        let c = self.find(key)?;
        let stopping = {
            let _op = c.ops.lock().await;
            self.begin_stop(&c, grace)?
        };
        stopping.finish(&c).await;
        self.shared.events.emit("stop", &c.id, &c.name, None, None);
        Ok(())
    }

    /// Asks a running container to stop (the caller holds its lock): marks the stop as
    /// the operator's, closes its stdin and requests its stop function.
    fn begin_stop(&self, c: &Arc<Container>, grace: Duration) -> Result<Stopping, DaemonError> {
        let exits = c.exits.subscribe();
        let control = {
            let mut live = c.live();
            live.record.state.check(Action::Stop, &c.name)?;
            live.record.stopped_by_operator = true;
            self.shared.db.update(&live.record)?;
            live.stdin = None;
            live.control.clone()
        };
        let grace = if c.state() == State::Restarting {
            Duration::ZERO
        } else {
            grace
        };
        if let Some(control) = &control {
            control.resume();
            control.request_stop();
        }
        Ok(Stopping {
            exits,
            control,
            grace,
        })
    }

    /// Kills a container at once.
    pub async fn kill(&self, key: &str) -> Result<(), DaemonError> {
        let c = self.find(key)?;
        let _op = c.ops.lock().await;
        self.kill_locked(&c).await?;
        self.shared.events.emit("kill", &c.id, &c.name, None, None);
        Ok(())
    }

    async fn kill_locked(&self, c: &Arc<Container>) -> Result<(), DaemonError> {
        let mut exits = c.exits.subscribe();
        {
            let mut live = c.live();
            live.record.state.check(Action::Kill, &c.name)?;
            live.record.stopped_by_operator = true;
            self.shared.db.update(&live.record)?;
            live.stdin = None;
            if let Some(control) = &live.control {
                control.kill();
            }
        }
        until_inactive(c, &mut exits).await;
        Ok(())
    }

    /// Stops (when running) and starts a container. As for [`Manager::stop`], the
    /// grace period runs without the container's lock.
    pub async fn restart(
        &self,
        key: &str,
        grace: Duration,
        requested: Instant,
    ) -> Result<(), DaemonError> {
        let c = self.find(key)?;
        let stopping = {
            let _op = c.ops.lock().await;
            if c.state().is_active() {
                Some(self.begin_stop(&c, grace)?)
            } else {
                None
            }
        };
        if let Some(stopping) = stopping {
            stopping.finish(&c).await;
        }
        let _op = c.ops.lock().await;
        if !self.registry().by_id.contains_key(&c.id) {
            // Removed (`rm -f`) while it was stopping.
            return Err(DaemonError::NoSuchContainer(key.into()));
        }
        c.state().check(Action::Start, &c.name)?;
        self.shared
            .events
            .emit("restart", &c.id, &c.name, None, None);
        self.launch(&c, Some(requested))
    }

    /// Suspends (`pause = true`) or resumes a running container.
    pub async fn pause(&self, key: &str, pause: bool) -> Result<(), DaemonError> {
        let c = self.find(key)?;
        let _op = c.ops.lock().await;
        {
            let mut live = c.live();
            let (action, to) = if pause {
                (Action::Pause, State::Paused)
            } else {
                (Action::Unpause, State::Running)
            };
            live.record.state.check(action, &c.name)?;
            if let Some(control) = &live.control {
                if pause {
                    control.pause();
                } else {
                    control.resume();
                }
            }
            live.record.state = to;
            self.shared.db.update(&live.record)?;
        }
        let action = if pause { "pause" } else { "unpause" };
        self.shared.events.emit(action, &c.id, &c.name, None, None);
        Ok(())
    }

    /// Removes a container and its logs; `force` kills a running one first.
    pub async fn remove(&self, key: &str, force: bool) -> Result<(), DaemonError> {
        let c = self.find(key)?;
        let _op = c.ops.lock().await;
        if force && c.state().is_active() {
            self.kill_locked(&c).await?;
            self.shared.events.emit("kill", &c.id, &c.name, None, None);
        }
        c.state().check(Action::Remove, &c.name)?;
        self.shared.db.delete(&c.id)?;
        {
            let mut reg = self.registry();
            reg.by_id.remove(&c.id);
            reg.by_name.remove(&c.name);
        }
        c.log.delete();
        // Wake waiters: the container they wait for is gone.
        c.exits.send_modify(|n| *n += 1);
        self.shared
            .events
            .emit("destroy", &c.id, &c.name, None, None);
        Ok(())
    }

    /// Waits until the container's current (or next) run ends; at once when it has
    /// exited already.
    pub async fn wait(&self, key: &str) -> Result<WaitResponse, DaemonError> {
        let c = self.find(key)?;
        let mut exits = c.exits.subscribe();
        if !matches!(c.state(), State::Exited | State::Dead) {
            let _ = exits.changed().await;
        }
        if !self.registry().by_id.contains_key(&c.id) {
            return Err(DaemonError::NoSuchContainer(key.into()));
        }
        let live = c.live();
        Ok(WaitResponse {
            exit_code: live.record.exit_code.unwrap_or(0),
            error: live.record.error.clone(),
        })
    }

    /// The last `tail` log records and, when `follow` and the container is running, a
    /// live feed and a watch of whether it still runs.
    pub fn logs(
        &self,
        key: &str,
        tail: Option<usize>,
        follow: bool,
    ) -> Result<(Vec<LogRecord>, Option<Follow>), DaemonError> {
        let c = self.find(key)?;
        let follow = follow && c.state().is_active();
        Ok(c.log.read(tail, follow))
    }

    /// Pulls an image into the daemon's store.
    pub async fn pull(&self, reference: &str) -> Result<String, DaemonError> {
        self.shared.apps.pull(reference).await
    }

    /// Prometheus metrics text.
    pub fn metrics(&self) -> String {
        let mut text = self
            .shared
            .metrics
            .render(&self.count_by_state(), self.shared.bus.counters());
        let (records, bytes) = self.shared.log_drops.get();
        for (name, help, v) in [
            (
                "wedge_log_dropped_records_total",
                "Container output records that could not be written to their log.",
                records,
            ),
            (
                "wedge_log_dropped_bytes_total",
                "Bytes of container output that could not be written to their log.",
                bytes,
            ),
        ] {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        }
        let registry = self.registry();
        let mut http: Vec<(&str, &HttpMetrics)> = registry
            .by_id
            .values()
            .filter_map(|c| Some((c.name.as_str(), c.http_metrics.as_deref()?)))
            .collect();
        if !http.is_empty() {
            http.sort_by_key(|(name, _)| *name);
            let labelled: Vec<(String, &HttpMetrics)> = http
                .into_iter()
                .map(|(name, m)| (format!("container=\"{name}\""), m))
                .collect();
            text.push_str(&HttpMetrics::render_all(&labelled));
        }
        text
    }

    /// The event feed.
    pub fn events(&self) -> broadcast::Receiver<crate::types::Event> {
        self.shared.events.subscribe()
    }

    /// The message bus the containers share.
    pub fn bus(&self) -> MessageBus {
        self.shared.bus.clone()
    }

    /// Slots in the instance pool, when pooling is in use.
    pub fn pool_size(&self) -> Option<u32> {
        self.shared.apps.pool_size()
    }
}

/// A stop asked for, whose grace period is still to run.
struct Stopping {
    exits: watch::Receiver<u64>,
    control: Option<Control>,
    grace: Duration,
}

impl Stopping {
    /// Waits up to the grace period for the run to end, then kills it and waits for
    /// that. Holds no lock: a kill or removal meanwhile ends the wait.
    async fn finish(mut self, c: &Container) {
        if tokio::time::timeout(self.grace, until_inactive(c, &mut self.exits))
            .await
            .is_err()
        {
            if let Some(control) = &self.control {
                control.kill();
            }
            until_inactive(c, &mut self.exits).await;
        }
    }
}

/// A container whose row this daemon cannot read, as a dead one that can be inspected
/// and removed; the row is marked dead (its config is kept as it was). `None` for a row
/// without an id, which is left alone. Either way a log line names it.
fn dead_record(db: &Db, row: crate::db::Unreadable) -> Option<Record> {
    let Some(id) = row.id.filter(|id| !id.is_empty()) else {
        eprintln!(
            "wedged: a row of the state database has no id and is ignored: {}",
            row.error
        );
        return None;
    };
    let name = row
        .name
        .unwrap_or_else(|| id.chars().take(12).collect::<String>());
    eprintln!(
        "wedged: container `{name}` ({id}) cannot be read from the state database, marked dead: {}",
        row.error
    );
    let record = Record {
        config: CreateRequest {
            image: row.image.unwrap_or_default(),
            ..CreateRequest::default()
        },
        state: State::Dead,
        exit_code: None,
        error: Some(format!("unreadable state: {}", row.error)),
        restart_count: 0,
        created_at: row.created_at.unwrap_or_default(),
        started_at: None,
        finished_at: None,
        stopped_by_operator: true,
        id,
        name,
    };
    if let Err(e) = db.mark_dead(&record.id, record.error.as_deref().unwrap_or_default()) {
        eprintln!("wedged: cannot mark container `{}` dead: {e}", record.name);
    }
    Some(record)
}

/// The spec of a dead container, which never runs: only `image` is kept, for display.
fn placeholder_spec(image: &str) -> Result<Spec, DaemonError> {
    let image = if image.is_empty() { "unknown" } else { image };
    Spec::parse(&CreateRequest {
        image: image.into(),
        ..CreateRequest::default()
    })
}

/// Completes when the container has no run in progress.
async fn until_inactive(c: &Container, exits: &mut watch::Receiver<u64>) {
    while c.state().is_active() {
        if exits.changed().await.is_err() {
            return;
        }
    }
}

fn summary(c: &Container) -> ContainerSummary {
    let live = c.live();
    let r = &live.record;
    ContainerSummary {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.config.image.clone(),
        state: r.state.as_str().into(),
        created: r.created_at.clone(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        exit_code: r.exit_code,
        error: r.error.clone(),
        restart_count: r.restart_count,
        restart_policy: c.spec.restart.to_string(),
        ports: c.spec.port.map(|a| a.to_string()),
    }
}

/// 64 random hex digits.
fn new_id() -> Result<String, DaemonError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| DaemonError::Internal(format!("no randomness for an id: {e}")))?;
    Ok(hex::encode(bytes))
}
