//! `wedge serve` end to end: the real binary on a loopback port (port 0, the address read
//! from its `wedge: serving on …` line), driven by real clients: hyper's HTTP/1.1 and
//! HTTP/2 client connections, rustls for HTTPS, and raw sockets where the exact bytes on
//! the wire matter.

use crate::common::Env;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wedge_test_programs::{http as guests, p1, p2};

/// Longest any single client exchange may take before the test fails instead of hanging.
const CLIENT_LIMIT: Duration = Duration::from_secs(120);

/// How long a server may take to compile the app and print its address.
const START_LIMIT: Duration = Duration::from_secs(90);

/// The runtime every client connection of every test runs on.
static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
});

/// Runs `future` on the shared runtime, failing the test if it takes over [`CLIENT_LIMIT`].
#[track_caller]
fn block_on<F: Future>(future: F) -> F::Output {
    RT.block_on(async { tokio::time::timeout(CLIENT_LIMIT, future).await })
        .unwrap_or_else(|_| panic!("client exchange took over {CLIENT_LIMIT:?}"))
}

// ---------------------------------------------------------------------------------------
// The server under test.

/// A running `wedge serve`, with its stdout and stderr captured; killed on drop.
struct Serve {
    child: Child,
    /// The address it serves on.
    addr: SocketAddr,
    /// `--metrics-listen`, when started with metrics.
    metrics: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    _env: Env,
}

impl Serve {
    /// `wedge serve --listen 127.0.0.1:0 ARGS APP`, waiting until it prints its address.
    #[track_caller]
    fn start(app: &str, args: &[&str]) -> Serve {
        Serve::spawn(app, args, None).unwrap_or_else(|stderr| panic!("{stderr}"))
    }

    /// Like [`Serve::start`], with `--metrics-listen` on a free loopback port, waiting
    /// until the metrics endpoint answers.
    #[track_caller]
    fn start_with_metrics(app: &str, args: &[&str]) -> Serve {
        // The port is picked before the server binds it, so another process may take it
        // first: try again with another port then.
        let mut last = String::new();
        for _ in 0..5 {
            match Serve::spawn(app, args, Some(free_port())) {
                Ok(serve) => return serve,
                Err(stderr) if stderr.contains("for metrics") => last = stderr,
                Err(stderr) => panic!("{stderr}"),
            }
        }
        panic!("no free port for the metrics endpoint: {last}");
    }

    /// Starts the server; `Err` holds what it printed when it exited instead of serving.
    fn spawn(app: &str, args: &[&str], metrics: Option<SocketAddr>) -> Result<Serve, String> {
        let env = Env::new();
        let mut command = crate::common::wedge_command();
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(metrics) = metrics {
            command.arg("--metrics-listen").arg(metrics.to_string());
        }
        let mut child = command
            .args(args)
            .arg(app)
            .env("WEDGE_ROOT", env.root())
            .env_remove("WEDGE_HOST")
            .env("WEDGE_TEST_SECRET", "host-only")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wedge serve");
        let (stdout, out_reader) = capture(child.stdout.take().expect("stdout"));
        let (stderr, err_reader) = capture(child.stderr.take().expect("stderr"));
        let mut serve = Serve {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            metrics,
            stderr,
            stdout,
            readers: vec![out_reader, err_reader],
            _env: env,
        };
        let deadline = Instant::now() + START_LIMIT;
        serve.wait_for(deadline, "printed no address", |serve| {
            match serve.stderr().lines().find_map(serving_address) {
                Some(addr) => {
                    serve.addr = addr;
                    true
                }
                None => false,
            }
        })?;
        if let Some(metrics) = metrics {
            serve.wait_for(deadline, "never answered on its metrics address", |serve| {
                TcpStream::connect(metrics).is_ok() && serve.try_metrics().is_some()
            })?;
        }
        Ok(serve)
    }

