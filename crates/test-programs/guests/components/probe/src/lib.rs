//! Test handler for `wedge serve`: each path exercises one host behaviour.
//!
//! | route                       | response                                                  |
//! |-----------------------------|-----------------------------------------------------------|
//! | `/`                         | 200 `hello from wasm\n`                                   |
//! | `/env?KEY`                  | 200 the value of env var KEY (no newline), 404 if unset   |
//! | `/echo`                     | 200 the request body (and its content-type); 500 on error |
//! | `/slow?ms=N`                | 200 `slept N\n` after a host wait of N ms                 |
//! | `/spin`                     | never answers: a busy loop                                |
//! | `/trap`                     | traps (`unreachable`)                                     |
//! | `/mem?mb=N`                 | 200 `allocated N MiB\n` after touching N MiB              |
//! | `/fetch?url=http://H:P/X`   | 200 `upstream STATUS: BODY`, 502 `error: {code:?}\n`      |
//! | `/counter`                  | 200 `count N\n`, N counted in this instance               |
//! | `/log`                      | 200 `logged\n` after a line to stdout and one to stderr   |
//! | `/header?NAME`              | 200 the values of request header NAME joined by `,`, 404  |
//! | `/noresponse`               | returns without setting the response                      |
//! | `/stream?chunks=N&ms=M`     | 200 at once, then `chunk i\n` for i in 0..N, M ms apart   |
//! | anything else               | 404 `not found\n`                                         |
use std::io::{self, Read as _, Write as _};
use std::sync::atomic::{AtomicU32, Ordering};
use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasi::io::streams::OutputStream;

/// Requests handled by this instance; a fresh instance per request always answers 1.
static COUNTER: AtomicU32 = AtomicU32::new(0);

struct Probe;

wasi::http::proxy::export!(Probe);

impl wasi::exports::http::incoming_handler::Guest for Probe {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((&path_with_query, ""));
        match path {
            "/" => respond(out, 200, "hello from wasm\n"),
            "/env" => match std::env::var_os(query) {
                Some(value) => respond(out, 200, value.as_encoded_bytes()),
                None => respond(out, 404, format!("{query} is not set\n")),
            },
            "/echo" => echo(&request, out),
            "/slow" => {
                let ms = number(query, "ms");
                sleep_ms(ms);
                respond(out, 200, format!("slept {ms}\n"));
            }
            "/spin" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "/trap" => core::arch::wasm32::unreachable(),
            "/mem" => {
                let mb = number(query, "mb");
                let len = usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
                let mut memory = vec![0u8; len];
                for page in memory.chunks_mut(4096) {
                    page[0] = 1;
                }
                std::hint::black_box(&memory);
                respond(out, 200, format!("allocated {mb} MiB\n"));
            }
            "/fetch" => match query.strip_prefix("url=").and_then(split_url) {
                Some((scheme, authority, path)) => match fetch(scheme, authority, path) {
                    Ok((status, body)) => {
                        let mut text = format!("upstream {status}: ").into_bytes();
                        text.extend(body);
                        respond(out, 200, text);
                    }
                    Err(code) => respond(out, 502, format!("error: {code:?}\n")),
                },
                None => respond(out, 400, "usage: /fetch?url=http://HOST:PORT/PATH\n"),
            },
            "/counter" => {
                let count = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
                respond(out, 200, format!("count {count}\n"));
            }
            "/log" => {
                println!("probe stdout line");
                eprintln!("probe stderr line");
                respond(out, 200, "logged\n");
            }
            "/header" => {
                let values = request.headers().get(&query.to_ascii_lowercase());
                if values.is_empty() {
                    respond(out, 404, format!("no header {query}\n"));
                } else {
                    respond(out, 200, values.join(b",".as_slice()));
                }
            }
            "/noresponse" => {}
            "/stream" => stream(out, number(query, "chunks"), number(query, "ms")),
            _ => respond(out, 404, "not found\n"),
        }
    }
}

