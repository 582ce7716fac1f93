//! A client for the daemon's API over its unix socket or its TCP listener.

use crate::ClientError;
use crate::types::{
    ContainerInfo, ContainerStats, ContainerSummary, CreateRequest, Created, ErrorBody, Event,
    LogRecord, PullRequest, Pulled, Version, WaitResponse,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the daemon listens: `unix:///path.sock` (or a bare path), `tcp://host:port`
/// or, for a listener with TLS, `https://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address, `host:port`.
    Tcp(String),
    /// A TCP address, `host:port`, spoken to over TLS.
    Tls(String),
}

impl std::str::FromStr for Host {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Host, ClientError> {
        if let Some(path) = s.strip_prefix("unix://") {
            Ok(Host::Unix(PathBuf::from(path)))
        } else if let Some((scheme, addr)) = s
            .strip_prefix("tcp://")
            .map(|a| ("tcp", a))
            .or_else(|| s.strip_prefix("https://").map(|a| ("https", a)))
        {
            let addr = addr.trim_end_matches('/');
            if addr
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(ClientError::Invalid(format!(
                    "invalid host `{s}`: expected `{scheme}://HOST:PORT`"
                )));
            }
            Ok(if scheme == "tcp" {
                Host::Tcp(addr.to_string())
            } else {
                Host::Tls(addr.to_string())
            })
        } else if s.starts_with('/') {
            Ok(Host::Unix(PathBuf::from(s)))
        } else {
            Err(ClientError::Invalid(format!(
                "invalid host `{s}`: expected `unix:///PATH`, `tcp://HOST:PORT` or `https://HOST:PORT`"
            )))
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
            Host::Tls(a) => write!(f, "https://{a}"),
        }
    }
}

/// A connection-per-request client. Every method is one API call.
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    token: Option<String>,
    /// For [`Host::Tls`]: the certificates to trust (default: the public web roots).
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Options of a logs request.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogsQuery {
    /// Keep the stream open and send new lines as they are written.
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
}

impl Client {
    /// A client for `host`, sending `token` as a bearer token when given.
    pub fn new(host: Host, token: Option<String>) -> Client {
        Client {
            host,
            token,
            tls: None,
        }
    }

    /// Trusts the PEM certificates in `ca` (rather than the public web roots) for a
    /// [`Host::Tls`] daemon; a `tcp://` host is then spoken to over TLS too.
    pub fn with_tls_ca(mut self, ca: &Path) -> Result<Client, ClientError> {
        self.tls = Some(Arc::new(crate::tls::client_config(Some(ca))?));
        if let Host::Tcp(addr) = &self.host {
            self.host = Host::Tls(addr.clone());
        }
        Ok(self)
    }

    /// Whether the daemon is reached over its unix socket.
    pub fn is_unix(&self) -> bool {
        matches!(self.host, Host::Unix(_))
    }

    /// The daemon's version.
    pub async fn version(&self) -> Result<Version, ClientError> {
        self.json(Method::GET, "/v2/version", None).await
    }

