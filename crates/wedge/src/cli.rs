//! Command-line definitions (clap), kept apart from what the commands do.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use wedge_manifest::{
    ByteSize, ConfigValue, DurationSpec, EnvGrant, Grants, HttpOrigin, KeyValueGrant, Limits,
    MAX_NN_THREADS, MessagingGrant, NetRule, NetworkGrant, NnBackend, NnGrant, NnModelSpec,
    TopicFilter, VolumeSpec,
};
use wedge_runtime::EngineKind;

/// Run WebAssembly apps as sandboxed containers.
#[derive(Debug, Parser)]
#[command(name = "wedge", version, about, max_term_width = 100)]
pub struct Cli {
    /// Data root, shared with wedged: images, compiled code, key-value data, credentials
    /// and the daemon's state [default: $XDG_DATA_HOME/wedge, or /var/lib/wedge as root]
    #[arg(long, global = true, env = "WEDGE_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Daemon address: `unix:///PATH`, `/PATH`, `tcp://HOST:PORT` or, over TLS,
    /// `https://HOST:PORT` (token from $WEDGE_TOKEN) [default:
    /// unix://$XDG_RUNTIME_DIR/wedge/wedged.sock; as root, unix:///run/wedge/wedged.sock]
    #[arg(
        short = 'H',
        long,
        global = true,
        env = "WEDGE_HOST",
        value_name = "HOST"
    )]
    pub host: Option<String>,

    /// PEM certificates to trust for a daemon's TLS listener; with it a `tcp://` host
    /// is spoken to over TLS too [default for `https://`: the public web roots]
    #[arg(long, global = true, env = "WEDGE_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// wedge's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a Wasm app (module, component, .cwasm, or a folder with a wedge.toml)
    Run(RunArgs),
    /// Serve a wasi:http component over HTTP, a fresh instance per request
    Serve(ServeArgs),
    /// Create a container in the daemon without starting it; prints its id
    Create(CreateArgs),
    /// Start created or exited containers
    Start(ContainersArgs),
    /// Stop running containers: close their stdin, then kill them after a grace period
    Stop(StopArgs),
    /// Kill running containers at once
    Kill(ContainersArgs),
    /// Stop and start containers
    Restart(StopArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Pause running containers
    Pause(ContainersArgs),
    /// Resume paused containers
    Unpause(ContainersArgs),
    /// Wait until containers stop; prints each one's exit code
    Wait(ContainersArgs),
    /// List containers
    Ps(PsArgs),
    /// Show a container's output
    Logs(LogsArgs),
    /// Show containers' resource use
    Stats(StatsArgs),
    /// Print the daemon's container events as they happen
    Events(EventsArgs),
    /// Describe a Wasm app (kind, WASI version, capabilities, imports, exports, sha256),
    /// a container or an image
    Inspect(InspectArgs),
    /// Compile a Wasm app ahead of time to a .cwasm file
    Compile(CompileArgs),
    /// Build an image from an app folder (its wedge.toml) into the local store
    Build(BuildArgs),
    /// List images in the local store
    Images(ImagesArgs),
    /// Manage images: inspect, ls, rm, prune, fsck
    #[command(subcommand)]
    Image(ImageCommand),
    /// Give an image another name
    Tag(TagArgs),
    /// Remove images by name (their unused blobs go too)
    Rmi(RmiArgs),
    /// Upload an image to its registry, with code precompiled for devices if asked
    Push(PushArgs),
    /// Download an image (by tag or digest) from its registry into the local store
    Pull(PullArgs),
    /// Store credentials for a registry (checked against it first)
    Login(LoginArgs),
    /// Forget the stored credentials for a registry
    Logout(LogoutArgs),
    /// Write images to an OCI image-layout tar (for air-gapped devices)
    Save(SaveArgs),
    /// Read images from an OCI image-layout tar
    Load(LoadArgs),
    /// Make apps for microcontrollers (wedge-micro): bundles of precompiled apps
    #[command(subcommand)]
    Micro(MicroCommand),
    /// Compile an app with Cranelift into the code cache, at low priority: started in
    /// the background by a first run on the baseline compiler (internal)
    #[command(hide = true)]
    TierUp(TierUpArgs),
}

