//! The accept loop, load shedding and the graceful drain.

use crate::exchange::{Exchange, PendingStatus};
use crate::{AccessLog, HttpMetrics, ServeConfig, ServeError};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use wedge_runtime::{Control, GuestReport, HttpApp, HttpBody, host_response};

/// How long a slow client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a new connection may stay silent, or take over its TLS handshake, before it
/// is closed: an idle socket must not hold a connection slot.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an HTTP/2 connection is pinged, and how long the answer may take, to find
/// peers that are gone.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);
/// After the drain's grace period, how long killed requests get to send their 503.
const KILL_GRACE: Duration = Duration::from_secs(1);
/// Connections the kernel may hold for the server before it accepts them.
const LISTEN_BACKLOG: u32 = 1024;
/// How long to wait before accepting again after the process ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What every connection's requests share.
struct Shared {
    app: Arc<HttpApp>,
    /// Requests running or queued: `max_concurrency + queue` permits, taken without
    /// waiting; when none is left the request is shed.
    admit: Arc<Semaphore>,
    /// Requests running: `max_concurrency` permits, waited for in the queue.
    run: Arc<Semaphore>,
    queue_timeout: Duration,
    https: bool,
    log: Arc<AccessLog>,
    metrics: Arc<HttpMetrics>,
    /// Steers every request's guest: killed when the drain's grace period is over.
    control: Control,
}

/// A bound HTTP server for one app.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    config: ServeConfig,
}

impl Server {
    /// Checks `config`, loads the TLS files and binds the listen address. `control`
    /// steers the guests of all requests: pause, resume and kill (a daemon's container
    /// control, or a new one).
    pub async fn bind(
        app: Arc<HttpApp>,
        config: ServeConfig,
        log: AccessLog,
        metrics: Arc<HttpMetrics>,
        control: Control,
    ) -> Result<Server, ServeError> {
        config.validate()?;
        let tls = match &config.tls {
            Some((cert, key)) => Some(crate::tls::acceptor(cert, key, &[b"h2", b"http/1.1"])?),
            None => None,
        };
        let listener = listen(&config).map_err(|error| ServeError::Bind {
            addr: config.listen,
            error,
        })?;
        let shared = Arc::new(Shared {
            app,
            admit: Arc::new(Semaphore::new(
                config.max_concurrency.saturating_add(config.queue),
            )),
            run: Arc::new(Semaphore::new(config.max_concurrency)),
            queue_timeout: config.queue_timeout,
            https: tls.is_some(),
            log: Arc::new(log),
            metrics,
            control,
        });
        Ok(Server {
            listener,
            shared,
            tls,
            config,
        })
    }

    /// The address actually bound (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Serves until `shutdown` resolves, then stops accepting, answers new requests on
    /// open connections with 503, lets requests in flight finish for the grace period,
    /// and kills those still running after it (through the server's control).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let Server {
            listener,
            shared,
            tls,
            config,
        } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .keep_alive(true)
            .max_buf_size(config.max_header_size)
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .timer(TokioTimer::new());
        builder
            .http2()
            .max_header_list_size(u32::try_from(config.max_header_size).unwrap_or(u32::MAX))
            .keep_alive_interval(H2_KEEP_ALIVE)
            .keep_alive_timeout(H2_KEEP_ALIVE)
            .timer(TokioTimer::new());
        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(config.max_connections));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = accept(&listener, &connections) => accepted?,
            };
            let Some((tcp, peer, permit)) = accepted else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let request_shared = shared.clone();
            let service = hyper::service::service_fn(move |request| {
                handle(request_shared.clone(), peer, request)
            });
            let watcher = graceful.watcher();
            let builder = builder.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                // A silent client, or a failed handshake, only concerns that client.
                if !matches!(
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.readable()).await,
                    Ok(Ok(()))
                ) {
                    return;
                }
                match tls {
                    None => {
                        let connection = builder.serve_connection(TokioIo::new(tcp), service);
                        let _ = watcher.watch(connection.into_owned()).await;
                    }
                    Some(acceptor) => {
                        let Ok(Ok(stream)) =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                        else {
                            return;
                        };
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(connection.into_owned()).await;
                    }
                }
            });
        }
        drop(listener);
        shared.admit.close();
        if tokio::time::timeout(config.grace, graceful.shutdown())
            .await
            .is_err()
        {
            shared.control.kill();
            // Killed requests answer 503; give their connections a moment to send it.
            let all = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
            let _ = tokio::time::timeout(KILL_GRACE, connections.acquire_many(all)).await;
        }
        Ok(())
    }
}