    /// Polls `ready` every 10 ms until it holds; an exit of the server is an `Err` with
    /// its output, and passing `deadline` fails the test saying the server `what`.
    fn wait_for(
        &mut self,
        deadline: Instant,
        what: &str,
        mut ready: impl FnMut(&mut Serve) -> bool,
    ) -> Result<(), String> {
        while !ready(self) {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(self.exited_output(status));
            }
            assert!(
                Instant::now() < deadline,
                "wedge serve {what} within {START_LIMIT:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Sends SIGTERM and waits for the shutdown line and for the listener to be closed
    /// (new connections refused within a minute).
    fn sigterm_until_closed(&mut self) {
        self.sigterm();
        self.wait_stderr("the shutdown line", Duration::from_secs(60), |s| {
            s.contains("wedge: shutting down")
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(self.addr).is_ok() {
            assert!(
                Instant::now() < deadline,
                "still accepting connections after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn exited_output(&mut self, status: ExitStatus) -> String {
        self.join_readers();
        format!(
            "wedge serve exited ({status}) instead of serving:\n{}",
            self.stderr()
        )
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything the server wrote to stdout so far.
    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// The access-log lines on stderr (each starts with the client's address).
    fn access_lines(&self) -> Vec<String> {
        access_lines(&self.stderr())
    }

    /// Waits until stderr satisfies `check`, up to `limit`.
    #[track_caller]
    fn wait_stderr(&self, what: &str, limit: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.stderr();
            if check(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "stderr never showed {what} within {limit:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The metrics exposition, if the endpoint answers.
    fn try_metrics(&self) -> Option<String> {
        let addr = self.metrics.expect("started with metrics");
        let mut conn = block_on(Conn::try_h1(addr)).ok()?;
        let reply = conn.try_send(conn.get_request("/metrics")).ok()?;
        (reply.status == 200).then_some(reply.body)
    }

    /// The metrics exposition.
    #[track_caller]
    fn metrics(&self) -> String {
        self.try_metrics().expect("metrics endpoint answers")
    }

    /// The value of the series `series` (name and labels exactly as exposed); 0 when
    /// absent (counters appear only once counted).
    #[track_caller]
    fn metric(&self, series: &str) -> f64 {
        metric(&self.metrics(), series)
    }

    /// Waits until the series' value satisfies `check` (a minute at most).
    #[track_caller]
    fn wait_metric(&self, series: &str, check: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.metrics();
            let value = metric(&text, series);
            if check(value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{series} stayed at {value}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM, as `kill -TERM` does.
    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, up to `limit`; returns its status.
    #[track_caller]
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.join_readers();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wedge serve still running {limit:?} later:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's resident set size in KiB (`VmRSS` in `/proc/PID/status`).
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            self.join_readers();
            let stderr = self.stderr();
            assert!(
                !stderr.contains("panicked"),
                "wedge serve panicked:\n{stderr}"
            );
        }
    }
}

/// Collects a pipe's text on a thread.
fn capture(pipe: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(pipe);
        let mut line = String::new();
        while matches!(lines.read_line(&mut line), Ok(n) if n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    (text, reader)
}

/// The address in `wedge: serving on http://ADDR/` (or `https://`).
fn serving_address(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("wedge: serving on ")?;
    let rest = rest
        .strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))?;
    rest.trim_end().trim_end_matches('/').parse().ok()
}

/// Access-log lines: those starting with the client's loopback address.
fn access_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("127.0.0.1:"))
        .map(str::to_string)
        .collect()
}

/// The value of `series` in a metrics exposition; 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad value `{v}`"))
        })
        .unwrap_or(0.0)
}

/// A loopback port nothing listens on right now.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Clients.

type ReqBody = BoxBody<Bytes, Infallible>;

/// A response, read to its end.
#[derive(Debug)]
struct Reply {
    status: u16,
    version: http::Version,
    headers: http::HeaderMap,
    body: String,
}

/// A body sent in chunks with no length known up front (HTTP/1.1 chunked encoding).
struct Chunks(std::collections::VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<ReqBody>),
    H2(hyper::client::conn::http2::SendRequest<ReqBody>),
}

/// One client connection (HTTP/1.1 or HTTP/2, plain or TLS) to a server.
struct Conn {
    sender: Sender,
    /// `Host` / `:authority`.
    authority: String,
    scheme: &'static str,
    /// This end's address, as the server's access log shows it.
    local: SocketAddr,
    /// The protocol TLS negotiated by ALPN.
    alpn: Option<Vec<u8>>,
}

impl Conn {
    /// An HTTP/1.1 connection.
    #[track_caller]
    fn h1(addr: SocketAddr) -> Conn {
        block_on(Conn::try_h1(addr)).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    async fn try_h1(addr: SocketAddr) -> Result<Conn, String> {
        Conn::cleartext(addr, false).await
    }

    /// A cleartext connection: HTTP/1.1, or HTTP/2 with prior knowledge when `h2`.
    async fn cleartext(addr: SocketAddr, h2: bool) -> Result<Conn, String> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let local = tcp.local_addr().map_err(|e| e.to_string())?;
        let sender = handshake(TokioIo::new(tcp), h2).await?;
        Ok(Conn {
            sender,
            authority: addr.to_string(),
            scheme: "http",
            local,
            alpn: None,
        })
    }

    /// An HTTP/2 connection with prior knowledge (h2c).
    #[track_caller]
    fn h2c(addr: SocketAddr) -> Conn {
        block_on(Conn::cleartext(addr, true)).unwrap_or_else(|e| panic!("h2c to {addr}: {e}"))
    }

    /// An HTTPS connection to `localhost` trusting only `ca` (PEM), offering `alpn`;
    /// HTTP/2 when the server picks `h2`.
    #[track_caller]
    fn tls(addr: SocketAddr, ca: &std::path::Path, alpn: &[&[u8]]) -> Conn {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
            roots.add(cert.expect("CA PEM")).expect("add CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        block_on(async {
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let local = tcp.local_addr().unwrap();
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            let stream = connector
                .connect(name, tcp)
                .await
                .expect("TLS handshake with wedge serve");
            let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            let h2 = alpn.as_deref() == Some(b"h2");
            let sender = handshake(TokioIo::new(stream), h2)
                .await
                .expect("handshake");
            Conn {
                sender,
                authority: format!("localhost:{}", addr.port()),
                scheme: "https",
                local,
                alpn,
            }
        })
    }

    /// A request for `path` with this connection's authority (`Host` for HTTP/1.1, an
    /// absolute URI for HTTP/2).
    fn request(&self, method: &str, path: &str, body: ReqBody) -> http::Request<ReqBody> {
        let builder = match self.sender {
            Sender::H1(_) => http::Request::builder()
                .uri(path)
                .header(http::header::HOST, &self.authority),
            Sender::H2(_) => http::Request::builder()
                .uri(format!("{}://{}{path}", self.scheme, self.authority))
                .version(http::Version::HTTP_2),
        };
        builder.method(method).body(body).expect("valid request")
    }

    fn get_request(&self, path: &str) -> http::Request<ReqBody> {
        self.request("GET", path, empty())
    }

    /// Sends `request` and returns the response head (the body may still be streaming).
    fn try_head(
        &mut self,
        request: http::Request<ReqBody>,
    ) -> Result<http::Response<Incoming>, String> {
        block_on(async {
            match &mut self.sender {
                Sender::H1(s) => {
                    s.ready().await.map_err(|e| e.to_string())?;
                    s.send_request(request).await.map_err(|e| e.to_string())
                }
                Sender::H2(s) => {
                    s.ready().await.map_err(|e| e.to_string())?;
                    s.send_request(request).await.map_err(|e| e.to_string())
                }
            }
        })
    }

    /// Sends `request` and reads the whole response.
    fn try_send(&mut self, request: http::Request<ReqBody>) -> Result<Reply, String> {
        let head = self.try_head(request)?;
        block_on(read_reply(head))
    }

    #[track_caller]
    fn send(&mut self, request: http::Request<ReqBody>) -> Reply {
        let what = format!("{} {}", request.method(), request.uri());
        self.try_send(request)
            .unwrap_or_else(|e| panic!("{what} failed: {e}"))
    }

    #[track_caller]
    fn get(&mut self, path: &str) -> Reply {
        self.send(self.get_request(path))
    }

    /// POSTs `body` with its `Content-Length`.
    #[track_caller]
    fn post(&mut self, path: &str, body: &[u8]) -> Reply {
        let full = Full::new(Bytes::copy_from_slice(body)).boxed();
        self.send(self.request("POST", path, full))
    }
}

async fn handshake<IO>(io: TokioIo<IO>, h2: bool) -> Result<Sender, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if h2 {
        let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Sender::H2(sender))
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Sender::H1(sender))
    }
}