/// `wedge tier-up`.
#[derive(Debug, Args)]
pub struct TierUpArgs {
    /// Compile in fuel metering, as the run that started it had
    #[arg(long)]
    pub fuel: bool,

    /// Compile without epoch checks, as the run that started it had
    #[arg(long)]
    pub no_epochs: bool,

    /// The app is an image's layer in the local store, with this hex sha256
    #[arg(long, value_name = "SHA256")]
    pub layer: Option<String>,

    /// The Wasm file
    pub app: PathBuf,
}

/// `wedge micro`.
#[derive(Debug, Subcommand)]
pub enum MicroCommand {
    /// Compile apps (core modules: files or images) for wedge-micro and write them, with
    /// their limits and digests, as one device bundle
    Bundle(MicroBundleArgs),
}

/// `wedge micro bundle`.
#[derive(Debug, Args)]
pub struct MicroBundleArgs {
    /// The bundle to write
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,

    /// The apps, one `[[app]]` table each (source, name, args, env, memory, fuel,
    /// restart, messaging), instead of APP arguments
    #[arg(
        short = 'f',
        long = "file",
        value_name = "TOML",
        conflicts_with = "apps"
    )]
    pub file: Option<PathBuf>,

    /// Memory cap of each APP (linear memories and tables)
    #[arg(short = 'm', long, value_name = "SIZE", default_value = "128KiB")]
    pub memory: ByteSize,

    /// Fuel budget of each APP per run (about one unit per instruction) [default: none]
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,

    /// Times each APP is started again after a failed run
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub restart: u32,

    /// Allow each APP to publish to topics matching an MQTT filter, e.g. `sensors/+/temp`
    #[arg(long = "allow-publish", value_name = "FILTER")]
    pub allow_publish: Vec<TopicFilter>,

    /// Allow each APP to subscribe with filters covered by an MQTT filter, e.g. `commands/#`
    #[arg(long = "allow-subscribe", value_name = "FILTER")]
    pub allow_subscribe: Vec<TopicFilter>,

    /// The apps: `.wasm` core modules, `.cwasm` code compiled for wedge-micro, or images
    /// (from the local store, pulled when missing)
    #[arg(value_name = "APP", required_unless_present = "file")]
    pub apps: Vec<String>,
}

/// `wedge save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Output file [default: standard output]
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Images to save
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `wedge load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Input file [default: standard input]
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// `wedge push` / `wedge pull`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    pub insecure: bool,

    /// Image reference, e.g. `localhost:5000/sensors/logger:1.2.0` or `name@sha256:…`
    pub image: String,
}

/// `wedge push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Also compile the image's Wasm for this target and attach the code to the image,
    /// for devices to run without compiling: a target triple such as
    /// `aarch64-unknown-linux-gnu`, or `pulley32`/`pulley64` (the interpreter, e.g. for
    /// 32-bit ARM). Repeat for several targets
    #[arg(long, value_name = "TARGET")]
    pub precompile: Vec<String>,

    /// With --precompile, also attach code with fuel metering (for apps run with --fuel)
    #[arg(long, requires = "precompile")]
    pub precompile_fuel: bool,

    /// The registry and image.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `wedge pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Largest Wasm layer accepted; an image declaring a larger one is refused before
    /// it is downloaded [default: 256MiB]
    #[arg(long, env = MAX_LAYER_SIZE_ENV, value_name = "SIZE")]
    pub max_layer_size: Option<ByteSize>,

    /// Run the code precompiled for this machine's target and engine that the image
    /// carries (`wedge push --precompile`) instead of compiling its Wasm. That code is
    /// native code: use it only from registries whose pushers you trust as much as
    /// the software on this machine. `WEDGE_USE_PRECOMPILED=1` does the same, here and
    /// for the pull of `wedge run IMAGE`
    #[arg(long)]
    pub use_precompiled: bool,

    /// The registry and image.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The variable that sets the largest layer a pull accepts (`wedge pull`, and the pull
/// of `wedge run IMAGE`).
pub const MAX_LAYER_SIZE_ENV: &str = "WEDGE_MAX_LAYER_SIZE";

/// The variable that makes pulls use an image's precompiled code (`wedge pull`, and the
/// pull of `wedge run IMAGE`).
pub const USE_PRECOMPILED_ENV: &str = "WEDGE_USE_PRECOMPILED";