/// Binds and listens on the configured address.
fn listen(config: &ServeConfig) -> std::io::Result<TcpListener> {
    let socket = if config.listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if config.reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(config.listen)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Waits for a connection slot and a connection. Errors that concern one connection or
/// a passing lack of descriptors are waited out (`Ok(None)`); others end the server.
async fn accept(
    listener: &TcpListener,
    connections: &Arc<Semaphore>,
) -> Result<Option<(tokio::net::TcpStream, SocketAddr, OwnedSemaphorePermit)>, ServeError> {
    let Ok(permit) = connections.clone().acquire_owned().await else {
        return Ok(None);
    };
    match listener.accept().await {
        Ok((tcp, peer)) => Ok(Some((tcp, peer, permit))),
        Err(e) => {
            use std::io::ErrorKind as K;
            let out_of_descriptors = matches!(e.raw_os_error(), Some(23 | 24));
            match e.kind() {
                K::ConnectionAborted | K::ConnectionReset | K::Interrupted => Ok(None),
                _ if out_of_descriptors => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    Ok(None)
                }
                _ => Err(ServeError::Accept(e)),
            }
        }
    }
}

/// Ends the guest part of an [`Exchange`]: with the guest's report when called, without
/// one when the request never reached a guest. Holds the request's concurrency permits
/// until then.
struct GuestEnd {
    exchange: Option<Arc<Exchange>>,
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl GuestEnd {
    fn finish(mut self, report: &GuestReport) {
        if let Some(exchange) = self.exchange.take() {
            exchange.guest_done(Some(report));
        }
    }
}

impl Drop for GuestEnd {
    fn drop(&mut self) {
        if let Some(exchange) = self.exchange.take() {
            exchange.guest_done(None);
        }
    }
}

/// One request: admission (or 503), a queue slot (or 503 after the queue timeout), then
/// the app.
async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    request: http::Request<Incoming>,
) -> Result<http::Response<HttpBody>, Infallible> {
    let exchange = Exchange::begin(peer, &request, shared.log.clone(), shared.metrics.clone());
    let status = PendingStatus::new(&exchange);
    let queued = match shared.admit.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(TryAcquireError::NoPermits) => {
            shared.metrics.shed();
            return Ok(unavailable(&exchange, status, "server busy, try again"));
        }
        Err(TryAcquireError::Closed) => {
            return Ok(unavailable(&exchange, status, "server shutting down"));
        }
    };
    let running = match tokio::time::timeout(
        shared.queue_timeout,
        shared.run.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(permit)) => permit,
        _ => {
            shared.metrics.shed();
            return Ok(unavailable(&exchange, status, "server busy, try again"));
        }
    };
    let end = GuestEnd {
        exchange: Some(exchange.clone()),
        _permits: (queued, running),
    };
    let answer = shared
        .app
        .handle(request, shared.https, &shared.control, move |report| {
            end.finish(report)
        })
        .await;
    Ok(match answer {
        Ok(response) => {
            status.record(response.status(), None);
            response
        }
        Err(failure) => {
            let code = failure.status();
            let message = failure.message();
            // Guest failures are detailed in the log, not to the client.
            let shown = if code == http::StatusCode::INTERNAL_SERVER_ERROR {
                "the app failed to handle the request".to_string()
            } else {
                message.clone()
            };
            status.record(code, Some(message));
            let mut response = host_response(code, &shown);
            if code == http::StatusCode::SERVICE_UNAVAILABLE {
                retry_after(&mut response);
            }
            response
        }
    })
}

/// A 503 with `Retry-After`, for a request no guest will see.
fn unavailable(
    exchange: &Arc<Exchange>,
    status: PendingStatus,
    message: &str,
) -> http::Response<HttpBody> {
    let code = http::StatusCode::SERVICE_UNAVAILABLE;
    status.record(code, Some(message.to_string()));
    exchange.guest_done(None);
    let mut response = host_response(code, message);
    retry_after(&mut response);
    response
}

fn retry_after(response: &mut http::Response<HttpBody>) {
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
}
