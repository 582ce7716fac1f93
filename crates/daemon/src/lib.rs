//! wedged, wedge's container manager daemon, and the client the CLI talks to it with.
//!
//! - [`manager`]: containers as async tasks, lifecycle checked by [`lifecycle`],
//!   state in SQLite ([`db`]), restart policies, recovery after a crash;
//! - [`api`]: HTTP/JSON v2 over the unix socket and, with a token, TCP ([`server`]);
//!   [`types`] are its documents and [`client`] its client;
//! - [`logs`], [`events`], [`metrics`]: what an operator watches.

pub mod api;
mod apps;
pub mod bridge;
pub mod client;
pub mod db;
mod error;
pub mod events;
pub mod lifecycle;
pub mod logs;
pub mod manager;
pub mod metrics;
pub mod paths;
pub mod perms;
pub mod server;
pub mod spec;
mod supervisor;
pub mod types;

pub use client::{Client, Host, LogsQuery};
pub use error::DaemonError;
pub use manager::{Config, Manager};

/// The current time in RFC 3339 (UTC, nanoseconds), as every timestamp is kept.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
