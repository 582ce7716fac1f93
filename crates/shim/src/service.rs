//! containerd's shim v2 API (task service v2) over wedge: the shim process that
//! `start` leaves behind serves it for one pod (or one container outside Kubernetes),
//! runs each container in its own [`crate::process`] and reports exits as events.

use crate::container::{Container, Exit, Streams};
use crate::error::ShimError;
use crate::{cgroup, launch, process, wasm_layer};
use async_trait::async_trait;
use containerd_shim::api::{self, Status};
use containerd_shim::asynchronous::monitor::monitor_subscribe;
use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim::asynchronous::util::{mount_rootfs, read_file_to_str, write_str_to_file};
use containerd_shim::asynchronous::{ExitSignal, Shim, spawn};
use containerd_shim::monitor::{Subject, Topic};
use containerd_shim::protos::events::task::{TaskCreate, TaskDelete, TaskExit, TaskStart};
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::topics;
use containerd_shim::protos::ttrpc::{self, Code, context};
use containerd_shim::util::{convert_to_any, timestamp};
use containerd_shim::{Config, Error, Flags, StartOpts, Task, TtrpcContext, TtrpcResult};
use oci_spec::runtime::Spec;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The annotation grouping a pod's containers into one shim process.
const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// The shim: what `start`, `delete` and the serving process share.
#[derive(Clone)]
pub struct Service {
    exit: Arc<ExitSignal>,
    namespace: String,
    id: String,
    /// containerd's gRPC socket.
    address: String,
}

#[async_trait]
impl Shim for Service {
    type T = Tasks;

    async fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Service {
            exit: Arc::new(ExitSignal::default()),
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            address: args.address.clone(),
        }
    }

    /// Starts (or finds) the serving process of the container's pod, and records its
    /// address in the bundle, where containerd looks after a restart.
    async fn start_shim(&mut self, opts: StartOpts) -> Result<String, Error> {
        let spec = launch::read_spec(Path::new(".")).map_err(|e| Error::Other(e.to_string()))?;
        let grouping = spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(SANDBOX_ID_ANNOTATION).cloned())
            .unwrap_or_else(|| opts.id.clone());
        let address = spawn(opts, &grouping, Vec::new()).await?;
        write_str_to_file("address", &address).await?;
        Ok(address)
    }

    /// containerd's clean-up after a task is gone (or its shim died): kill what may
    /// be left of the container's process (its pid file is removed once the shim
    /// reaps it, and names the process's start time too, so a reused pid is never
    /// signalled), unmount its root filesystem, remove its cgroup once it is empty.
    async fn delete_shim(&mut self) -> Result<api::DeleteResponse, Error> {
        let bundle = std::env::current_dir().map_err(|e| Error::Other(e.to_string()))?;
        if let Ok(recorded) = read_file_to_str(bundle.join(PID_FILE)).await
            && let Some((pid, started)) = recorded.trim().split_once(' ')
            && let Ok(pid) = pid.parse::<i32>()
            && start_time(pid).as_deref() == Some(started)
        {
            // SAFETY: a plain signal to the process the shim started for this bundle
            // (same pid, same start time).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // Its cgroup can go once it has died (a zombie has left it).
            for _ in 0..100 {
                if start_time(pid).is_none() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        unmount(&bundle.join("rootfs"));
        remove_cgroup(&bundle);
        Ok(api::DeleteResponse {
            exit_status: 137,
            exited_at: Some(timestamp()?).into(),
            ..Default::default()
        })
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> Tasks {
        let tasks = Tasks {
            exit: self.exit.clone(),
            namespace: self.namespace.clone(),
            address: self.address.clone(),
            publisher: Arc::new(publisher),
            containers: Arc::default(),
        };
        log::info!("serving containers of `{}`", self.id);
        tasks.watch_exits().await;
        tasks
    }
}

/// The file in a bundle holding its container's pid and start time, for `delete`
/// after a shim crash.
const PID_FILE: &str = "wedge.pid";

/// When process `pid` started (field 22 of `/proc/PID/stat`, in clock ticks since
/// boot), while it lives and is not a zombie.
fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields[0] is field 3 (the state); field 22 is fields[19].
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19).map(|s| s.to_string())
}

