//! Serving `wasi:http/proxy` components: every request gets a fresh instance, made from a
//! component linked once, under the [`Policy`]'s grants and limits (memory, fuel, a
//! wall-clock deadline per request) and an outbound-origin allow-list.

use crate::error::one_line;
use crate::idle_body::IdleBody;
use crate::output::SharedOutput;
use crate::providers::{self, ProviderSetup};
use crate::run::{HostRefusal, classify, host_refusal};
use crate::sandbox::Sandbox;
use crate::{App, AppKind, Control, Engine, Outcome, Policy, RuntimeError, Stdio, wasi};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::{Error as BodyError, WasiHttpView};

/// A response body as the server sends it: the guest's streamed body or a host text.
pub type HttpBody = wasmtime_wasi_http::WasiBody;

/// A response the host makes itself (errors, load shedding): `text` as `text/plain`.
pub fn host_response(status: http::StatusCode, text: &str) -> http::Response<HttpBody> {
    let body = Full::new(Bytes::from(format!("{text}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A request's wall-clock limit when the policy (`--timeout`, `[limits] timeout`) sets
/// none: no request holds a slot forever.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the app may wait for the next piece of a request body before the client is
/// cut off with 408 (slowloris).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The per-request limits that are not part of the [`Policy`].
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Largest request body accepted; a larger one is answered 413.
    pub max_body: u64,
    /// Each request's wall-clock limit when the policy sets none.
    pub timeout: Duration,
    /// How long the app may wait for the next piece of the body; then 408.
    pub body_timeout: Duration,
}

impl RequestLimits {
    /// The defaults, with a body cap of `max_body`.
    pub fn new(max_body: u64) -> RequestLimits {
        RequestLimits {
            max_body,
            timeout: DEFAULT_REQUEST_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// Why a request got no response from the guest; [`HttpFailure::status`] says what the
/// client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFailure {
    /// The request cannot be given to the guest (e.g. HTTP/1.0 without `Host`).
    BadRequest(String),
    /// The body is larger than [`RequestLimits::max_body`].
    BodyTooLarge(u64),
    /// The client sent no body data for [`RequestLimits::body_timeout`].
    BodyTimeout(Duration),
    /// The guest answered with a `wasi:http` error code instead of a response.
    ErrorCode(String),
    /// The guest returned without answering.
    NoResponse,
    /// The guest trapped, ran out of time or fuel, or exited.
    Guest(Outcome),
    /// The host could not instantiate the app (e.g. the instance pool is full).
    Refused(String),
}

impl HttpFailure {
    /// The status code the client gets: 400, 413, 500 (traps, fuel, no response), 503
    /// (no instance available) or 504 (the request's deadline passed).
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            HttpFailure::BadRequest(_) => S::BAD_REQUEST,
            HttpFailure::BodyTooLarge(_) => S::PAYLOAD_TOO_LARGE,
            HttpFailure::BodyTimeout(_) => S::REQUEST_TIMEOUT,
            HttpFailure::Guest(Outcome::TimedOut(_)) => S::GATEWAY_TIMEOUT,
            HttpFailure::Refused(_) | HttpFailure::Guest(Outcome::Killed) => S::SERVICE_UNAVAILABLE,
            HttpFailure::ErrorCode(_) | HttpFailure::NoResponse | HttpFailure::Guest(_) => {
                S::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// What went wrong, on one line, for the log and the response body.
    pub fn message(&self) -> String {
        match self {
            HttpFailure::BadRequest(m) => format!("bad request: {m}"),
            HttpFailure::BodyTooLarge(max) => format!(
                "request body larger than {}",
                wedge_manifest::ByteSize(*max)
            ),
            HttpFailure::BodyTimeout(idle) => format!(
                "no request body data for `{}`",
                wedge_manifest::DurationSpec(*idle)
            ),
            HttpFailure::ErrorCode(code) => format!("the app answered with error {code}"),
            HttpFailure::NoResponse => "the app returned without a response".into(),
            HttpFailure::Guest(outcome) => match outcome.reason() {
                Some(reason) => reason,
                None => format!(
                    "the app exited with status {} before responding",
                    outcome.exit_code()
                ),
            },
            HttpFailure::Refused(m) => format!("no instance available: {m}"),
        }
    }
}

/// How one request's instance ended, for the access log and metrics.
#[derive(Debug, Clone)]
pub struct GuestReport {
    /// How long making the store and the instance took (not counting waits for a
    /// worker thread in between).
    pub instantiate: Duration,
    /// From the request's admission until the guest returned (its body written).
    pub total: Duration,
    /// `Exited(0)` when the handler returned; otherwise the trap, timeout, fuel or exit.
    pub outcome: Outcome,
    /// Set when the host could not instantiate the app at all.
    pub refused: Option<String>,
}

impl GuestReport {
    /// Whether the guest failed after a response was already under way or never gave one.
    pub fn failed(&self) -> bool {
        self.refused.is_some() || self.outcome != Outcome::Exited(0)
    }
}

/// A `wasi:http/proxy` component linked once, ready to handle any number of requests,
/// each in a fresh instance.
pub struct HttpApp {
    engine: Engine,
    pre: ProxyPre<Sandbox>,
    policy: Arc<Policy>,
    providers: Arc<ProviderSetup>,
    output: SharedOutput,
    limits: RequestLimits,
    path: PathBuf,
}

impl HttpApp {
    /// Links `app` against WASI preview 2 (the whole `wasi:cli` world, so components
    /// built with Rust's std run unchanged, with the policy's env, files and sockets) and
    /// `wasi:http`. A core module, or a component that does not export
    /// `wasi:http/incoming-handler`, fails here.
    pub fn new(
        app: &App,
        mut policy: Policy,
        output: SharedOutput,
        limits: RequestLimits,
    ) -> Result<HttpApp, RuntimeError> {
        policy.timeout = policy.timeout.or(Some(limits.timeout));
        let link = |message: String| RuntimeError::Link {
            path: app.path.clone(),
            message,
        };
        let crate::app::Code::Component(component) = &app.code else {
            return Err(link(
                "a core module cannot serve HTTP: build a `wasm32-wasip2` component that \
                 exports `wasi:http/incoming-handler`"
                    .into(),
            ));
        };
        if policy.fuel.is_some() && !app.engine.options().fuel {
            return Err(RuntimeError::Engine(
                "a fuel limit needs an engine built with fuel metering".into(),
            ));
        }
        let mut linker = Linker::<Sandbox>::new(app.engine.wasmtime());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| link(one_line(&e)))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| link(one_line(&e)))?;
        providers::add_to_linker(&mut linker).map_err(|e| link(one_line(&e)))?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| link(one_line(&e)))?;
        let pre = ProxyPre::new(pre).map_err(|e| {
            link(format!(
                "component is not a `wasi:http/proxy` app (it must export \
                 `wasi:http/incoming-handler`): {}",
                one_line(&e)
            ))
        })?;
        // rustls finds two crypto providers in wedge's dependencies (ring and aws-lc-rs)
        // and would refuse to pick one for outbound HTTPS: choose ring, as wasi-http does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Every store yields at each tick, so one busy guest cannot hold a worker.
        app.engine.ensure_ticker()?;
        // Checked now so a bad grant fails at startup, not on the first request.
        wasi::builder(&policy, Stdio::Null)?;
        Ok(HttpApp {
            engine: app.engine.clone(),
            pre,
            providers: ProviderSetup::new(&policy),
            policy: Arc::new(policy),
            output,
            limits,
            path: app.path.clone(),
        })
    }

    /// Whether `kind` can be served (only components can).
    pub fn can_serve(kind: AppKind) -> bool {
        kind == AppKind::Component
    }

    /// Where the app was loaded from.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// The engine the app runs on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Handles one request in a fresh instance on the current tokio runtime. Returns
    /// once the guest has set its response (whose body keeps streaming from the guest's
    /// task) or has failed without one. `on_done` is called when the guest's task ends,
    /// whatever happened, with how it ended; it is the place to release what the
    /// request holds (a concurrency permit) and to write the access log.
    ///
    /// `control` is shared by the requests of one server: pausing it holds their guest
    /// code at the next epoch check, killing it ends them ([`Outcome::Killed`], 503).
    pub async fn handle<B>(
        &self,
        request: http::Request<B>,
        https: bool,
        control: &Control,
        on_done: impl FnOnce(&GuestReport) + Send + 'static,
    ) -> Result<http::Response<HttpBody>, HttpFailure>
    where
        B: http_body::Body<Data = Bytes, Error = hyper::Error> + Send + 'static,
    {
        let max_body = self.limits.max_body;
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_body) {
            return Err(HttpFailure::BodyTooLarge(max_body));
        }
        let started = Instant::now();
        let deadline = self.policy.timeout.map(|t| started + t);
        // A body over the cap fails the guest's read; the flag turns the answer into 413.
        let over = Arc::new(AtomicBool::new(false));
        let flag = over.clone();
        let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
        // A client that stops sending its body is cut; the flag turns the answer into 408.
        let stalled = Arc::new(AtomicBool::new(false));
        let body_timeout = self.limits.body_timeout;
        let stall = stalled.clone();
        let request = request.map(move |body| {
            let limited =
                Limited::new(body, limit).map_err(move |e| match e.downcast::<hyper::Error>() {
                    Ok(e) => BodyError::from(*e),
                    Err(_) => {
                        flag.store(true, Ordering::Relaxed);
                        BodyError::HttpRequestBodySize(Some(max_body))
                    }
                });
            IdleBody::new(limited, body_timeout, stall)
        });

        let making = Instant::now();
        let mut store = self.store(deadline, control)?;
        let store_time = making.elapsed();
        let scheme = if https { Scheme::Https } else { Scheme::Http };
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(scheme, request)
            .map_err(|e| HttpFailure::BadRequest(one_line(&e)))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam(tx)
            .map_err(|e| HttpFailure::Refused(one_line(&e)))?;

        let pre = self.pre.clone();
        let policy = self.policy.clone();
        let control = control.clone();
        let (verdict, body_verdict) = tokio::sync::oneshot::channel();
        let guest = tokio::spawn(async move {
            // Time waiting for a worker is not the instance's: count from here.
            let instantiating = Instant::now();
            let mut instantiate = Duration::ZERO;
            let run = async {
                let proxy = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(host_refusal)?;
                instantiate = store_time + instantiating.elapsed();
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            };
            // The epoch deadline stops guest code; this stops a guest waiting in the
            // host (an outbound call, a slow client body).
            let run = async {
                match deadline {
                    Some(at) => tokio::time::timeout_at(at.into(), run)
                        .await
                        .unwrap_or_else(|_| Err(wasmtime::Trap::Interrupt.into())),
                    None => run.await,
                }
            };
            let result = tokio::select! {
                result = run => result,
                () = control.killed() => Err(wasmtime::Trap::Interrupt.into()),
            };
            let memory_hit = store.data().limiter.hit;
            drop(store);
            let mut report = GuestReport {
                instantiate,
                total: started.elapsed(),
                outcome: Outcome::Exited(0),
                refused: None,
            };
            if let Err(err) = result {
                match err.downcast_ref::<HostRefusal>() {
                    Some(refusal) => report.refused = Some(refusal.to_string()),
                    None if control.is_killed() => report.outcome = Outcome::Killed,
                    None => report.outcome = classify(err, &policy, memory_hit),
                }
            }
            let _ = verdict.send(!report.failed());
            on_done(&report);
            report
        });
        // A client that goes away before the response takes its guest with it.
        let mut guest = AbortOnDrop(Some(guest));

        let answer = rx.await;
        if over.load(Ordering::Relaxed) {
            return Err(HttpFailure::BodyTooLarge(max_body));
        }
        if stalled.load(Ordering::Relaxed) {
            return Err(HttpFailure::BodyTimeout(body_timeout));
        }
        let guest = guest.0.take().expect("the guest task is only taken here");
        match answer {
            Ok(Ok(response)) => Ok(response.map(|body| {
                GuestBody {
                    inner: body,
                    verdict: Some(body_verdict),
                }
                .boxed_unsync()
            })),
            Ok(Err(code)) => Err(HttpFailure::ErrorCode(error_code_text(&code))),
            // The outparam was dropped unset: the guest's task has ended; see how.
            Err(_) => match guest.await {
                Ok(GuestReport {
                    refused: Some(m), ..
                }) => Err(HttpFailure::Refused(m)),
                Ok(GuestReport {
                    outcome: Outcome::Exited(0),
                    ..
                }) => Err(HttpFailure::NoResponse),
                Ok(report) => Err(HttpFailure::Guest(report.outcome)),
                Err(join) => Err(HttpFailure::Refused(format!("request task failed: {join}"))),
            },
        }
    }

    /// A store for one request: the policy's WASI context, memory cap, fuel, and an
    /// epoch callback that yields at every tick and interrupts past the deadline.
    fn store(
        &self,
        deadline: Option<Instant>,
        control: &Control,
    ) -> Result<Store<Sandbox>, HttpFailure> {
        // The requests share `control`; none reports its memory there.
        let sandbox = Sandbox::component(
            &self.policy,
            self.output.stdio(),
            None,
            self.providers.clone(),
        )
        .map_err(|e| HttpFailure::Refused(e.to_string()))?;
        sandbox
            .into_store(&self.engine, &self.policy, deadline, Some(control))
            .map_err(|e| HttpFailure::Refused(one_line(&e)))
    }
}

/// Aborts the guest's task when dropped while still holding it: the request's future was
/// dropped (its client went away) before the guest responded.
struct AbortOnDrop(Option<tokio::task::JoinHandle<GuestReport>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// A guest's response body that reports an error instead of a clean end when the guest
/// failed (a trap, the deadline, a kill) before finishing it, so the client sees a cut
/// connection or stream reset, never a truncated body that looks complete.
struct GuestBody {
    inner: HttpBody,
    /// Whether the guest ended well; taken once the inner body has ended.
    verdict: Option<tokio::sync::oneshot::Receiver<bool>>,
}

impl http_body::Body for GuestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        use std::task::Poll;
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {}
            other => return other,
        }
        let Some(verdict) = this.verdict.as_mut() else {
            return Poll::Ready(None);
        };
        let Poll::Ready(ok) = std::pin::Pin::new(verdict).poll(cx) else {
            return Poll::Pending;
        };
        this.verdict = None;
        Poll::Ready(match ok {
            Ok(true) => None,
            _ => Some(Err(BodyError::InternalError(Some(
                "the app failed before finishing the response body".into(),
            )))),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.verdict.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A `wasi:http` error code as text, e.g. `HTTP-request-denied`.
fn error_code_text(code: &ErrorCode) -> String {
    format!("{code:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_statuses() {
        use http::StatusCode as S;
        let cases = [
            (HttpFailure::BadRequest("x".into()), S::BAD_REQUEST),
            (HttpFailure::BodyTooLarge(1), S::PAYLOAD_TOO_LARGE),
            (
                HttpFailure::Guest(Outcome::TimedOut(Duration::from_secs(1))),
                S::GATEWAY_TIMEOUT,
            ),
            (
                HttpFailure::Guest(Outcome::OutOfFuel(5)),
                S::INTERNAL_SERVER_ERROR,
            ),
            (HttpFailure::NoResponse, S::INTERNAL_SERVER_ERROR),
            (HttpFailure::Refused("pool".into()), S::SERVICE_UNAVAILABLE),
        ];
        for (failure, status) in cases {
            assert_eq!(failure.status(), status, "{failure:?}");
            assert!(!failure.message().is_empty());
        }
    }
}