/// `wedge login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name
    #[arg(short = 'u', long = "username")]
    pub username: String,

    /// Read the password from standard input
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,

    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    pub insecure: bool,

    /// Registry host, e.g. `localhost:5000`
    pub registry: String,
}

/// `wedge logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host
    pub registry: String,
}

/// `wedge image …`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Show an image's manifest, config, digests and requested permissions (JSON)
    Inspect(ImageRefArgs),
    /// List images (same as `wedge images`)
    Ls(ImagesArgs),
    /// Remove images (same as `wedge rmi`)
    Rm(RmiArgs),
    /// Delete blobs no image uses
    Prune,
    /// Check every blob's digest; quarantine corrupt ones and untag broken images
    Fsck(FsckArgs),
}

/// `wedge build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name for the image, e.g. `localhost:5000/sensors/logger:1.2.0`
    #[arg(short = 't', long = "tag", value_name = "REF", required = true)]
    pub tags: Vec<String>,

    /// The app: a folder with a wedge.toml, or the wedge.toml itself
    #[arg(default_value = ".")]
    pub app: PathBuf,

    /// Who runs the image: `wedge` (the CNCF Wasm artifact: one `application/wasm`
    /// layer), or `containerd` (an ordinary OCI image whose tar layer holds
    /// `/app.wasm`, its entrypoint: for containerd-shim-wedge-v1 and Kubernetes)
    #[arg(long = "for", value_enum, default_value = "wedge")]
    pub runner: Runner,
}

/// The form of image `wedge build` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runner {
    /// The Wasm artifact, for wedge.
    Wedge,
    /// An OCI container image, for containerd.
    Containerd,
}

/// `wedge images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// An image reference argument.
#[derive(Debug, Args)]
pub struct ImageRefArgs {
    /// Image reference (name[:tag] or name@sha256:…)
    pub image: String,
}

/// `wedge image fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `wedge tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// Existing image
    pub source: String,
    /// New name
    pub target: String,
}

/// `wedge rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `wedge run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background as a container of the daemon and print its id
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Do not read or write the AOT code cache
    #[arg(long, conflicts_with = "detach")]
    pub no_cache: bool,

    /// What to run and what it is granted.
    #[command(flatten)]
    pub launch: LaunchArgs,
}

/// `wedge serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = wedge_serve::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Largest request body accepted (larger: 413)
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(wedge_serve::DEFAULT_MAX_BODY))]
    pub max_body: ByteSize,

    /// Largest request header section (request line and headers; larger: 431)
    #[arg(long, value_name = "SIZE", default_value = "16KiB")]
    pub max_header_size: ByteSize,

    /// Requests handled at once (each in its own instance); more wait in the queue
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_concurrency: u32,

    /// Requests that may wait for a free slot; beyond them: 503 with Retry-After
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub queue: u32,

    /// How long a request may wait in the queue before it gets 503
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub queue_timeout: DurationSpec,

    /// Connections open at once; more wait to be accepted
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: u32,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// On SIGTERM or Ctrl-C, how long in-flight requests may still take
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub grace: DurationSpec,

    /// Where the access log goes: `stderr`, `stdout`, `off` or a file (appended to)
    #[arg(long, value_name = "DEST", default_value = "stderr")]
    pub access_log: String,

    /// Worker threads serving requests. One by default: every instance's memory reset
    /// makes the kernel interrupt the CPUs of the process's other threads (TLB
    /// shootdowns), which costs more than a second thread gains on small machines; to
    /// use many cores, run one `wedge serve --reuse-port` per core
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: u32,

    /// Let several `wedge serve` processes listen on the same address (SO_REUSEPORT);
    /// the kernel spreads connections across them
    #[arg(long)]
    pub reuse_port: bool,

    /// Also serve Prometheus metrics at http://ADDR/metrics
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Do not read or write the AOT code cache
    #[arg(long)]
    pub no_cache: bool,

    /// The app and what it is granted (limits apply to each request).
    #[command(flatten)]
    pub launch: LaunchArgs,
}

/// `wedge create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// What to run and what it is granted.
    #[command(flatten)]
    pub launch: LaunchArgs,
}

