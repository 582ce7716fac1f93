//! wedged, wedge's container manager daemon (its command line is [`command`], its
//! binary `src/main.rs`). The client the CLI talks to it with, and the API's documents,
//! are `wedge-client`.
//!
//! - [`manager`]: containers as async tasks, lifecycle checked by [`lifecycle`],
//!   state in SQLite ([`db`]), restart policies, recovery after a crash;
//! - [`api`]: HTTP/JSON v2 over the unix socket and, with a token, TCP ([`server`]);
//!   `wedge_client::types` are its documents;
//! - [`logs`], [`events`], [`metrics`]: what an operator watches.

pub mod api;
mod apps;
pub mod command;
pub mod db;
mod error;
pub mod events;
pub mod lifecycle;
pub mod logs;
pub mod manager;
pub mod metrics;
pub mod perms;
pub mod resident;
pub mod server;
pub mod spec;
mod supervisor;

pub use error::DaemonError;
pub use manager::{Config, Manager};
pub use wedge_client::{paths, types};

/// The current time in RFC 3339 (UTC, nanoseconds), as every timestamp is kept.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