async fn read_reply(response: http::Response<Incoming>) -> Result<Reply, String> {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Reply {
        status: parts.status.as_u16(),
        version: parts.version,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

fn empty() -> ReqBody {
    Full::new(Bytes::new()).boxed()
}

/// `GET path` on a new HTTP/1.1 connection.
#[track_caller]
fn get(addr: SocketAddr, path: &str) -> Reply {
    Conn::h1(addr).get(path)
}

/// Writes `request` as is on a new connection and reads until the server closes it
/// (10 s at most); returns the raw response text.
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A server that refuses the request may close before reading all of it.
    let _ = tcp.write_all(request);
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// The status code of a raw HTTP/1.1 response; 0 when there is none.
fn raw_status(response: &str) -> u16 {
    response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A loopback HTTP/1.1 upstream answering every request `200` with `body`; counts the
/// connections it accepts.
struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Upstream {
    fn start(body: &'static str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(mut tcp) = tcp else { return };
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut reader = BufReader::new(tcp.try_clone().unwrap());
                    let mut line = String::new();
                    // The request head ends with an empty line.
                    while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                        if line == "\r\n" {
                            break;
                        }
                        line.clear();
                    }
                    let _ = write!(
                        tcp,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Upstream { addr, connections }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Runs `wedge ARGS` (which must exit by itself) with a 60 s limit.
#[track_caller]
fn wedge_exits(env: &Env, args: &[&str]) -> crate::common::Run {
    let mut child = crate::common::wedge_command()
        .args(args)
        .env("WEDGE_ROOT", env.root())
        .env_remove("WEDGE_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wedge");
    let (stdout, out_reader) = capture(child.stdout.take().unwrap());
    let (stderr, err_reader) = capture(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`wedge {}` did not exit within 60 s; stderr:\n{}",
                args.join(" "),
                stderr.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = out_reader.join();
    let _ = err_reader.join();
    let stdout = stdout.lock().unwrap().clone();
    let stderr = stderr.lock().unwrap().clone();
    crate::common::Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

// ---------------------------------------------------------------------------------------
// Tests.

/// The hello app answers 200 `hello from wasm`; `-e` reaches the guest's environment;
/// three `/counter` requests over one keep-alive connection each answer `count 1` (a
/// fresh instance per request) and the access log shows the same client port for all
/// three (one connection).
#[test]
fn hello_env_and_a_fresh_instance_per_request_over_keep_alive() {
    let hello = Serve::start(guests::HELLO, &[]);
    let reply = get(hello.addr, "/");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, "hello from wasm\n");
    assert_eq!(reply.headers["content-type"], "text/plain");

    let probe = Serve::start(guests::PROBE, &["-e", "GREETING=hi"]);
    let reply = get(probe.addr, "/env?GREETING");
    assert_eq!((reply.status, reply.body.as_str()), (200, "hi"));
    let reply = get(probe.addr, "/env?WEDGE_TEST_SECRET");
    assert_eq!(
        reply.status, 404,
        "the host's environment leaked into the guest: {reply:?}"
    );

    let mut conn = Conn::h1(probe.addr);
    for i in 0..3 {
        let reply = conn.get("/counter");
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "count 1\n"),
            "request {i} on the kept-alive connection"
        );
    }
    let peer = conn.local.to_string();
    let text = probe.wait_stderr("three /counter log lines", Duration::from_secs(60), |s| {
        access_lines(s)
            .iter()
            .filter(|l| l.contains("/counter"))
            .count()
            == 3
    });
    for line in access_lines(&text)
        .iter()
        .filter(|l| l.contains("/counter"))
    {
        assert!(
            line.starts_with(&format!("{peer} ")),
            "a /counter request came on another connection than {peer}: {line}"
        );
    }
}

/// A trapping guest gets 500 (with no guest detail in the body) and the server keeps
/// serving; a guest that returns without a response also gets 500; the access log says
/// why.
#[test]
fn traps_and_missing_responses_are_500_and_the_server_carries_on() {
    let probe = Serve::start(guests::PROBE, &[]);
    let mut conn = Conn::h1(probe.addr);
    let reply = conn.get("/trap");
    assert_eq!(reply.status, 500, "{reply:?}");
    assert_eq!(reply.body, "the app failed to handle the request\n");
    let reply = conn.get("/");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "hello from wasm\n")
    );
    let reply = get(probe.addr, "/noresponse");
    assert_eq!(reply.status, 500, "{reply:?}");
    assert_eq!(get(probe.addr, "/").status, 200);
    let text = probe.wait_stderr("the four log lines", Duration::from_secs(60), |s| {
        access_lines(s).len() == 4
    });
    let lines = access_lines(&text);
    let trap = lines.iter().find(|l| l.contains("/trap")).unwrap();
    assert!(
        trap.contains("\" 500 ") && trap.contains("error="),
        "{trap}"
    );
    let none = lines.iter().find(|l| l.contains("/noresponse")).unwrap();
    assert!(
        none.contains("\" 500 ") && none.contains("error="),
        "{none}"
    );
}

/// With `--timeout 500ms`, a busy loop and a guest waiting in the host both get 504
/// (without the limit neither would answer for ten minutes); the server serves normally
/// afterwards and counts both as timeouts.
#[test]
fn the_request_timeout_answers_504_for_busy_and_waiting_guests() {
    let probe = Serve::start_with_metrics(guests::PROBE, &["--timeout", "500ms"]);
    for path in ["/spin", "/slow?ms=600000"] {
        let started = Instant::now();
        let reply = get(probe.addr, path);
        let took = started.elapsed();
        assert_eq!(reply.status, 504, "{path}: {reply:?}");
        assert!(took >= Duration::from_millis(450), "{path} took {took:?}");
    }
    let reply = get(probe.addr, "/slow?ms=10");
    assert_eq!((reply.status, reply.body.as_str()), (200, "slept 10\n"));
    probe.wait_metric("wedge_http_guest_failures_total{reason=\"timeout\"}", |n| {
        n == 2.0
    });
    assert_eq!(probe.metric("wedge_http_requests_total{code=\"504\"}"), 2.0);
}

/// `-m 16MiB` fails a request that touches 64 MiB with 500 and serves one that touches
/// 1 MiB; `--fuel 100000` ends a busy loop with 500, counted as `reason="fuel"`.
#[test]
fn memory_and_fuel_limits_apply_to_each_request() {
    let probe = Serve::start(guests::PROBE, &["-m", "16MiB"]);
    let reply = get(probe.addr, "/mem?mb=64");
    assert_eq!(reply.status, 500, "{reply:?}");
    let reply = get(probe.addr, "/mem?mb=1");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "allocated 1 MiB\n")
    );
    // Each request gets the whole cap again.
    let reply = get(probe.addr, "/mem?mb=8");
    assert_eq!(reply.status, 200, "{reply:?}");
    drop(probe);

    let probe = Serve::start_with_metrics(guests::PROBE, &["--fuel", "100000"]);
    let started = Instant::now();
    let reply = get(probe.addr, "/spin");
    assert_eq!(reply.status, 500, "{reply:?}");
    // Without the fuel limit `/spin` never answers.
    assert!(started.elapsed() < Duration::from_secs(300));
    probe.wait_metric("wedge_http_guest_failures_total{reason=\"fuel\"}", |n| {
        n >= 1.0
    });
    let text = probe.wait_stderr("the /spin log line", Duration::from_secs(60), |s| {
        access_lines(s).iter().any(|l| l.contains("/spin"))
    });
    let line = access_lines(&text)
        .into_iter()
        .find(|l| l.contains("/spin"))
        .unwrap();
    assert!(line.contains("\" 500 ") && line.contains("fuel"), "{line}");
}