/// The app, its grants and limits: shared by `wedge run` and `wedge create`.
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Container name (with -d) [default: one the daemon picks]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Restart policy (with -d): `no`, `on-failure[:MAX]`, `always` or `unless-stopped`
    /// [default: no]
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,

    /// Serve the app (a wasi:http component) over HTTP on PORT (all interfaces) or
    /// IP:PORT, a fresh instance per request (with -d; in the foreground use `wedge serve`)
    #[arg(short = 'p', long = "publish", value_name = "[IP:]PORT")]
    pub port: Option<String>,

    /// For an HTTP app (`wedge serve`, or -d with -p): how long it may wait for the next
    /// piece of a request body before the client is cut off with 408 [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub body_timeout: Option<DurationSpec>,

    /// What the app is granted.
    #[command(flatten)]
    pub grants: GrantArgs,

    /// Compiler tier [default: cranelift; the first run of a big app (1 MiB of Wasm or
    /// more) starts on winch code while cranelift compiles it in the background, for the
    /// runs after it]
    #[arg(long, value_name = "ENGINE", value_parser = parse_engine)]
    pub engine: Option<EngineKind>,

    /// For an image: grant the env and network access it requests (never host paths)
    #[arg(long)]
    pub grant_requested: bool,

    /// The app: a .wasm or .cwasm file, a wedge.toml, a folder holding one, or an image
    pub app: String,

    /// Arguments for the app (after the app, or after `--`)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

/// The flags that grant capabilities and set limits; [`GrantArgs::grants`] turns them
/// into the [`Grants`] that `wedge run`, `wedge run -d` and `wedge serve` launch with.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Grant a host directory at a guest path, read-only unless `:rw`
    #[arg(short = 'v', long = "volume", value_name = "HOST:GUEST[:ro|rw]")]
    pub volumes: Vec<VolumeSpec>,

    /// Set an environment variable (`KEY` alone passes the host's value)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<EnvGrant>,

    /// Allow outbound TCP/UDP to HOST:PORT (IP, CIDR, DNS name or `*`; port, range or `*`)
    #[arg(long = "allow-net", value_name = "ADDR")]
    pub allow_net: Vec<NetRule>,

    /// Allow binding and listening on HOST:PORT
    #[arg(long = "allow-listen", value_name = "ADDR")]
    pub allow_listen: Vec<NetRule>,

    /// Allow DNS name lookups
    #[arg(long = "allow-dns")]
    pub allow_dns: bool,

    /// Allow outbound HTTP requests (wasi:http) to an origin, e.g. `https://api.example.com`,
    /// `http://127.0.0.1:8081` or `https://*.example.com`
    #[arg(long = "allow-outbound", value_name = "ORIGIN")]
    pub allow_outbound: Vec<HttpOrigin>,

    /// Grant key-value storage (wasi:keyvalue), kept under the data root across runs
    #[arg(long)]
    pub kv: bool,

    /// Key-value namespace; apps with the same one share data (implies --kv)
    /// [default: from the canonical path of the Wasm file or the image's repository]
    #[arg(long, value_name = "NAME")]
    pub kv_namespace: Option<String>,

    /// Most keys the app may store (implies --kv) [default: 10000]
    #[arg(long, value_name = "N")]
    pub kv_max_keys: Option<u64>,

    /// Most bytes, keys plus values, the app may store (implies --kv) [default: 16MiB]
    #[arg(long, value_name = "SIZE")]
    pub kv_max_bytes: Option<ByteSize>,

    /// Allow publishing to topics matching an MQTT filter, e.g. `sensors/+/temp`
    #[arg(long = "allow-publish", value_name = "FILTER")]
    pub allow_publish: Vec<TopicFilter>,

    /// Allow subscribing with filters covered by an MQTT filter, e.g. `commands/#`
    #[arg(long = "allow-subscribe", value_name = "FILTER")]
    pub allow_subscribe: Vec<TopicFilter>,

    /// Set a runtime config value the app reads through wasi:config
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<ConfigValue>,

    /// Grant an ONNX model the app loads by name through WASI-NN, e.g. `mnist=./mnist.onnx`
    #[arg(long = "nn-model", value_name = "NAME=PATH")]
    pub nn_models: Vec<NnModelSpec>,

    /// Let the app load models from bytes it passes (WASI-NN `load`)
    #[arg(long)]
    pub nn_allow_bytes: bool,

    /// Threads each inference may use [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_NN_THREADS as i64))]
    pub nn_threads: Option<u32>,

    /// WASI-NN execution contexts the app may hold at once [default: 4]
    #[arg(long, value_name = "N")]
    pub nn_max_contexts: Option<u32>,

    /// The engine that runs the app's models: `tract` (built in) or `onnxruntime` (a
    /// build with the `onnxruntime` feature, library from $ORT_DYLIB_PATH) [default: tract]
    #[arg(long, value_name = "BACKEND")]
    pub nn_backend: Option<NnBackend>,

    /// Hard limits.
    #[command(flatten)]
    pub limits: Limits,
}

