//! What a container's OCI runtime spec (the bundle's `config.json`, written by
//! containerd from the image and the pod) grants its Wasm app, in wedge's one grant
//! model ([`Grants`]):
//!
//! - `process.args`: the app (`args[0]`, a `.wasm` in the container's root filesystem,
//!   unless the shim took it from the image's Wasm layer, [`wasm_layer`]) and its
//!   arguments; `process.env`: its environment.
//! - the root filesystem is preopened at `/` (read-only when the spec says so), and
//!   each bind mount of a directory at its destination (read-only with `ro`);
//! - `linux.resources.memory.limit` (the pod's memory limit), less what the runtime
//!   holds, caps linear memory ([`cap_memory`]);
//! - the [`GRANTS_ANNOTATION`] annotation adds wedge's own grants, in the schema of
//!   the daemon API's `grants` object: network, HTTP, config, limits, key-value (in
//!   namespaces scoped by the pod's Kubernetes namespace), WASI-NN models (files the
//!   container sees) and messaging (the container's bus bridged to the node's MQTT
//!   broker, [`BROKER_VAR`]). Host volumes and host environment are refused there
//!   (Kubernetes gives those through the pod spec).

use crate::error::ShimError;
use crate::wasm_layer;
use oci_spec::runtime::Spec;
use std::ffi::CString;
use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use wedge_bridge::BrokerUrl;
use wedge_manifest::{
    ByteSize, DEFAULT_MAX_BYTES, DEFAULT_MAX_KEYS, EnvGrant, Grants, KeyValueGrant, VolumeMode,
    VolumeSpec,
};

/// The pod or container annotation holding wedge's own grants, as JSON.
pub const GRANTS_ANNOTATION: &str = "wedge.io/grants";

/// The annotation containerd's CRI plugin sets to `sandbox` on a pod's sandbox
/// (pause) container.
const CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";

/// Mount destinations that are the host's business, never a guest's directory.
const SYSTEM_MOUNTS: [&str; 3] = ["/proc", "/dev", "/sys"];

/// One Wasm app to run, resolved from a bundle.
#[derive(Debug)]
pub struct Launch {
    /// The `.wasm` (or `.cwasm`) file, inside the bundle's root filesystem.
    pub wasm: PathBuf,
    /// `argv`, `argv[0]` as the spec gives it.
    pub args: Vec<String>,
    /// Everything the spec and its annotations grant.
    pub grants: Grants,
    /// The container's memory limit (`linux.resources.memory.limit`): its cgroup's, and
    /// less what the runtime itself holds, the cap on linear memory (see
    /// [`cap_memory`]).
    pub memory_limit: Option<u64>,
    /// The key-value namespace when the grant names none (see [`kv_scope`]).
    pub kv_namespace: String,
    /// The node's MQTT broker, when the container may use messaging.
    pub broker: Option<Broker>,
    /// Where a `wasi:http/proxy` component is served: the [`LISTEN_ANNOTATION`], else
    /// [`DEFAULT_LISTEN`] in the pod's network namespace.
    pub listen: SocketAddr,
    /// The granted model files, open: their grants name them as `/proc/self/fd/N`, so
    /// they must stay open until the models are loaded.
    pub models: Vec<File>,
}

/// The annotation giving the address an HTTP component listens on.
pub const LISTEN_ANNOTATION: &str = "wedge.io/listen";
/// Where an HTTP component listens without [`LISTEN_ANNOTATION`]: port 8080 on every
/// address of the pod (its `containerPort`).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// Whether the spec is a pod's sandbox container (which holds the pod's namespaces
/// and runs no app).
pub fn is_sandbox(spec: &Spec) -> bool {
    annotation(spec, CONTAINER_TYPE_ANNOTATION) == Some("sandbox")
}