/// `--max-body 1KiB`: 2 KiB with `Content-Length` is refused with 413 before the guest
/// runs; 2 KiB chunked is cut off at the cap with 413; 512 bytes are echoed unchanged.
#[test]
fn bodies_over_max_body_get_413() {
    let probe = Serve::start(guests::PROBE, &["--max-body", "1KiB"]);
    let big: Vec<u8> = (0..2048u32).map(|i| b'a' + (i % 26) as u8).collect();

    let started = Instant::now();
    let reply = Conn::h1(probe.addr).post("/echo", &big);
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(started.elapsed() < Duration::from_secs(60));

    let mut conn = Conn::h1(probe.addr);
    let chunks = Chunks(big.chunks(512).map(Bytes::copy_from_slice).collect());
    let request = conn.request("POST", "/echo", BodyExt::boxed(chunks));
    let reply = conn.send(request);
    assert_eq!(reply.status, 413, "chunked body over the cap: {reply:?}");

    let small = &big[..512];
    let reply = Conn::h1(probe.addr).post("/echo", small);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body.as_bytes(), small, "the body came back changed");
    // Exactly at the cap is fine.
    let reply = Conn::h1(probe.addr).post("/echo", &big[..1024]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body.len(), 1024);
}

/// A 20 KB header gets 431 (default 16 KiB cap, and `--max-header-size 8KiB`); a
/// request just under the cap and a normal one afterwards get 200.
#[test]
fn headers_over_max_header_size_get_431() {
    let request = |header_len: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: wedge\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "x".repeat(header_len)
        )
    };
    let hello = Serve::start(guests::HELLO, &[]);
    let response = raw_exchange(hello.addr, request(20_000).as_bytes());
    assert_eq!(raw_status(&response), 431, "{response}");
    let response = raw_exchange(hello.addr, request(6_000).as_bytes());
    assert_eq!(raw_status(&response), 200, "{response}");
    assert_eq!(get(hello.addr, "/").status, 200);
    drop(hello);

    let hello = Serve::start(guests::HELLO, &["--max-header-size", "8KiB"]);
    let response = raw_exchange(hello.addr, request(12_000).as_bytes());
    assert_eq!(raw_status(&response), 431, "{response}");
    let response = raw_exchange(hello.addr, request(20_000).as_bytes());
    assert_eq!(raw_status(&response), 431, "{response}");
    let response = raw_exchange(hello.addr, request(4_000).as_bytes());
    assert_eq!(raw_status(&response), 200, "{response}");
    assert_eq!(get(hello.addr, "/").status, 200);

    // HTTP/2 has the same cap, and the connection survives a refused stream.
    let mut h2 = Conn::h2c(hello.addr);
    let mut big = h2.get_request("/");
    big.headers_mut()
        .insert("x-big", "x".repeat(12_000).parse().unwrap());
    let reply = h2.send(big);
    assert_eq!(reply.status, 431, "{reply:?}");
    assert_eq!(h2.get("/").status, 200);
}