/// Sends `status` with a `text/plain` body.
fn respond(out: ResponseOutparam, status: u16, body: impl AsRef<[u8]>) {
    send(out, status, Some(b"text/plain"), body.as_ref());
}

/// Sends a whole response; a client that went away is not an error.
fn send(out: ResponseOutparam, status: u16, content_type: Option<&[u8]>, bytes: &[u8]) {
    let (body, mut stream) = start(out, status, content_type);
    // `Write for OutputStream` writes at most what `check-write` allows per call.
    if stream.write_all(bytes).is_ok() && stream.blocking_flush().is_ok() {
        drop(stream); // the stream must go before the body is finished
        OutgoingBody::finish(body, None).expect("finish body");
    }
}

/// Sets the response head and returns its body with the body's output stream.
fn start(
    out: ResponseOutparam,
    status: u16,
    content_type: Option<&[u8]>,
) -> (OutgoingBody, OutputStream) {
    let headers = Fields::new();
    if let Some(value) = content_type {
        headers
            .append("content-type", value)
            .expect("valid content-type");
    }
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("valid status");
    let body = response.body().expect("first call to body");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("first call to write");
    (body, stream)
}

/// `/echo`: the request body back, with the request's content-type.
fn echo(request: &IncomingRequest, out: ResponseOutparam) {
    let content_type = request.headers().get("content-type").into_iter().next();
    let read = || -> io::Result<Vec<u8>> {
        let body = request
            .consume()
            .map_err(|()| io::Error::other("body taken"))?;
        let mut stream = body
            .stream()
            .map_err(|()| io::Error::other("stream taken"))?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    match read() {
        Ok(bytes) => send(out, 200, content_type.as_deref(), &bytes),
        Err(e) => respond(out, 500, format!("body error: {e}")),
    }
}

/// `/stream`: the head at once, then `chunks` lines, each after a wait of `ms`.
fn stream(out: ResponseOutparam, chunks: u64, ms: u64) {
    let (body, mut stream) = start(out, 200, Some(b"text/plain"));
    for i in 0..chunks {
        sleep_ms(ms);
        if writeln!(stream, "chunk {i}").is_err() || stream.blocking_flush().is_err() {
            return; // the client went away
        }
    }
    drop(stream);
    OutgoingBody::finish(body, None).expect("finish body");
}

/// Waits in the host (`wasi:clocks` + `wasi:io/poll`), not in a busy loop.
fn sleep_ms(ms: u64) {
    monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
}

/// Outbound GET; returns the upstream status and body.
fn fetch(scheme: Scheme, authority: &str, path: &str) -> Result<(u16, Vec<u8>), ErrorCode> {
    let invalid = |()| ErrorCode::HttpRequestUriInvalid;
    let request = OutgoingRequest::new(Fields::new()); // GET
    request.set_scheme(Some(&scheme)).map_err(invalid)?;
    request.set_authority(Some(authority)).map_err(invalid)?;
    request.set_path_with_query(Some(path)).map_err(invalid)?;
    let future = outgoing_handler::handle(request, None)?;
    future.subscribe().block();
    let response = future.get().expect("ready").expect("first get")?;
    let status = response.status();
    let body = response.consume().expect("first consume");
    let mut stream = body.stream().expect("first stream");
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .map_err(|e| ErrorCode::InternalError(Some(e.to_string())))?;
    Ok((status, bytes))
}

/// Splits `http://host:port/path` into scheme, authority and path (default `/`).
fn split_url(url: &str) -> Option<(Scheme, &str, &str)> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        (Scheme::Https, url.strip_prefix("https://")?)
    };
    match rest.find('/') {
        Some(i) => Some((scheme, &rest[..i], &rest[i..])),
        None => Some((scheme, rest, "/")),
    }
}

/// The numeric query parameter `name=N`; 0 when absent or malformed.
fn number(query: &str, name: &str) -> u64 {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}
