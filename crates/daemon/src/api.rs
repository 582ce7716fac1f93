//! The HTTP/JSON API, version 2 (`api/openapi.yaml` documents it). Every error is a
//! status and `{"message": "..."}`. A failed request changes nothing, except that a
//! failed start records its reason in the container's `error`.

use crate::DaemonError;
use crate::manager::Manager;
use crate::types::{CreateRequest, ErrorBody, LogRecord, PullRequest, Pulled, Version};
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;

/// The largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 1 << 20;
/// `stop` and `restart` grace period when the request gives none.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

impl IntoResponse for DaemonError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(ErrorBody {
                message: self.to_string(),
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<T, DaemonError>;

/// The API's routes over `manager`.
pub fn router(manager: Manager) -> Router {
    const C: &str = "/v2/containers/{id}";
    Router::new()
        .route("/v2/version", get(version))
        .route("/v2/_ping", get(|| async { "OK" }))
        .route("/v2/containers", post(create).get(list))
        .route(C, get(inspect).delete(remove))
        .route(&format!("{C}/start"), post(start))
        .route(&format!("{C}/stop"), post(stop))
        .route(&format!("{C}/restart"), post(restart))
        .route(&format!("{C}/kill"), post(kill))
        .route(&format!("{C}/pause"), post(pause))
        .route(&format!("{C}/unpause"), post(unpause))
        .route(&format!("{C}/wait"), post(wait))
        .route(&format!("{C}/logs"), get(logs))
        .route(&format!("{C}/stats"), get(stats))
        .route("/v2/images/pull", post(pull))
        .route("/v2/events", get(events))
        .route("/metrics", get(metrics))
        .fallback(|req: Request| async move {
            DaemonError::NotFound(format!(
                "no such endpoint `{} {}`",
                req.method(),
                req.uri().path()
            ))
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(manager)
}

/// Turns the framework's own error answers (a bad query string, a wrong method) into
/// the API's JSON error shape.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), MAX_BODY)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_lowercase(),
        t => t.replace('\n', " "),
    };
    (status, Json(ErrorBody { message })).into_response()
}

/// Requires `Authorization: Bearer <token>` on every request (compared in constant time).
pub fn require_token(router: Router, token: String) -> Router {
    let token = Arc::new(token);
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let token = token.clone();
            async move {
                let given = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("");
                let ok: bool = given.as_bytes().ct_eq(token.as_bytes()).into();
                if ok {
                    next.run(req).await
                } else {
                    DaemonError::Unauthorized.into_response()
                }
            }
        },
    ))
}

/// For the TCP listener: reads the request's body within `deadline` (408 after it,
/// 413 over [`MAX_BODY`]) before the handler runs, so a client sending its body a byte
/// at a time cannot hold a connection for long.
pub async fn body_deadline(State(deadline): State<Duration>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_BODY)).await;
    let body = match read {
        Err(_) => {
            return DaemonError::RequestTimeout(format!(
                "request body not received within {}s",
                deadline.as_secs_f64()
            ))
            .into_response();
        }
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                DaemonError::TooLarge(MAX_BODY).into_response()
            } else {
                DaemonError::BadRequest(format!("cannot read the request body: {e}"))
                    .into_response()
            };
        }
        Ok(Ok(body)) => body,
    };
    next.run(Request::from_parts(parts, Body::from(body))).await
}

async fn version() -> Json<Version> {
    Json(Version {
        version: env!("CARGO_PKG_VERSION").into(),
        api: "v2".into(),
    })
}

/// A JSON request body: too large is `413`, anything unreadable or malformed `400`.
fn json_body<T: serde::de::DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => DaemonError::TooLarge(MAX_BODY),
        _ => DaemonError::BadRequest(format!("cannot read the request body: {e}")),
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| DaemonError::BadRequest(format!("malformed JSON: {e}")))
}