/// `--max-concurrency 1 --queue 1`: with one request running and one queued, a third
/// gets 503 with `Retry-After` at once; the first two still succeed; afterwards new
/// requests get 200; `wedge_http_shed_total` counts the shed one.
#[test]
fn load_beyond_concurrency_and_queue_is_shed_with_503() {
    let probe =
        Serve::start_with_metrics(guests::PROBE, &["--max-concurrency", "1", "--queue", "1"]);
    let addr = probe.addr;
    let running = std::thread::spawn(move || get(addr, "/slow?ms=1500"));
    probe.wait_metric("wedge_http_requests_in_flight", |n| n == 1.0);
    let queued = std::thread::spawn(move || get(addr, "/slow?ms=10"));
    probe.wait_metric("wedge_http_requests_in_flight", |n| n == 2.0);

    let started = Instant::now();
    let shed = get(addr, "/");
    assert_eq!(shed.status, 503, "{shed:?}");
    assert_eq!(shed.headers["retry-after"], "1");
    // A request that waited for a slot would have been served (200) once the running
    // ones ended, or shed only after the 10 s queue timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shedding waited {:?}",
        started.elapsed()
    );
    assert_eq!(probe.metric("wedge_http_shed_total"), 1.0);

    let running = running.join().unwrap();
    assert_eq!(
        (running.status, running.body.as_str()),
        (200, "slept 1500\n")
    );
    let queued = queued.join().unwrap();
    assert_eq!((queued.status, queued.body.as_str()), (200, "slept 10\n"));
    let reply = get(addr, "/");
    assert_eq!(reply.status, 200, "{reply:?}");
    probe.wait_metric("wedge_http_requests_total{code=\"200\"}", |n| n == 3.0);
    assert_eq!(probe.metric("wedge_http_requests_total{code=\"503\"}"), 1.0);
    assert_eq!(probe.metric("wedge_http_requests_in_flight"), 0.0);
}

/// `--queue-timeout 300ms`: a request queued behind a slow one gets 503 with
/// `Retry-After` once it has waited 300 ms, counted as shed.
#[test]
fn a_request_queued_past_the_queue_timeout_gets_503() {
    let probe = Serve::start_with_metrics(
        guests::PROBE,
        &["--max-concurrency", "1", "--queue-timeout", "300ms"],
    );
    let addr = probe.addr;
    let running = std::thread::spawn(move || get(addr, "/slow?ms=2000"));
    probe.wait_metric("wedge_http_requests_in_flight", |n| n == 1.0);
    let started = Instant::now();
    let late = get(addr, "/");
    let waited = started.elapsed();
    assert_eq!(late.status, 503, "{late:?}");
    assert_eq!(late.headers["retry-after"], "1");
    // Without the timeout it would have waited for the running request and got 200.
    assert!(
        waited >= Duration::from_millis(250),
        "queued for {waited:?}"
    );
    assert_eq!(probe.metric("wedge_http_shed_total"), 1.0);
    assert_eq!(running.join().unwrap().status, 200);
}

/// `--max-connections 1`: a second connection is not served while the first is open;
/// its request is answered once the first connection closes.
#[test]
fn connections_beyond_max_connections_wait_their_turn() {
    let probe = Serve::start(guests::PROBE, &["--max-connections", "1"]);
    let addr = probe.addr;
    let mut first = Conn::h1(addr);
    let head = first
        .try_head(
            http::Request::get("/slow?ms=1000")
                .header(http::header::HOST, "wedge")
                .header(http::header::CONNECTION, "close")
                .body(empty())
                .unwrap(),
        )
        .expect("first request");
    let started = Instant::now();
    let second = std::thread::spawn(move || (get(addr, "/"), Instant::now()));
    let first_reply = block_on(read_reply(head)).expect("first body");
    let first_done = Instant::now();
    assert_eq!(first_reply.body, "slept 1000\n");
    let (reply, second_done) = second.join().unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        second_done >= first_done,
        "the second connection was served {:?} before the first closed",
        first_done - second_done
    );
    assert!(started.elapsed() < Duration::from_secs(120));
}

/// An allowed origin (`--allow-outbound http://127.0.0.1:P`) is fetched (200 with the
/// upstream's body); another port on the same host is denied inside the guest
/// (`HttpRequestDenied`) and never sees a connection.
#[test]
fn outbound_requests_follow_the_allow_list() {
    let allowed = Upstream::start("allowed upstream");
    let denied = Upstream::start("denied upstream");
    let probe = Serve::start(guests::PROBE, &["--allow-outbound", &allowed.origin()]);
    let reply = get(probe.addr, &format!("/fetch?url={}/x", allowed.origin()));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, "upstream 200: allowed upstream");
    assert_eq!(allowed.connections(), 1);

    let reply = get(probe.addr, &format!("/fetch?url={}/x", denied.origin()));
    assert_eq!(reply.status, 502, "{reply:?}");
    assert!(reply.body.contains("HttpRequestDenied"), "{reply:?}");
    // HTTPS to the allowed host and port is another origin.
    let https = format!("/fetch?url=https://{}/x", allowed.addr);
    let reply = get(probe.addr, &https);
    assert!(reply.body.contains("HttpRequestDenied"), "{reply:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(denied.connections(), 0, "the denied upstream was contacted");
    assert_eq!(
        allowed.connections(),
        1,
        "the https fetch reached the upstream"
    );

    // With no grant at all, nothing leaves.
    drop(probe);
    let probe = Serve::start(guests::PROBE, &[]);
    let reply = get(probe.addr, &format!("/fetch?url={}/x", allowed.origin()));
    assert!(reply.body.contains("HttpRequestDenied"), "{reply:?}");
    assert_eq!(allowed.connections(), 1);
}