/// The task service: the containers of one shim process.
#[derive(Clone)]
pub struct Tasks {
    exit: Arc<ExitSignal>,
    namespace: String,
    /// containerd's gRPC socket, to read images' Wasm layers.
    address: String,
    publisher: Arc<RemotePublisher>,
    containers: Arc<Mutex<HashMap<String, Arc<Container>>>>,
}

impl Tasks {
    /// Follows the exits of the containers' processes (reaped by the shim library's
    /// SIGCHLD handler) and publishes them.
    async fn watch_exits(&self) {
        let mut exits = match monitor_subscribe(Topic::Pid).await {
            Ok(subscription) => subscription,
            Err(e) => {
                log::error!("cannot follow process exits: {e}");
                return;
            }
        };
        let tasks = self.clone();
        tokio::spawn(async move {
            while let Some(event) = exits.rx.recv().await {
                let Subject::Pid(pid) = event.subject else {
                    continue;
                };
                let found = tasks
                    .table()
                    .values()
                    .find(|c| c.pid as i32 == pid)
                    .cloned();
                if let Some(container) = found {
                    tasks.exited(&container, event.exit_code as u32).await;
                }
            }
        });
    }

    async fn exited(&self, container: &Container, status: u32) {
        // The pid is reaped and may be reused: `delete` must not signal it any more.
        let _ = std::fs::remove_file(container.bundle.join(PID_FILE));
        let at = timestamp().unwrap_or_default();
        container.set_exited(Exit {
            status,
            at: at.clone(),
        });
        let event = TaskExit {
            container_id: container.id.clone(),
            id: container.id.clone(),
            pid: container.pid,
            exit_status: status,
            exited_at: Some(at).into(),
            ..Default::default()
        };
        self.publish(topics::TASK_EXIT_EVENT_TOPIC, Box::new(event))
            .await;
    }

    async fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let ctx = context::with_duration(Duration::from_secs(5));
        if let Err(e) = self
            .publisher
            .publish(ctx, topic, &self.namespace, event)
            .await
        {
            log::warn!("cannot publish {topic}: {e}");
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn find(&self, id: &str) -> TtrpcResult<Arc<Container>> {
        self.table()
            .get(id)
            .cloned()
            .ok_or_else(|| status(Code::NOT_FOUND, format!("container `{id}` not found")))
    }

    /// When the image's filesystem holds no app at the entrypoint, takes the app from
    /// the image's Wasm layer, if it has one ([`wasm_layer`]).
    async fn app_from_layer(&self, id: &str, bundle: &Path, spec: &Spec) -> Result<(), ShimError> {
        if launch::app_in_image(bundle, spec).is_ok() {
            return Ok(());
        }
        let layers = process::state_root().join("layers");
        wasm_layer::link_app(&self.address, &self.namespace, id, bundle, &layers).await?;
        Ok(())
    }

    /// Creates the container's process, waiting for `start`.
    fn spawn_process(
        &self,
        req: &api::CreateTaskRequest,
        sandbox: bool,
    ) -> Result<Arc<Container>, ShimError> {
        let bundle = PathBuf::from(&req.bundle);
        let fifo = bundle.join(process::START_FIFO);
        let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes())
            .map_err(|e| ShimError::Host(e.to_string()))?;
        // The shim holds the start FIFO open for reading and writing from now on, so
        // the process's open never blocks and its read waits for `start`'s byte.
        let gate = if sandbox {
            None
        } else {
            // SAFETY: `path` is a NUL-terminated path for the duration of the call.
            if unsafe { libc::mkfifo(path.as_ptr(), 0o600) } != 0 {
                return Err(ShimError::Host(format!(
                    "cannot create `{}`: {}",
                    fifo.display(),
                    std::io::Error::last_os_error()
                )));
            }
            let gate = OpenOptions::new().read(true).write(true).open(&fifo);
            Some(gate.map_err(|e| ShimError::Host(format!("`{}`: {e}", fifo.display())))?)
        };
        let streams = Streams {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
        };
        let exe = std::env::current_exe().map_err(|e| ShimError::Host(e.to_string()))?;
        let mode = if sandbox {
            process::SANDBOX_MODE
        } else {
            process::APP_MODE
        };
        let mut table = self.table();
        let child = Command::new(exe)
            .arg(mode)
            .arg(&bundle)
            .current_dir(&bundle)
            .stdin(open_stream(&streams.stdin, false)?)
            .stdout(open_stream(&streams.stdout, true)?)
            .stderr(open_stream(&streams.stderr, true)?)
            .spawn()
            .map_err(|e| ShimError::Host(format!("cannot start the container's process: {e}")))?;
        let pid = child.id();
        // The shim library's SIGCHLD handler reaps it and reports the exit.
        drop(child);
        let started = start_time(pid as i32).unwrap_or_default();
        std::fs::write(bundle.join(PID_FILE), format!("{pid} {started}"))
            .map_err(|e| ShimError::Host(format!("cannot record the pid: {e}")))?;
        let container = Arc::new(Container::new(req.id.clone(), bundle, streams, pid, gate));
        table.insert(req.id.clone(), container.clone());
        Ok(container)
    }
}