/// Reads `config.json` from `bundle`.
pub fn read_spec(bundle: &Path) -> Result<Spec, ShimError> {
    let path = bundle.join("config.json");
    Spec::load(&path).map_err(|e| ShimError::Spec(format!("cannot read `{}`: {e}", path.display())))
}

/// The app of the container whose spec is `spec` and bundle `bundle`.
pub fn resolve(bundle: &Path, spec: &Spec) -> Result<Launch, ShimError> {
    let rootfs = root_dir(bundle, spec)?;
    let process = spec_process(spec)?;
    let args = process.args().clone().unwrap_or_default();
    // The image's Wasm layer, when the shim took the app from there.
    let layer = bundle.join(wasm_layer::BUNDLE_LINK);
    let wasm = if layer.is_file() {
        layer
    } else {
        entrypoint(&rootfs, process)?
    };
    let mut grants = Grants::default();
    for var in process.env().iter().flatten() {
        // Always `KEY=VALUE` (never the node's own variable); a later entry replaces
        // an earlier one, as the pod's `env` replaces the image's.
        let (key, value) = var
            .split_once('=')
            .ok_or_else(|| ShimError::Spec(format!("environment variable `{var}` has no `=`")))?;
        grants.env.retain(|e| e.key() != key);
        grants.env.push(EnvGrant::Set(key.into(), value.into()));
    }
    let readonly = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    grants.volumes.push(VolumeSpec {
        host: rootfs.clone(),
        guest: "/".into(),
        mode: mode(readonly),
    });
    grants.volumes.extend(mounted_dirs(spec));
    let memory_limit = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .filter(|limit| *limit > 0)
        .map(|limit| limit as u64);
    let mut grants = grants.overlay(annotated_grants(spec)?);
    let mut models = Vec::new();
    for model in &mut grants.nn.models {
        let file =
            container_file(&rootfs, spec, &model.path).map_err(|why| ShimError::Annotation {
                annotation: GRANTS_ANNOTATION,
                message: format!(
                    "model `{}`: `{}` is not in the container: {why}",
                    model.name,
                    model.path.display()
                ),
            })?;
        // Loaded through the open file: a volume another container writes cannot
        // swap a link to the node's files in after this check.
        model.path = fd_path(&file);
        models.push(file);
    }
    let scope = kv_scope(spec);
    if let Some(kv) = grants.keyvalue.as_mut() {
        // The node's disk is shared: a pod may lower its quota, never raise it.
        kv.max_keys = Some(
            kv.max_keys
                .map_or(DEFAULT_MAX_KEYS, |k| k.min(DEFAULT_MAX_KEYS)),
        );
        let bytes = kv
            .max_bytes
            .map_or(DEFAULT_MAX_BYTES, |b| b.0.min(DEFAULT_MAX_BYTES));
        kv.max_bytes = Some(ByteSize(bytes));
        if let Some(namespace) = kv.namespace.as_mut() {
            *namespace = format!("{scope}.{namespace}");
            KeyValueGrant::validate_namespace(namespace).map_err(|e| ShimError::Annotation {
                annotation: GRANTS_ANNOTATION,
                message: e.to_string(),
            })?;
        }
    }
    let container = annotation(spec, CONTAINER_NAME_ANNOTATION)
        .map(str::to_string)
        .or_else(|| Some(bundle.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let kv_namespace = format!("{scope}.{container}");
    let broker = if grants.messaging == Default::default() {
        None
    } else {
        let pod = annotation(spec, POD_NAME_ANNOTATION).unwrap_or("-");
        Some(Broker::of_node(
            &format!("wedge-{scope}.{pod}.{container}"),
            &format!("{scope}/"),
        )?)
    };
    Ok(Launch {
        wasm,
        args,
        grants,
        memory_limit,
        kv_namespace,
        broker,
        listen: listen_address(spec)?,
        models,
    })
}

/// The app the entrypoint (`process.args[0]`) names in the container's root
/// filesystem.
pub fn app_in_image(bundle: &Path, spec: &Spec) -> Result<PathBuf, ShimError> {
    entrypoint(&root_dir(bundle, spec)?, spec_process(spec)?)
}

/// The file `process.args[0]` names in the root filesystem `rootfs`.
fn entrypoint(rootfs: &Path, process: &oci_spec::runtime::Process) -> Result<PathBuf, ShimError> {
    let program = process.args().iter().flatten().next().ok_or_else(|| {
        ShimError::Spec(
            "the container has no command: set the image's entrypoint to its .wasm file".into(),
        )
    })?;
    inside_rootfs(rootfs, process.cwd(), program)
}

fn spec_process(spec: &Spec) -> Result<&oci_spec::runtime::Process, ShimError> {
    spec.process()
        .as_ref()
        .ok_or_else(|| ShimError::Spec("the spec has no process to run".into()))
}

/// The root filesystem's directory: the spec's `root.path`, relative to the bundle.
fn root_dir(bundle: &Path, spec: &Spec) -> Result<PathBuf, ShimError> {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    let root = bundle.join(root);
    root.canonicalize()
        .map_err(|e| ShimError::Spec(format!("root filesystem `{}`: {e}", root.display())))
}

/// `program` as a file of the root filesystem: absolute paths from its root, relative
/// ones from the process's working directory. The path returned is the node's, for a
/// file of the container's own snapshot (which no other container writes).
fn inside_rootfs(rootfs: &Path, cwd: &Path, program: &str) -> Result<PathBuf, ShimError> {
    open_in_root(rootfs, &cwd.join(program))
        .and_then(|file| {
            std::fs::read_link(fd_path(&file)).map_err(|e| e.to_string())
        })
        .map_err(|why| {
            ShimError::Spec(format!(
                "the app `{program}` is not in the image: {why} (the entrypoint must name the .wasm file)"
            ))
        })
}

/// Opens `path` as inside a container whose root is `root`, resolved by the kernel
/// (`openat2` with `RESOLVE_IN_ROOT`): symbolic links are followed, an absolute target
/// starts again from `root` and `..` never climbs above it, so no link reaches the
/// node's files, even one swapped in while the path is resolved. The result is a
/// regular file (opened without blocking, so a FIFO cannot hang the shim).
fn open_in_root(root: &Path, path: &Path) -> Result<File, String> {
    let dir = File::open(root).map_err(|e| format!("`{}`: {e}", root.display()))?;
    let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| "a NUL in the path")?;
    // SAFETY: a plain value struct of integers, all zero before the fields are set.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `dir` is an open directory, `path` NUL-terminated and `how` a valid
    // `open_how` of the size passed, for the whole call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        return Err(if error.raw_os_error() == Some(libc::ENOSYS) {
            "resolving a path inside a container needs Linux 5.6 or later (openat2)".into()
        } else {
            error.to_string()
        });
    }
    // SAFETY: `fd` is a descriptor the call above just opened, owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd as i32) };
    match file.metadata() {
        Ok(meta) if meta.is_file() => Ok(file),
        Ok(_) => Err("not a file".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The path that reaches `file` itself through `/proc`, whatever happens to the name
/// it was opened by.
fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// A file the container sees at `path`: in a mounted directory (the longest mount
/// destination holding it) or else in the image, opened as [`open_in_root`] does.
fn container_file(rootfs: &Path, spec: &Spec, path: &Path) -> Result<File, String> {
    let absolute = Path::new("/").join(path);
    let mount = mounted_dirs(spec)
        .into_iter()
        .filter(|v| absolute.starts_with(&v.guest))
        .max_by_key(|v| v.guest.len());
    match mount {
        Some(volume) => {
            let rest = absolute.strip_prefix(&volume.guest).unwrap_or(&absolute);
            open_in_root(&volume.host, &Path::new("/").join(rest))
        }
        None => open_in_root(rootfs, &absolute),
    }
}

/// The bind mounts of directories, as volumes (files such as `/etc/hosts` cannot be
/// preopened and are left out, as are `/proc`, `/dev` and `/sys`).
fn mounted_dirs(spec: &Spec) -> Vec<VolumeSpec> {
    let mut volumes = Vec::new();
    for mount in spec.mounts().iter().flatten() {
        let options = mount.options().clone().unwrap_or_default();
        let bind = mount.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        let Some(source) = mount.source() else {
            continue;
        };
        let guest = mount.destination().to_string_lossy().into_owned();
        let system = SYSTEM_MOUNTS
            .iter()
            .any(|s| Path::new(&guest).starts_with(s));
        if !bind || system || !source.is_dir() {
            continue;
        }
        volumes.push(VolumeSpec {
            host: source.clone(),
            guest,
            mode: mode(options.iter().any(|o| o == "ro")),
        });
    }
    volumes
}

fn mode(readonly: bool) -> VolumeMode {
    if readonly {
        VolumeMode::Ro
    } else {
        VolumeMode::Rw
    }
}

fn annotation<'a>(spec: &'a Spec, key: &str) -> Option<&'a str> {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The annotations naming the pod's Kubernetes namespace, the pod and the container.
const NAMESPACE_ANNOTATION: &str = "io.kubernetes.cri.sandbox-namespace";
const POD_NAME_ANNOTATION: &str = "io.kubernetes.cri.sandbox-name";
const CONTAINER_NAME_ANNOTATION: &str = "io.kubernetes.cri.container-name";

/// The variable in containerd's environment (which shims inherit) naming the node's
/// MQTT broker, `mqtt://[USER@]HOST[:PORT]` or `mqtts://…`.
pub const BROKER_VAR: &str = "WEDGE_SHIM_MQTT";
/// The variable naming a PEM file of CA certificates for an `mqtts://` broker.
pub const BROKER_CA_VAR: &str = "WEDGE_SHIM_MQTT_CA";

/// The node's MQTT broker, which a container's bus is bridged to.
#[derive(Debug)]
pub struct Broker {
    /// Where it is and how to log in (the password from `WEDGE_MQTT_PASSWORD`).
    pub url: BrokerUrl,
    /// The client id, stable across restarts of the same container of the same pod.
    pub client_id: String,
    /// CA certificates for TLS, if not the public roots.
    pub ca: Option<PathBuf>,
    /// The prefix of the container's topics on the broker: its pod's Kubernetes
    /// namespace (`shop/` for `shop`), so pods of one namespace never see another's.
    pub prefix: String,
}

impl Broker {
    /// The broker the node's environment names, for client `client_id` with topics
    /// under `prefix`; an error when it names none or a bad one.
    fn of_node(client_id: &str, prefix: &str) -> Result<Broker, ShimError> {
        let refuse = |message: String| ShimError::Annotation {
            annotation: GRANTS_ANNOTATION,
            message,
        };
        let url = std::env::var(BROKER_VAR).map_err(|_| {
            refuse(format!(
                "messaging needs the node's MQTT broker: set {BROKER_VAR} in containerd's environment"
            ))
        })?;
        let mut url: BrokerUrl = url
            .parse()
            .map_err(|e| refuse(format!("{BROKER_VAR}: {e}")))?;
        let password = std::env::var(wedge_bridge::PASSWORD_VAR).ok();
        url.resolve_password(None, password)
            .map_err(|e| refuse(format!("{BROKER_VAR}: {e}")))?;
        Ok(Broker {
            url,
            client_id: client_id.to_string(),
            ca: std::env::var_os(BROKER_CA_VAR).map(PathBuf::from),
            prefix: prefix.to_string(),
        })
    }
}

/// The prefix of every key-value namespace a container uses: its pod's Kubernetes
/// namespace (`containerd` outside Kubernetes), so that no pod reaches another
/// Kubernetes namespace's data on the node, whatever its annotation names.
fn kv_scope(spec: &Spec) -> &str {
    annotation(spec, NAMESPACE_ANNOTATION).unwrap_or("containerd")
}

/// The [`LISTEN_ANNOTATION`]'s address, else [`DEFAULT_LISTEN`].
fn listen_address(spec: &Spec) -> Result<SocketAddr, ShimError> {
    let Some(listen) = annotation(spec, LISTEN_ANNOTATION) else {
        return Ok(DEFAULT_LISTEN.parse().expect("a valid default address"));
    };
    listen.parse().map_err(|e| ShimError::Annotation {
        annotation: LISTEN_ANNOTATION,
        message: format!("`{listen}` is not an address such as `0.0.0.0:8080`: {e}"),
    })
}

/// The grants of the [`GRANTS_ANNOTATION`] annotation, if any.
fn annotated_grants(spec: &Spec) -> Result<Grants, ShimError> {
    let Some(json) = annotation(spec, GRANTS_ANNOTATION) else {
        return Ok(Grants::default());
    };
    let refuse = |message: String| ShimError::Annotation {
        annotation: GRANTS_ANNOTATION,
        message,
    };
    let grants: Grants = serde_json::from_str(json).map_err(|e| refuse(e.to_string()))?;
    if !grants.volumes.is_empty() {
        return Err(refuse(
            "`volumes` name host paths: give the pod a volume and mount it instead".into(),
        ));
    }
    if let Some(EnvGrant::Inherit(key)) = grants
        .env
        .iter()
        .find(|e| matches!(e, EnvGrant::Inherit(_)))
    {
        return Err(refuse(format!(
            "`{key}` would take the node's environment: give it a value"
        )));
    }
    Ok(grants)
}

/// What the process needs beside its resident memory at start and the guest's linear
/// memory: stacks, tables, host buffers.
const RUNTIME_RESERVE: u64 = 4 << 20;

/// Caps linear memory so that the whole process stays under the container's memory
/// limit, which its cgroup enforces: the limit less what the process holds once the
/// app is loaded (`resident` bytes) and a reserve. A guest that grows past it sees
/// `memory.grow` fail (and traps, if it does not check), rather than being killed by
/// the kernel's OOM killer. A lower cap in the annotation stays.
pub fn cap_memory(grants: &mut Grants, limit: Option<u64>, resident: u64) {
    if let Some(limit) = limit {
        let room = limit.saturating_sub(resident + RUNTIME_RESERVE);
        let capped = grants.limits.memory.map_or(room, |m| m.0.min(room));
        grants.limits.memory = Some(ByteSize(capped));
    }
}

#[cfg(test)]
mod tests {
    use super::open_in_root;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    /// Links resolve inside the root, whatever their target; a FIFO is refused
    /// without blocking.
    #[test]
    fn paths_resolve_inside_the_root_only() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "node").unwrap();
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir(r.join("dir")).unwrap();
        std::fs::write(r.join("dir/file"), "inside").unwrap();
        let secret = outside.path().join("secret");
        symlink(&secret, r.join("absolute")).unwrap();
        symlink(
            "../../../../../../..".to_string() + secret.to_str().unwrap(),
            r.join("climbing"),
        )
        .unwrap();
        symlink("/dir/file", r.join("rooted")).unwrap();
        let fifo = std::ffi::CString::new(r.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path for the duration of the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let read = |path: &str| {
            open_in_root(r, Path::new(path)).map(|f| std::io::read_to_string(f).unwrap())
        };
        assert_eq!(read("/dir/file").unwrap(), "inside");
        assert_eq!(read("/dir/../../../dir/file").unwrap(), "inside");
        assert_eq!(read("/rooted").unwrap(), "inside");
        assert!(read("/absolute").is_err());
        assert!(read("/climbing").is_err());
        assert_eq!(read("/fifo").unwrap_err(), "not a file");
        assert_eq!(read("/dir").unwrap_err(), "not a file");
    }
}