/// 10,000 sequential keep-alive requests after 1,000 warm-up ones all get 200 and the
/// server's resident memory grows by less than 16 MiB (a per-request leak of even
/// 2 KiB would show).
#[test]
fn ten_thousand_requests_do_not_grow_memory() {
    let hello = Serve::start(guests::HELLO, &["--access-log", "off"]);
    let mut conn = Conn::h1(hello.addr);
    let mut run = |n: usize| {
        block_on(async {
            let Sender::H1(sender) = &mut conn.sender else {
                unreachable!()
            };
            for i in 0..n {
                let request = http::Request::get("/")
                    .header(http::header::HOST, "wedge")
                    .body(empty())
                    .unwrap();
                sender.ready().await.expect("connection kept alive");
                let response = sender.send_request(request).await.expect("response");
                let reply = read_reply(response).await.expect("body");
                assert_eq!(reply.status, 200, "request {i}: {reply:?}");
            }
        })
    };
    let started = Instant::now();
    run(1_000);
    let warm = hello.rss_kib();
    let warm_took = started.elapsed();
    let started = Instant::now();
    run(10_000);
    let took = started.elapsed();
    let after = hello.rss_kib();
    let growth = after.saturating_sub(warm);
    eprintln!(
        "RSS after 1,000 requests: {warm} KiB ({warm_took:?}); after 10,000 more: \
         {after} KiB ({took:?}); growth {growth} KiB"
    );
    assert!(
        growth < 16 * 1024,
        "RSS grew by {growth} KiB over 10,000 requests ({warm} KiB -> {after} KiB)"
    );
}

/// SIGTERM while a streamed response is in flight: the server stops accepting (new
/// connections are refused), an idle kept-alive connection gets 503 or is closed, the
/// in-flight response completes with its whole body, and the process exits 0.
#[test]
fn sigterm_drains_in_flight_requests_and_exits_0() {
    let mut probe = Serve::start(guests::PROBE, &[]);
    let mut idle = Conn::h1(probe.addr);
    assert_eq!(idle.get("/").status, 200);
    let mut conn = Conn::h1(probe.addr);
    let head = conn
        .try_head(conn.get_request("/stream?chunks=3&ms=400"))
        .expect("stream head");
    assert_eq!(head.status(), 200);

    probe.sigterm_until_closed();
    match idle.try_send(idle.get_request("/")) {
        Ok(reply) => assert_eq!(reply.status, 503, "a request after SIGTERM: {reply:?}"),
        Err(closed) => eprintln!("h1 idle connection after SIGTERM: {closed}"),
    }

    let reply = block_on(read_reply(head)).expect("the in-flight body");
    assert_eq!(reply.body, "chunk 0\nchunk 1\nchunk 2\n");
    let status = probe.wait_exit(Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "{}", probe.stderr());
    let lines = probe.access_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/stream") && l.contains("\" 200 ")),
        "{lines:?}"
    );
}

/// SIGTERM with an HTTP/2 connection streaming a response: the stream in flight
/// completes with its whole body, a new stream on that connection is refused (GOAWAY, or
/// 503), and the process exits 0.
#[test]
fn sigterm_drains_http2_streams() {
    let mut probe = Serve::start(guests::PROBE, &[]);
    let mut conn = Conn::h2c(probe.addr);
    let head = conn
        .try_head(conn.get_request("/stream?chunks=3&ms=400"))
        .expect("stream head");
    assert_eq!(head.status(), 200);
    probe.sigterm_until_closed();
    match conn.try_send(conn.get_request("/")) {
        Ok(reply) => assert_eq!(reply.status, 503, "a new stream after SIGTERM: {reply:?}"),
        Err(refused) => eprintln!("h2 new stream after SIGTERM: {refused}"),
    }
    let reply = block_on(read_reply(head)).expect("the in-flight body");
    assert_eq!(reply.body, "chunk 0\nchunk 1\nchunk 2\n");
    let status = probe.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{}", probe.stderr());
}

/// `--grace 500ms` and a guest that never finishes (no `--timeout`): after SIGTERM the
/// guest is killed once the grace period is over, the client gets 503 or a closed
/// connection, and the process exits 0 within about 2 s.
#[test]
fn sigterm_kills_requests_still_running_after_the_grace_period() {
    let mut probe = Serve::start_with_metrics(guests::PROBE, &["--grace", "500ms"]);
    let addr = probe.addr;
    let spinning = std::thread::spawn(move || {
        let mut conn = Conn::h1(addr);
        conn.try_send(conn.get_request("/spin"))
    });
    probe.wait_metric("wedge_http_requests_in_flight", |n| n == 1.0);
    let signalled = Instant::now();
    probe.sigterm();
    // Without the grace period's end the spinning request would hold the exit forever.
    let status = probe.wait_exit(Duration::from_secs(120));
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{}", probe.stderr());
    assert!(
        took >= Duration::from_millis(450),
        "exited {took:?} after SIGTERM"
    );
    match spinning.join().unwrap() {
        Ok(reply) => assert_eq!(reply.status, 503, "{reply:?}"),
        Err(closed) => eprintln!("/spin client after the grace period: {closed}"),
    }
}

