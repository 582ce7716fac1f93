//! Command-line definitions (clap), kept apart from what the commands do.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use wedge_manifest::{ByteSize, DurationSpec, EnvGrant, NetRule, VolumeSpec};
use wedge_runtime::EngineKind;

/// Run WebAssembly apps as sandboxed containers.
#[derive(Debug, Parser)]
#[command(name = "wedge", version, about, max_term_width = 100)]
pub struct Cli {
    /// Data root: code cache and, later, images and state
    /// [default: $XDG_DATA_HOME/wedge, or /var/lib/wedge as root]
    #[arg(long, global = true, env = "WEDGE_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// wedge's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a Wasm app (module, component, .cwasm, or a folder with a wedge.toml)
    Run(RunArgs),
    /// Describe a Wasm app: kind, WASI version, capabilities, imports, exports, sha256
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
    /// Upload an image to its registry
    Push(RegistryArgs),
    /// Download an image (by tag or digest) from its registry into the local store
    Pull(RegistryArgs),
    /// Store credentials for a registry (checked against it first)
    Login(LoginArgs),
    /// Forget the stored credentials for a registry
    Logout(LogoutArgs),
    /// Write images to an OCI image-layout tar (for air-gapped devices)
    Save(SaveArgs),
    /// Read images from an OCI image-layout tar
    Load(LoadArgs),
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

    /// Linear memory cap, e.g. `32MiB` [default: 512MiB]
    #[arg(short = 'm', long = "memory", value_name = "SIZE")]
    pub memory: Option<ByteSize>,

    /// Instruction budget in fuel units; exhausting it ends the app (exit 124)
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// Wall-clock limit, e.g. `2s` or `500ms`; passing it ends the app (exit 124)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<DurationSpec>,

    /// Compiler tier
    #[arg(long, value_name = "ENGINE", default_value = "cranelift", value_parser = parse_engine)]
    pub engine: EngineKind,

    /// Do not read or write the AOT code cache
    #[arg(long)]
    pub no_cache: bool,

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
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// The app: a .wasm file, a wedge.toml, or a folder holding one
    pub app: PathBuf,
}

/// `wedge compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Output file [default: the input with a .cwasm extension]
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Target to compile for, e.g. `pulley64` for the portable interpreter [default: the host]
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