    /// Creates a container.
    pub async fn create(&self, request: &CreateRequest) -> Result<Created, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.json(Method::POST, "/v2/containers", Some(body)).await
    }

    /// Pulls an image into the daemon's store; returns its manifest digest.
    pub async fn pull(&self, reference: &str) -> Result<Pulled, ClientError> {
        let body = serde_json::to_vec(&PullRequest {
            reference: reference.into(),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.json(Method::POST, "/v2/images/pull", Some(body)).await
    }

    /// Lists containers; only running ones unless `all`.
    pub async fn list(&self, all: bool) -> Result<Vec<ContainerSummary>, ClientError> {
        self.json(Method::GET, &format!("/v2/containers?all={all}"), None)
            .await
    }

    /// Everything about one container.
    pub async fn inspect(&self, id: &str) -> Result<ContainerInfo, ClientError> {
        self.json(Method::GET, &container_path(id, ""), None).await
    }

    /// Resource use of one container.
    pub async fn stats(&self, id: &str) -> Result<ContainerStats, ClientError> {
        self.json(Method::GET, &container_path(id, "/stats"), None)
            .await
    }

    /// Starts a created or exited container.
    pub async fn start(&self, id: &str) -> Result<(), ClientError> {
        self.empty(Method::POST, &container_path(id, "/start"))
            .await
    }

    /// Stops a container: closes its stdin, then kills it after `grace_secs`.
    pub async fn stop(&self, id: &str, grace_secs: Option<u64>) -> Result<(), ClientError> {
        let query = grace_secs.map_or_else(String::new, |t| format!("?t={t}"));
        self.empty(Method::POST, &container_path(id, &format!("/stop{query}")))
            .await
    }

    /// Stops and starts a container.
    pub async fn restart(&self, id: &str, grace_secs: Option<u64>) -> Result<(), ClientError> {
        let query = grace_secs.map_or_else(String::new, |t| format!("?t={t}"));
        self.empty(
            Method::POST,
            &container_path(id, &format!("/restart{query}")),
        )
        .await
    }

    /// Kills a container at once.
    pub async fn kill(&self, id: &str) -> Result<(), ClientError> {
        self.empty(Method::POST, &container_path(id, "/kill")).await
    }

    /// Pauses a running container.
    pub async fn pause(&self, id: &str) -> Result<(), ClientError> {
        self.empty(Method::POST, &container_path(id, "/pause"))
            .await
    }

    /// Resumes a paused container.
    pub async fn unpause(&self, id: &str) -> Result<(), ClientError> {
        self.empty(Method::POST, &container_path(id, "/unpause"))
            .await
    }

    /// Removes a container; `force` kills a running one first.
    pub async fn remove(&self, id: &str, force: bool) -> Result<(), ClientError> {
        self.empty(
            Method::DELETE,
            &container_path(id, &format!("?force={force}")),
        )
        .await
    }

    /// Waits until the container's current run ends (at once if it is not running).
    pub async fn wait(&self, id: &str) -> Result<WaitResponse, ClientError> {
        self.json(Method::POST, &container_path(id, "/wait"), None)
            .await
    }

    /// Streams a container's log records to `each` until the stream ends.
    pub async fn logs(
        &self,
        id: &str,
        query: LogsQuery,
        each: impl FnMut(LogRecord),
    ) -> Result<(), ClientError> {
        let tail = query.tail.map_or_else(|| "all".into(), |n| n.to_string());
        let path = container_path(id, &format!("/logs?follow={}&tail={tail}", query.follow));
        let response = self.send(Method::GET, &path, None).await?;
        lines(response, each).await
    }

    /// Streams daemon events to `each` until the connection ends or `each` returns
    /// false.
    pub async fn events(&self, mut each: impl FnMut(Event) -> bool) -> Result<(), ClientError> {
        let response = self.send(Method::GET, "/v2/events", None).await?;
        // Server-sent events: messages end with a blank line; the JSON is on `data:`.
        split_body(response, b"\n\n", |message| {
            for line in String::from_utf8_lossy(message).lines() {
                if let Some(json) = line.strip_prefix("data:")
                    && !each(parse(json.trim().as_bytes())?)
                {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
    }

    /// The Prometheus metrics text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let response = self.send(Method::GET, "/metrics", None).await?;
        let body = collect(response).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let response = self.send(method, path, body).await?;
        let body = collect(response).await?;
        parse(&body)
    }

    async fn empty(&self, method: Method, path: &str) -> Result<(), ClientError> {
        collect(self.send(method, path, None).await?)
            .await
            .map(drop)
    }

    /// Sends one request on a fresh connection; an error status becomes
    /// [`ClientError::Api`] with the daemon's message.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let connect_error = |reason: String| ClientError::Connect {
            host: self.host.to_string(),
            reason,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "wedged");
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let response = match &self.host {
            Host::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| connect_error(e.to_string()))?;
                exchange(TokioIo::new(stream), request).await
            }
            Host::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| connect_error(e.to_string()))?;
                stream.set_nodelay(true).ok();
                exchange(TokioIo::new(stream), request).await
            }
            Host::Tls(addr) => {
                let config = match &self.tls {
                    Some(config) => config.clone(),
                    None => Arc::new(crate::tls::client_config(None)?),
                };
                let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| connect_error(format!("invalid server name `{host}`: {e}")))?;
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| connect_error(e.to_string()))?;
                stream.set_nodelay(true).ok();
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .map_err(|e| connect_error(format!("TLS: {e}")))?;
                exchange(TokioIo::new(stream), request).await
            }
        }
        .map_err(|e| connect_error(e.to_string()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = collect(response).await?;
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.message)
            .unwrap_or_else(|_| format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
        Err(ClientError::Api { status, message })
    }
}

async fn exchange<I>(io: I, request: Request<Full<Bytes>>) -> hyper::Result<Response<Incoming>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    sender.send_request(request).await
}

async fn collect(response: Response<Incoming>) -> Result<Bytes, ClientError> {
    Ok(response
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?
        .to_bytes())
}

/// Feeds each JSON line of a streamed body to `each`.
async fn lines<T: DeserializeOwned>(
    response: Response<Incoming>,
    mut each: impl FnMut(T),
) -> Result<(), ClientError> {
    split_body(response, b"\n", |line| {
        each(parse(line)?);
        Ok(true)
    })
    .await
}

/// Reads a streamed body and hands `each` every piece that ends with `separator`, until
/// the body ends or `each` returns false.
async fn split_body(
    response: Response<Incoming>,
    separator: &[u8],
    mut each: impl FnMut(&[u8]) -> Result<bool, ClientError>,
) -> Result<(), ClientError> {
    let mut body = response.into_body();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ClientError::Protocol(e.to_string()))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        while let Some(end) = pending
            .windows(separator.len())
            .position(|w| w == separator)
        {
            let piece: Vec<u8> = pending.drain(..end + separator.len()).collect();
            if !each(&piece)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(json: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(json).map_err(|e| ClientError::Protocol(e.to_string()))
}

fn container_path(id: &str, rest: &str) -> String {
    let id: String = id
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/v2/containers/{id}{rest}")
}