/// h2c with prior knowledge gets 200 over HTTP/2; several streams on one HTTP/2
/// connection each get a fresh instance.
#[test]
fn http2_cleartext_with_prior_knowledge() {
    let probe = Serve::start(guests::PROBE, &[]);
    let mut conn = Conn::h2c(probe.addr);
    let reply = conn.get("/");
    assert_eq!(reply.version, http::Version::HTTP_2);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "hello from wasm\n")
    );
    for _ in 0..3 {
        let reply = conn.get("/counter");
        assert_eq!((reply.status, reply.body.as_str()), (200, "count 1\n"));
    }
    let reply = conn.post("/echo", b"over h2");
    assert_eq!((reply.status, reply.body.as_str()), (200, "over h2"));
    // HTTP/1.1 still works on the same port.
    assert_eq!(get(probe.addr, "/").version, http::Version::HTTP_11);
}

/// `--tls-cert/--tls-key`: HTTPS with ALPN picks h2 when offered and HTTP/1.1 when only
/// that is offered; both get 200; the startup line says `https://`; the guest sees the
/// request as HTTPS-served (same route behaviour).
#[test]
fn https_with_alpn_h2_and_http1() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::common::self_signed_cert(dir.path());
    let hello = Serve::start(
        guests::HELLO,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        hello
            .stderr()
            .contains("wedge: serving on https://127.0.0.1:"),
        "{}",
        hello.stderr()
    );
    let mut h2 = Conn::tls(hello.addr, &cert, &[b"h2", b"http/1.1"]);
    assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]));
    let reply = h2.get("/");
    assert_eq!(reply.version, http::Version::HTTP_2);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "hello from wasm\n")
    );

    let mut h1 = Conn::tls(hello.addr, &cert, &[b"http/1.1"]);
    assert_eq!(h1.alpn.as_deref(), Some(&b"http/1.1"[..]));
    for _ in 0..2 {
        let reply = h1.get("/");
        assert_eq!(reply.version, http::Version::HTTP_11);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "hello from wasm\n")
        );
    }
    // No ALPN at all: HTTP/1.1.
    let mut plain = Conn::tls(hello.addr, &cert, &[]);
    assert_eq!(plain.alpn, None);
    assert_eq!(plain.get("/").status, 200);
    // Plain HTTP on the TLS port gets no response.
    let response = raw_exchange(hello.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(Conn::tls(hello.addr, &cert, &[b"h2"]).get("/").status, 200);
}