impl GrantArgs {
    /// What the flags grant, as relative paths and `-e KEY` (inherit) as given.
    pub fn grants(self) -> Grants {
        let any_kv = self.kv
            || self.kv_namespace.is_some()
            || self.kv_max_keys.is_some()
            || self.kv_max_bytes.is_some();
        Grants {
            env: self.env,
            volumes: self.volumes,
            network: NetworkGrant {
                connect: self.allow_net,
                listen: self.allow_listen,
                dns: self.allow_dns,
                http: self.allow_outbound,
            },
            keyvalue: any_kv.then_some(KeyValueGrant {
                namespace: self.kv_namespace,
                max_keys: self.kv_max_keys,
                max_bytes: self.kv_max_bytes,
            }),
            config: self.config,
            messaging: MessagingGrant {
                publish: self.allow_publish,
                subscribe: self.allow_subscribe,
            },
            nn: NnGrant {
                models: self.nn_models,
                allow_bytes: self.nn_allow_bytes,
                threads: self.nn_threads,
                max_contexts: self.nn_max_contexts,
                backend: self.nn_backend,
            },
            limits: self.limits,
        }
    }
}

/// Commands that take one or more containers: `start`, `kill`, `pause`, `unpause`,
/// `wait`.
#[derive(Debug, Args)]
pub struct ContainersArgs {
    /// Containers, by name, id or unique id prefix
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `wedge stop` / `wedge restart`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for a container to stop before killing it [default: the daemon's]
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        value_name = "SECS"
    )]
    pub time: Option<u64>,

    /// Containers, by name, id or unique id prefix
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `wedge rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove running containers too
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Containers, by name, id or unique id prefix
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `wedge ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Print only container ids
    #[arg(short = 'q', long, conflicts_with = "format")]
    pub quiet: bool,

    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `wedge logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until interrupted or the container is removed
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Only the last N lines [default: all]
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<usize>,

    /// Prefix each line with the time it was written (RFC 3339)
    #[arg(short = 't', long)]
    pub timestamps: bool,

    /// Container, by name, id or unique id prefix
    pub container: String,
}

/// `wedge stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers, not only running ones (when none are named)
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Print once instead of refreshing every second
    #[arg(long)]
    pub no_stream: bool,

    /// Output format (`json`: one array per line, per refresh)
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Containers, by name, id or unique id prefix [default: all running ones]
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `wedge events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Output format (`json`: one object per line)
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Table,
    /// JSON, for scripts.
    Json,
}

/// `wedge inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Output format of an app's description (containers and images are always JSON)
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// The app (a .wasm file, a wedge.toml, or a folder holding one), a container (name,
    /// id or unique id prefix) or an image in the local store
    #[arg(value_name = "APP|CONTAINER|IMAGE")]
    pub target: String,
}

/// `wedge compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Output file [default: the input with a .cwasm extension]
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Target to compile for: `pulley64`/`pulley32` (the portable interpreter) or a target
    /// triple such as `aarch64-unknown-linux-gnu` [default: the host]
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,

    /// Compiler tier
    #[arg(long, value_name = "ENGINE", default_value = "cranelift", value_parser = parse_engine)]
    pub engine: EngineKind,

    /// Compile in fuel metering, so the .cwasm can run with `--fuel`
    #[arg(long)]
    pub fuel: bool,

    /// The .wasm file to compile
    pub input: PathBuf,
}

fn parse_engine(s: &str) -> Result<EngineKind, String> {
    s.parse()
        .map_err(|e: wedge_runtime::RuntimeError| e.to_string())
}
