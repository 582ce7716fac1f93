//! How the CLI talks to wedged without compiling it: the API client ([`Client`]), the
//! API's JSON documents ([`types`], as `api/openapi.yaml` describes them), where the
//! daemon's socket and data root are by default ([`paths`]), the checks made before a
//! socket is trusted ([`local`]) and TLS client settings ([`tls`]).

mod client;
mod error;
pub mod local;
pub mod paths;
pub mod tls;
pub mod types;

pub use client::{Client, Host, LogsQuery};
pub use error::ClientError;