/// The access log has one line per request with the client, method, path, version,
/// status, time and `instance=`; the metrics endpoint counts requests by status;
/// `--access-log off` writes no lines; `--access-log FILE` appends them to the file.
#[test]
fn access_log_lines_and_metrics_by_status() {
    let probe = Serve::start_with_metrics(guests::PROBE, &[]);
    let mut conn = Conn::h1(probe.addr);
    for path in ["/", "/nope", "/", "/trap"] {
        conn.get(path);
    }
    let text = probe.wait_stderr("four log lines", Duration::from_secs(60), |s| {
        access_lines(s).len() == 4
    });
    let lines = access_lines(&text);
    let expected = [
        ("\"GET / HTTP/1.1\" 200 ", false),
        ("\"GET /nope HTTP/1.1\" 404 ", false),
        ("\"GET / HTTP/1.1\" 200 ", false),
        ("\"GET /trap HTTP/1.1\" 500 ", true),
    ];
    for (line, (part, failed)) in lines.iter().zip(expected) {
        assert!(line.contains(part), "`{part}` not in: {line}");
        assert!(
            line.contains(" instance=") && line.contains(" start="),
            "{line}"
        );
        assert!(line.contains("ms "), "no request time: {line}");
        assert_eq!(line.contains(" error="), failed, "{line}");
    }
    probe.wait_metric("wedge_http_requests_total{code=\"200\"}", |n| n == 2.0);
    let metrics = probe.metrics();
    for (series, value) in [
        ("wedge_http_requests_total{code=\"404\"}", 1.0),
        ("wedge_http_requests_total{code=\"500\"}", 1.0),
        ("wedge_http_guest_failures_total{reason=\"trap\"}", 1.0),
        ("wedge_http_request_duration_seconds_count", 4.0),
        ("wedge_http_instantiate_seconds_count", 4.0),
        ("wedge_http_requests_in_flight", 0.0),
    ] {
        assert_eq!(metric(&metrics, series), value, "{series}");
    }
    // Guest output goes to the server's own stdout and stderr.
    assert_eq!(conn.get("/log").status, 200);
    probe.wait_stderr("the guest's stderr", Duration::from_secs(60), |s| {
        s.contains("probe stderr line")
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !probe.stdout().contains("probe stdout line") {
        assert!(
            Instant::now() < deadline,
            "the guest's stdout never reached the server's: {}",
            probe.stdout()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(probe);

    let quiet = Serve::start(guests::PROBE, &["--access-log", "off"]);
    for _ in 0..3 {
        assert_eq!(get(quiet.addr, "/").status, 200);
    }
    assert_eq!(get(quiet.addr, "/trap").status, 500);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        quiet.access_lines(),
        Vec::<String>::new(),
        "{}",
        quiet.stderr()
    );
    drop(quiet);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.log");
    let logged = Serve::start(guests::HELLO, &["--access-log", file.to_str().unwrap()]);
    for _ in 0..2 {
        assert_eq!(get(logged.addr, "/").status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while access_lines(&std::fs::read_to_string(&file).unwrap_or_default()).len() < 2 {
        assert!(Instant::now() < deadline, "no lines in {}", file.display());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(logged.access_lines(), Vec::<String>::new());
}

/// Apps and settings `wedge serve` cannot use fail at startup with one clear line and
/// the documented exit code (126: not a servable app; 125: bad input), never a panic.
#[test]
fn bad_apps_and_settings_fail_at_startup() {
    let env = Env::new();
    let serve = |rest: &[&str]| {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(rest);
        wedge_exits(&env, &args)
    };
    serve(&[p1::HELLO])
        .expect_code(126)
        .expect_one_line_error("component");
    serve(&[p2::HELLO])
        .expect_code(126)
        .expect_one_line_error("wasi:http/incoming-handler");
    let missing = env.path("missing.wasm");
    serve(&[missing.to_str().unwrap()]).expect_code(125);

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    wedge_exits(&env, &["serve", "--listen", &port, guests::HELLO])
        .expect_code(125)
        .expect_one_line_error("cannot listen");

    let not_pem = crate::common::write_file(env.dir.path(), "cert.txt", b"not a certificate\n");
    serve(&["--tls-cert", &not_pem, "--tls-key", &not_pem, guests::HELLO])
        .expect_code(125)
        .expect_one_line_error("TLS");
    let missing_cert = env.path("nope.pem");
    serve(&[
        "--tls-cert",
        missing_cert.to_str().unwrap(),
        "--tls-key",
        &not_pem,
        guests::HELLO,
    ])
    .expect_code(125)
    .expect_one_line_error("TLS");

    let log = env.path("no/such/dir/access.log");
    serve(&["--access-log", log.to_str().unwrap(), guests::HELLO])
        .expect_code(125)
        .expect_one_line_error("cannot open access log");
    // The metrics address is bound after the `serving on` line is printed, so that line
    // comes first here; only the exit code and the error are asserted.
    let run = serve(&["--metrics-listen", &port, guests::HELLO]);
    run.expect_code(125);
    assert!(
        run.stderr.contains("cannot listen") && run.stderr.contains("for metrics"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    serve(&["--max-header-size", "1KiB", guests::HELLO])
        .expect_code(125)
        .expect_one_line_error("--max-header-size");
    serve(&["--max-concurrency", "0", guests::HELLO])
        .expect_code(125)
        .expect_one_line_error("--max-concurrency");
    drop(taken);
}

/// A client that goes away before its response still gets its request finished in the
/// books: its guest is stopped, `wedge_http_requests_in_flight` is back to 0 and the
/// access log has a line for it with nginx's 499 (client closed request).
#[test]
fn a_request_abandoned_by_its_client_is_still_logged_and_counted() {
    let probe = Serve::start_with_metrics(guests::PROBE, &[]);
    let mut tcp = TcpStream::connect(probe.addr).unwrap();
    tcp.write_all(b"GET /slow?ms=300 HTTP/1.1\r\nHost: wedge\r\n\r\n")
        .unwrap();
    probe.wait_metric("wedge_http_requests_in_flight", |n| n == 1.0);
    drop(tcp);
    probe.wait_metric("wedge_http_requests_in_flight", |n| n == 0.0);
    probe.wait_stderr("a log line for /slow", Duration::from_secs(60), |s| {
        access_lines(s)
            .iter()
            .any(|l| l.contains("/slow") && l.contains(" 499 "))
    });
}

/// A guest stopped by `--timeout` after its response head was sent must not end the
/// body cleanly: the client has to see the body fail (HTTP/1.1: no last chunk; HTTP/2:
/// a reset stream), or it takes a truncated body for a whole one.
#[test]
fn a_body_cut_off_by_the_timeout_is_not_a_complete_body() {
    let probe = Serve::start(guests::PROBE, &["--timeout", "1s"]);
    for mut conn in [Conn::h1(probe.addr), Conn::h2c(probe.addr)] {
        let head = conn
            .try_head(conn.get_request("/stream?chunks=10&ms=300"))
            .expect("head");
        assert_eq!(head.status(), 200);
        let body = block_on(read_reply(head));
        assert!(body.is_err(), "a truncated body read as complete: {body:?}");
    }
}

/// Opens a connection and sends a POST to `/echo` whose body stops after its first
/// bytes (slowloris); the thread returns the response head, read until the server
/// answers or closes (60 s at most).
fn slow_body_client(addr: SocketAddr) -> JoinHandle<String> {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.write_all(
        b"POST /echo HTTP/1.1\r\nHost: wedge\r\nContent-Length: 100000\r\n\r\nthe first bytes",
    )
    .expect("send the head");
    std::thread::spawn(move || {
        tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&response).into_owned()
    })
}

/// Slowloris: clients that send their headers and then stall their bodies hold every
/// request slot only until `--body-timeout`, when they get 408; a normal GET queued
/// behind them is answered.
#[test]
fn stalled_request_bodies_are_cut_and_do_not_starve_other_clients() {
    let probe = Serve::start(
        guests::PROBE,
        &[
            "--max-concurrency",
            "4",
            "--body-timeout",
            "1s",
            "--queue-timeout",
            "60s",
        ],
    );
    let addr = probe.addr;
    let slow: Vec<_> = (0..4).map(|_| slow_body_client(addr)).collect();
    let reply = get(addr, "/");
    assert_eq!(reply.status, 200, "{reply:?}");
    for client in slow {
        let response = client.join().unwrap();
        assert_eq!(raw_status(&response), 408, "{response:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while access_lines(&probe.stderr())
        .iter()
        .filter(|l| l.contains("\"POST /echo HTTP/1.1\" 408"))
        .count()
        < 4
    {
        assert!(Instant::now() < deadline, "{}", probe.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        probe.stderr().contains("no request body data for `1s`"),
        "{}",
        probe.stderr()
    );
}