/// A container stream: the FIFO (or file) containerd named, opened without waiting
/// for its other end; `/dev/null` when there is none.
fn open_stream(path: &str, write: bool) -> Result<File, ShimError> {
    let path = if path.is_empty() { "/dev/null" } else { path };
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(if write { 0 } else { libc::O_NONBLOCK })
        .open(path)
        .map_err(|e| ShimError::Host(format!("cannot open `{path}`: {e}")))
        .and_then(|file| {
            if !write {
                clear_nonblocking(&file)?;
            }
            Ok(file)
        })
}

fn clear_nonblocking(file: &File) -> Result<(), ShimError> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(ShimError::Host(format!(
            "cannot set up the container's stdin: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

fn unmount(rootfs: &Path) {
    if let Some(target) = rootfs.to_str() {
        // A root filesystem that is not mounted (yet, or any more) is fine.
        let _ = containerd_shim::mount::umount_recursive(Some(target), 0);
    }
}

/// Removes the cgroup of the container in `bundle`, whose process is gone.
fn remove_cgroup(bundle: &Path) {
    if let Ok(spec) = launch::read_spec(bundle) {
        cgroup::remove(&spec);
    }
}

/// A ttrpc error with `code`.
fn status(code: Code, message: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

fn invalid(e: ShimError) -> ttrpc::Error {
    status(Code::INVALID_ARGUMENT, e.to_string())
}

#[async_trait]
impl Task for Tasks {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if req.terminal {
            return Err(status(
                Code::INVALID_ARGUMENT,
                "a terminal is not supported for Wasm containers",
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        let rootfs = bundle.join("rootfs");
        for mount in &req.rootfs {
            mount_rootfs(mount, &rootfs).await?;
        }
        let spec = launch::read_spec(&bundle).map_err(invalid)?;
        let sandbox = launch::is_sandbox(&spec);
        if !sandbox {
            if let Err(e) = self.app_from_layer(&req.id, &bundle, &spec).await {
                unmount(&rootfs);
                return Err(invalid(e));
            }
            // Refuse a bad app or grant here, where CRI reports it on the pod.
            launch::resolve(&bundle, &spec).map_err(|e| {
                unmount(&rootfs);
                invalid(e)
            })?;
        }
        let container = self.spawn_process(&req, sandbox).map_err(|e| {
            unmount(&rootfs);
            status(Code::INTERNAL, e.to_string())
        })?;
        if sandbox {
            container.set_running();
        }
        let event = TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(containerd_shim::protos::events::task::TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: false,
                ..Default::default()
            })
            .into(),
            pid: container.pid,
            ..Default::default()
        };
        self.publish(topics::TASK_CREATE_EVENT_TOPIC, Box::new(event))
            .await;
        Ok(api::CreateTaskResponse {
            pid: container.pid,
            ..Default::default()
        })
    }

    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        reject_exec(&req.exec_id)?;
        let container = self.find(&req.id)?;
        if container.set_running() {
            if let Err(e) = container.open_gate() {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("container `{}` cannot start: {e}", req.id),
                ));
            }
        } else if matches!(container.state().0, Status::STOPPED) {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("container `{}` has already run", req.id),
            ));
        }
        let event = TaskStart {
            container_id: req.id.clone(),
            pid: container.pid,
            ..Default::default()
        };
        self.publish(topics::TASK_START_EVENT_TOPIC, Box::new(event))
            .await;
        Ok(api::StartResponse {
            pid: container.pid,
            ..Default::default()
        })
    }

    async fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        reject_exec(&req.exec_id)?;
        let container = self.find(&req.id)?;
        let (status, exit) = container.state();
        Ok(api::StateResponse {
            id: container.id.clone(),
            bundle: container.bundle.to_string_lossy().into_owned(),
            pid: container.pid,
            status: status.into(),
            stdin: container.streams.stdin.clone(),
            stdout: container.streams.stdout.clone(),
            stderr: container.streams.stderr.clone(),
            exit_status: exit.as_ref().map_or(0, |e| e.status),
            exited_at: exit.map(|e| e.at).into(),
            ..Default::default()
        })
    }

    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        reject_exec(&req.exec_id)?;
        let container = self.find(&req.id)?;
        let exit = container.wait().await;
        Ok(api::WaitResponse {
            exit_status: exit.status,
            exited_at: Some(exit.at).into(),
            ..Default::default()
        })
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        reject_exec(&req.exec_id)?;
        let container = self.find(&req.id)?;
        if container.state().0 == Status::STOPPED {
            return Err(status(
                Code::NOT_FOUND,
                format!("container `{}`: process already finished", req.id),
            ));
        }
        // SAFETY: a plain signal to the container's own process, which is not reaped
        // yet (it is not stopped), so the pid is still its.
        if unsafe { libc::kill(container.pid as i32, req.signal as i32) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(status(Code::INTERNAL, format!("kill: {e}")));
        }
        Ok(api::Empty::default())
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        reject_exec(&req.exec_id)?;
        let container = self.find(&req.id)?;
        let exit = match container.state() {
            (Status::STOPPED, Some(exit)) => exit,
            (Status::CREATED, _) => {
                // Never started: end the waiting process.
                // SAFETY: as in `kill`.
                unsafe { libc::kill(container.pid as i32, libc::SIGKILL) };
                container.wait().await
            }
            _ => {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("container `{}` is running: stop it first", req.id),
                ));
            }
        };
        self.table().remove(&req.id);
        unmount(&container.bundle.join("rootfs"));
        remove_cgroup(&container.bundle);
        let event = TaskDelete {
            container_id: req.id.clone(),
            id: req.id.clone(),
            pid: container.pid,
            exit_status: exit.status,
            exited_at: Some(exit.at.clone()).into(),
            ..Default::default()
        };
        self.publish(topics::TASK_DELETE_EVENT_TOPIC, Box::new(event))
            .await;
        Ok(api::DeleteResponse {
            pid: container.pid,
            exit_status: exit.status,
            exited_at: Some(exit.at).into(),
            ..Default::default()
        })
    }

    async fn pids(
        &self,
        _ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        let container = self.find(&req.id)?;
        Ok(api::PidsResponse {
            processes: vec![containerd_shim::protos::types::task::ProcessInfo {
                pid: container.pid,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    async fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let container = self.find(&req.id)?;
        let cgroup = containerd_shim::cgroup::get_cgroup(container.pid)?;
        let metrics = containerd_shim::cgroup::collect_metrics(&cgroup)?;
        Ok(api::StatsResponse {
            stats: Some(convert_to_any(Box::new(metrics))?).into(),
            ..Default::default()
        })
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self.table().get(&req.id).map_or(0, |c| c.pid);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    async fn shutdown(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ShutdownRequest,
    ) -> TtrpcResult<api::Empty> {
        if self.table().is_empty() {
            self.exit.signal();
        }
        Ok(api::Empty::default())
    }

    async fn exec(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ExecProcessRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(unsupported("exec"))
    }

    async fn pause(&self, _ctx: &TtrpcContext, _req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        Err(unsupported("pause"))
    }

    async fn resume(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ResumeRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(unsupported("resume"))
    }
}

/// Processes other than the container's own (`exec`) are not offered.
fn reject_exec(exec_id: &str) -> TtrpcResult<()> {
    if exec_id.is_empty() {
        Ok(())
    } else {
        Err(unsupported("exec"))
    }
}

fn unsupported(what: &str) -> ttrpc::Error {
    status(
        Code::UNIMPLEMENTED,
        format!("{what} is not supported for Wasm containers"),
    )
}
