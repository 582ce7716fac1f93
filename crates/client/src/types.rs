//! The API's JSON documents, shared by the daemon and its client. `api/openapi.yaml`
//! at the repository root describes the same shapes.

use serde::{Deserialize, Serialize};
use wedge_manifest::Grants;

/// `POST /v2/containers`: what to run and what it is granted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreateRequest {
    /// Unique name; the daemon picks one when absent.
    pub name: Option<String>,
    /// An image in the daemon's store, or an absolute path (on the daemon's host) to a
    /// `.wasm`, `.cwasm`, `wedge.toml` or app folder.
    pub image: String,
    /// Arguments after the app's own.
    pub args: Vec<String>,
    /// What the operator grants, laid over what the app asks for: [`Grants`] in its
    /// JSON form. Host paths (volumes, models) must be absolute and environment
    /// variables `KEY=VALUE`: the daemon has no working directory or environment of
    /// the caller's.
    pub grants: Grants,
    /// Grant the env and network access the image requests.
    pub grant_requested: bool,
    /// `no`, `on-failure[:MAX]`, `always` or `unless-stopped` (default `no`).
    pub restart: Option<String>,
    /// Compiler tier: `cranelift` (default), `winch` or `pulley`.
    pub engine: Option<String>,
    /// Serve the app (a `wasi:http` component) over HTTP on `PORT` (all interfaces) or
    /// `IP:PORT` (`-p`), a fresh instance per request; limits apply to each request.
    pub port: Option<String>,
    /// For an HTTP app: how long it may wait for the next piece of a request body
    /// before the client is cut off with 408, e.g. `10s` (the default).
    pub body_timeout: Option<String>,
}

/// The answer to a create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// The container's id (64 hex digits).
    pub id: String,
    /// Its name.
    pub name: String,
}

/// One container, as `wedge ps` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSummary {
    /// 64 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// What it runs, as given at create.
    pub image: String,
    /// `created`, `running`, `paused`, `restarting`, `exited` or `dead`.
    pub state: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// When its current or last run started.
    pub started_at: Option<String>,
    /// When its last run ended.
    pub finished_at: Option<String>,
    /// Exit code of the last run.
    pub exit_code: Option<i32>,
    /// What ended the last run, or why it could not start.
    pub error: Option<String>,
    /// How many times the restart policy restarted it.
    pub restart_count: u32,
    /// The restart policy.
    pub restart_policy: String,
    /// Where an HTTP app listens (`IP:PORT`), if it is one.
    #[serde(default)]
    pub ports: Option<String>,
}

/// `GET /v2/containers/{id}`: everything about one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// The summary fields.
    #[serde(flatten)]
    pub summary: ContainerSummary,
    /// The create request it was made from.
    pub config: CreateRequest,
    /// Its log file.
    pub log_path: String,
    /// Output records that could not be written to its log (out of descriptors, disk
    /// full); the log itself notes them once it can be written again.
    #[serde(default)]
    pub log_dropped_records: u64,
    /// The bytes of those records.
    #[serde(default)]
    pub log_dropped_bytes: u64,
}

/// `POST /v2/containers/{id}/wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitResponse {
    /// The exit code of the run that ended.
    pub exit_code: i32,
    /// What ended it, when not a normal exit.
    pub error: Option<String>,
}

/// `GET /v2/containers/{id}/stats`: resource use of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// 64 hex digits.
    pub id: String,
    /// Name.
    pub name: String,
    /// State.
    pub state: String,
    /// Linear memory of the current run, in bytes (64 KiB Wasm pages).
    pub memory_bytes: u64,
    /// The memory cap, in bytes.
    pub memory_limit: u64,
    /// Fuel used by the last finished run, when fuel is metered.
    pub fuel_used: Option<u64>,
    /// Time the current run has spent executing guest code and host calls, in ns.
    pub cpu_time_ns: u64,
    /// Restarts so far.
    pub restart_count: u32,
}

/// One line of a container's output (`GET /v2/containers/{id}/logs`, one JSON object
/// per line; also the format of the log files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When it was written (RFC 3339, nanoseconds).
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text, with its newline when it had one.
    pub log: String,
}

/// A container event (`GET /v2/events`, server-sent events named `container`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When (RFC 3339).
    pub time: String,
    /// `create`, `start`, `die`, `oom`, `restart`, `stop`, `kill`, `pause`, `unpause`,
    /// `destroy`.
    pub action: String,
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// For `die`: the exit code.
    pub exit_code: Option<i32>,
    /// For `die`: what ended the run, when not a normal exit.
    pub reason: Option<String>,
}

/// Every error answer: an HTTP status and this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One line, lowercase, as the CLI prints it.
    pub message: String,
}

/// `POST /v2/images/pull`: an image to pull into the daemon's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// The image reference, by tag or digest.
    pub reference: String,
}

/// The answer to a pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pulled {
    /// The reference pulled.
    pub reference: String,
    /// Its manifest digest.
    pub digest: String,
}

/// `GET /v2/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// wedged's version.
    pub version: String,
    /// The API version (`v2`).
    pub api: String,
}