async fn create(
    State(m): State<Manager>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let request: CreateRequest = json_body(body)?;
    let created = tokio::task::block_in_place(|| m.create(request))?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn pull(
    State(m): State<Manager>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Pulled>> {
    let request: PullRequest = json_body(body)?;
    let digest = m.pull(&request.reference).await?;
    Ok(Json(Pulled {
        reference: request.reference,
        digest,
    }))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    all: bool,
}

async fn list(State(m): State<Manager>, Query(q): Query<ListQuery>) -> impl IntoResponse {
    Json(m.list(q.all))
}

async fn inspect(State(m): State<Manager>, Path(id): Path<String>) -> impl IntoResponse {
    m.inspect(&id).map(Json)
}

async fn stats(State(m): State<Manager>, Path(id): Path<String>) -> impl IntoResponse {
    m.stats(&id).map(Json)
}

async fn start(State(m): State<Manager>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    m.start(&id, Instant::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize)]
struct GraceQuery {
    t: Option<u64>,
}

fn grace(q: &GraceQuery) -> Duration {
    q.t.map_or(DEFAULT_GRACE, Duration::from_secs)
}

async fn stop(
    State(m): State<Manager>,
    Path(id): Path<String>,
    Query(q): Query<GraceQuery>,
) -> ApiResult<StatusCode> {
    m.stop(&id, grace(&q)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(
    State(m): State<Manager>,
    Path(id): Path<String>,
    Query(q): Query<GraceQuery>,
) -> ApiResult<StatusCode> {
    m.restart(&id, grace(&q), Instant::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kill(State(m): State<Manager>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    m.kill(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(State(m): State<Manager>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    m.pause(&id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause(State(m): State<Manager>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    m.pause(&id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    force: bool,
}

async fn remove(
    State(m): State<Manager>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<StatusCode> {
    m.remove(&id, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn wait(State(m): State<Manager>, Path(id): Path<String>) -> impl IntoResponse {
    m.wait(&id).await.map(Json)
}

#[derive(serde::Deserialize)]
struct LogsQuery {
    #[serde(default)]
    follow: bool,
    tail: Option<String>,
}

async fn logs(
    State(m): State<Manager>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let tail = match q.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            DaemonError::BadRequest(format!("invalid tail `{n}`: expected a number or `all`"))
        })?),
    };
    let (records, feed) = tokio::task::block_in_place(|| m.logs(&id, tail, q.follow))?;
    let past = stream::iter(records.into_iter().map(ndjson));
    let body = match feed {
        None => Body::from_stream(past),
        Some((feed, running)) => {
            // After the run ends, what it wrote last is drained from the feed.
            let live = stream::unfold(
                (feed, running, false),
                |(mut feed, mut running, ended)| async move {
                    if ended {
                        return feed
                            .try_recv()
                            .ok()
                            .map(|r| (ndjson(r), (feed, running, true)));
                    }
                    loop {
                        tokio::select! {
                            biased;
                            record = feed.recv() => match record {
                                Ok(r) => return Some((ndjson(r), (feed, running, false))),
                                // Said, not skipped silently: the file has them all.
                                Err(broadcast::error::RecvError::Lagged(n)) => {
                                    let note = LogRecord {
                                        time: crate::now(),
                                        stream: "stderr".into(),
                                        log: format!("wedged: this follower fell behind and missed {n} log records (`wedge logs` has them)\n"),
                                    };
                                    return Some((ndjson(note), (feed, running, false)));
                                }
                                Err(broadcast::error::RecvError::Closed) => return None,
                            },
                            changed = running.changed() => {
                                if changed.is_err() || !*running.borrow() {
                                    return feed.try_recv().ok().map(|r| (ndjson(r), (feed, running, true)));
                                }
                            }
                        }
                    }
                },
            );
            Body::from_stream(past.chain(live))
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

fn ndjson(record: LogRecord) -> Result<Bytes, Infallible> {
    let mut line = serde_json::to_vec(&record).unwrap_or_default();
    line.push(b'\n');
    Ok(Bytes::from(line))
}

async fn events(State(m): State<Manager>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let feed = m.events();
    let stream = stream::unfold(feed, |mut feed| async move {
        loop {
            match feed.recv().await {
                Ok(event) => {
                    let sse = SseEvent::default()
                        .event("container")
                        .json_data(&event)
                        .unwrap_or_default();
                    return Some((Ok(sse), feed));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn metrics(State(m): State<Manager>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.metrics(),
    )
}

#[cfg(test)]
mod tests {
    /// `api/openapi.yaml`, which documents this API.
    const OPENAPI: &str = include_str!("../../../api/openapi.yaml");

    /// Every (path, method) that [`super::router`] registers; keep in step with it.
    const ROUTES: &[(&str, &str)] = &[
        ("/v2/version", "get"),
        ("/v2/_ping", "get"),
        ("/v2/containers", "post"),
        ("/v2/containers", "get"),
        ("/v2/containers/{id}", "get"),
        ("/v2/containers/{id}", "delete"),
        ("/v2/containers/{id}/start", "post"),
        ("/v2/containers/{id}/stop", "post"),
        ("/v2/containers/{id}/restart", "post"),
        ("/v2/containers/{id}/kill", "post"),
        ("/v2/containers/{id}/pause", "post"),
        ("/v2/containers/{id}/unpause", "post"),
        ("/v2/containers/{id}/wait", "post"),
        ("/v2/containers/{id}/logs", "get"),
        ("/v2/containers/{id}/stats", "get"),
        ("/v2/images/pull", "post"),
        ("/v2/events", "get"),
        ("/metrics", "get"),
    ];

    /// The lines under the path key `  {path}:`, up to the next path key.
    fn path_item(path: &str) -> Option<Vec<&'static str>> {
        let key = format!("  {path}:");
        let mut lines = OPENAPI.lines().skip_while(|l| l.trim_end() != key);
        lines.next()?;
        let is_path_key = |l: &str| l.starts_with("  /") || (!l.starts_with(' ') && !l.is_empty());
        Some(lines.take_while(|l| !is_path_key(l)).collect())
    }

    #[test]
    fn openapi_documents_every_route() {
        let mut missing = Vec::new();
        for (path, method) in ROUTES {
            let documented = path_item(path).is_some_and(|item| {
                item.iter()
                    .any(|l| l.trim_end() == format!("    {method}:"))
            });
            if !documented {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
        assert!(
            missing.is_empty(),
            "api/openapi.yaml does not document: {}",
            missing.join(", ")
        );
    }

    /// The `Grants` schema documents every field of [`wedge_manifest::Grants`] and of its
    /// tables, at the indentation of a property, so a new grant cannot go undocumented.
    #[test]
    fn openapi_documents_every_grant() {
        let schema: Vec<&str> = OPENAPI
            .lines()
            .skip_while(|l| l.trim_end() != "    Grants:")
            .skip(1)
            .take_while(|l| l.starts_with("     ") || l.is_empty())
            .collect();
        let grants = wedge_manifest::Grants {
            keyvalue: Some(Default::default()),
            ..Default::default()
        };
        let serde_json::Value::Object(fields) = serde_json::to_value(grants).unwrap() else {
            panic!("grants are an object");
        };
        let mut missing = Vec::new();
        for (field, value) in &fields {
            let mut keys = vec![(format!("        {field}:"), field.clone())];
            if let serde_json::Value::Object(table) = value {
                keys.extend(
                    table
                        .keys()
                        .map(|k| (format!("            {k}:"), format!("{field}.{k}"))),
                );
            }
            for (line, name) in keys {
                if !schema.iter().any(|l| l.trim_end() == line) {
                    missing.push(name);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "the Grants schema of api/openapi.yaml does not document: {}",
            missing.join(", ")
        );
    }
}
