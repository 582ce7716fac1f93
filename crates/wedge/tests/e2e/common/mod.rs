//! Helpers for end-to-end tests: run the real `wedge` binary with its own data root.

pub mod containerd;
pub mod containerd_api;
pub mod mosquitto;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The output of one `wedge` invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A scratch data root and working folder for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

/// The `wedged` binary: another package's (`wedge-daemon`), so cargo gives the tests no
/// path for it; it is built beside `wedge` (`cargo test --workspace` builds it, for
/// wedge-daemon's own integration tests).
pub fn wedged() -> PathBuf {
    let path = bin_dir().join("wedged");
    assert!(
        path.is_file(),
        "`{}` is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// Where `wedge` and `wedged` are: beside this test build, or `$WEDGE_E2E_BIN_DIR` (the
/// binaries cross-built for another architecture, `scripts/cross-test.sh`).
fn bin_dir() -> PathBuf {
    match std::env::var_os("WEDGE_E2E_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_BIN_EXE_wedge"))
            .parent()
            .expect("a folder")
            .to_path_buf(),
    }
}

/// A command running `program` (`wedge` or `wedged`) from [`bin_dir`], through
/// `$WEDGE_E2E_RUNNER` when set (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`).
fn command(program: &Path) -> Command {
    let runner = std::env::var("WEDGE_E2E_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut command = Command::new(first);
            command.args(words).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// A command running `wedge`.
pub fn wedge_command() -> Command {
    command(&bin_dir().join("wedge"))
}

/// A command running `wedged`.
pub fn wedged_command() -> Command {
    command(&wedged())
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `wedge ARGS` with this env's data root and no stdin.
    pub fn wedge(&self, args: &[&str]) -> Run {
        self.wedge_with_stdin(args, b"")
    }

    /// Runs `wedge ARGS`, feeding `stdin`.
    pub fn wedge_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.wedge_with(args, stdin, &[])
    }

    /// Runs `wedge ARGS`, feeding `stdin`, with extra environment variables.
    pub fn wedge_with(&self, args: &[&str], stdin: &[u8], vars: &[(&str, String)]) -> Run {
        let mut child = wedge_command()
            .args(args)
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .env("WEDGE_ROOT", self.root())
            .env_remove("WEDGE_HOST")
            .env("WEDGE_TEST_SECRET", "host-only")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wedge");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait wedge");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts that stderr is exactly one line starting with `wedge: ` and containing `needle`.
    #[track_caller]
    pub fn expect_one_line_error(&self, needle: &str) -> &Run {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got:\n{}",
            self.stderr
        );
        assert!(
            lines[0].starts_with("wedge: "),
            "error not prefixed: {}",
            lines[0]
        );
        assert!(lines[0].contains(needle), "`{needle}` not in: {}", lines[0]);
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        self
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1 made with the `openssl`
/// CLI: `(cert.pem, key.pem)` in `dir`.
pub fn self_signed_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run the openssl CLI (Debian package `openssl`)");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// The AOT cache entries under the data root `root`, sorted (none when it has none).
pub fn cache_entries(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(engines) = std::fs::read_dir(root.join("cache/aot")) else {
        return out;
    };
    for engine in engines {
        for entry in std::fs::read_dir(engine.unwrap().path()).unwrap() {
            let path = entry.unwrap().path();
            // Not the temp files of entries being written.
            if path.extension().is_some_and(|e| e == "cwasm") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The AOT cache entries under `root` relative to it, once there are some: what a
/// background compile leaves (ten minutes at most, for a loaded machine).
#[track_caller]
pub fn cache_entries_once_compiled(root: &Path) -> Vec<PathBuf> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let entries = cache_entries(root);
        if !entries.is_empty() {
            return relative_to(root, &entries);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no code was compiled into the cache under {}",
            root.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `paths` relative to `root`, to compare cache entries under two data roots.
pub fn relative_to(root: &Path, paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().to_owned())
        .collect()
}

/// Checks that a `memhog` run stopped at its memory cap: exit 134, `allocated {reached}
/// MiB` printed, `allocated {past} MiB` not, and `reason` on stderr.
#[track_caller]
pub fn assert_stopped_at_cap(run: &Run, reached: u32, past: u32, reason: &str) {
    run.expect_code(134);
    let reached = format!("allocated {reached} MiB");
    assert!(run.stdout.contains(&reached), "{}", run.stdout);
    let past = format!("allocated {past} MiB");
    assert!(
        !run.stdout.contains(&past),
        "grew past the cap: {}",
        run.stdout
    );
    assert!(run.stderr.contains(reason), "{}", run.stderr);
}

/// Writes `bytes` to `dir/name` and returns the path as a string.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write file");
    path.to_string_lossy().into_owned()
}

/// An app folder `env/app`: `wasm` copied to `app.wasm` and a `wedge.toml` for app
/// `name` followed by `extra` manifest lines. Returns the folder.
pub fn app_folder(env: &Env, wasm: &str, name: &str, extra: &str) -> PathBuf {
    let dir = env.path("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(wasm, dir.join("app.wasm")).unwrap();
    std::fs::write(
        dir.join("wedge.toml"),
        format!("manifest_version = 1\n[app]\nname = \"{name}\"\nwasm = \"app.wasm\"\n{extra}"),
    )
    .unwrap();
    dir
}

/// A real OCI registry (Debian's `docker-registry`, distribution v2) on a free loopback
/// port with its own storage folder; killed on drop.
pub struct TestRegistry {
    pub dir: tempfile::TempDir,
    pub host: String,
    child: std::process::Child,
}

impl TestRegistry {
    /// Starts a registry; with `user`, it requires that basic-auth login (password `secret`).
    pub fn start(user: Option<&str>) -> TestRegistry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("storage").display()
        );
        if let Some(user) = user {
            let htpasswd = Command::new("htpasswd")
                .args(["-Bbn", user, "secret"])
                .output()
                .expect("run htpasswd");
            assert!(htpasswd.status.success(), "htpasswd failed");
            std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: wedge-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry (run scripts/setup.sh)");
        let registry = TestRegistry { dir, host, child };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(&registry.host).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        registry
    }

    /// Every blob file the registry stores, by digest hex.
    pub fn blob_data(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Stops the registry now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback TCP proxy in front of a registry that forwards each connection but cuts
/// it once `cut_after` bytes have flowed in either direction, as a registry killed
/// mid-transfer would. `set_cut` changes the limit for later connections; `set_delay`
/// slows every forwarded chunk, to stretch a transfer out.
pub struct CuttingProxy {
    pub host: String,
    cut_after: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl CuttingProxy {
    pub fn start(upstream: &str, cut_after: usize) -> CuttingProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let limit = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(cut_after));
        let delay_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let upstream = upstream.to_string();
        let shared = limit.clone();
        let shared_delay = delay_ms.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let budget = std::sync::Arc::new(std::sync::atomic::AtomicIsize::new(
                    shared.load(Ordering::SeqCst) as isize,
                ));
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let budget = budget.clone();
                    let delay = shared_delay.clone();
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let left = budget.fetch_sub(n as isize, Ordering::SeqCst);
                            if left <= 0 {
                                break;
                            }
                            let n = n.min(left as usize);
                            if to.write_all(&buf[..n]).is_err() || n as isize >= left {
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(
                                delay.load(Ordering::SeqCst),
                            ));
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        CuttingProxy {
            host,
            cut_after: limit,
            delay_ms,
        }
    }

    pub fn set_cut(&self, bytes: usize) {
        self.cut_after
            .store(bytes, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set_delay(&self, ms: u64) {
        self.delay_ms.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A real `wedged` process on a temp socket, with the env's data root.
pub struct TestDaemon {
    child: Option<std::process::Child>,
    pub root: PathBuf,
    pub socket: PathBuf,
    log: PathBuf,
    args: Vec<String>,
}

impl TestDaemon {
    /// Starts `wedged --root <env root> --socket <env>/wedged.sock EXTRA…` and waits
    /// until it answers.
    pub fn start(env: &Env, extra: &[&str]) -> TestDaemon {
        let mut d = TestDaemon {
            child: None,
            root: env.root(),
            socket: env.path("wedged.sock"),
            log: env.path("wedged.log"),
            args: extra.iter().map(|s| s.to_string()).collect(),
        };
        d.spawn();
        d
    }

    /// Starts the daemon process again (after [`TestDaemon::kill9`]).
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("daemon log");
        let child = wedged_command()
            .arg("--root")
            .arg(&self.root)
            .arg("--socket")
            .arg(&self.socket)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn wedged");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if self.request("GET", "/v2/_ping", None).0 == 200 {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("wedged exited with {status}: {}", self.log_text());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("wedged did not answer: {}", self.log_text());
    }

    /// What the daemon printed.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `unix://…` for `-H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// SIGKILLs the daemon and waits for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("bash")
            .args(["-c", &format!("kill -TERM {}", c.id())])
            .status()
            .expect("kill");
        c.wait().expect("wait")
    }

    /// Runs `wedge -H <this daemon> ARGS` in `env`.
    pub fn wedge(&self, env: &Env, args: &[&str]) -> Run {
        let host = self.host();
        let mut all = vec!["-H", host.as_str()];
        all.extend_from_slice(args);
        env.wedge(&all)
    }

    /// One raw HTTP/1.1 request over the socket: the status and the body.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        raw_http(
            std::os::unix::net::UnixStream::connect(&self.socket).ok(),
            method,
            path,
            body,
            None,
        )
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Sends one request on `stream` (status 0 when there is no connection) and reads the
/// whole answer.
pub fn raw_http<S: std::io::Read + Write>(
    stream: Option<S>,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let Some(mut stream) = stream else {
        return (0, String::new());
    };
    let body = body.unwrap_or("");
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: wedged\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // A server that refuses a body (413) may answer and close before reading it all.
    let _ = stream.write_all(request.as_bytes());
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(head, b)| {
            if head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked")
            {
                dechunk(b)
            } else {
                b.to_string()
            }
        })
        .unwrap_or_default();
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// What a [`FakeRegistry`] answers to one request.
pub enum Reply {
    /// A status, a content type and a body sent with its `Content-Length`.
    Body(u16, &'static str, Vec<u8>),
    /// 200 without a `Content-Length`: the same 64 KiB over and over until the client
    /// hangs up (an endless blob or manifest).
    Endless(&'static str),
}

/// A hostile OCI registry written by hand, on a free loopback port: `route` answers
/// each request by its path (`/v2/…`). It records every path asked for, and counts the
/// body bytes it managed to send.
pub struct FakeRegistry {
    pub host: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl FakeRegistry {
    pub fn start(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> FakeRegistry {
        use std::io::{BufRead, BufReader};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let route = std::sync::Arc::new(route);
        let (seen, counted) = (requests.clone(), sent.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (route, seen, counted) = (route.clone(), seen.clone(), counted.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                                return;
                            }
                            if header == "\r\n" || header == "\n" {
                                break;
                            }
                        }
                        seen.lock().unwrap().push(path.clone());
                        match route(&path) {
                            Reply::Body(status, content_type, body) => {
                                let head = format!(
                                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                                    body.len()
                                );
                                if stream.write_all(head.as_bytes()).is_err()
                                    || stream.write_all(&body).is_err()
                                {
                                    return;
                                }
                                counted.fetch_add(body.len() as u64, Ordering::SeqCst);
                            }
                            Reply::Endless(content_type) => {
                                let head = format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
                                );
                                if stream.write_all(head.as_bytes()).is_err() {
                                    return;
                                }
                                let chunk = vec![b'A'; 64 << 10];
                                while stream.write_all(&chunk).is_ok() {
                                    counted.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                                }
                                return;
                            }
                        }
                    }
                });
            }
        });
        FakeRegistry {
            host,
            requests,
            sent,
        }
    }

    /// The paths asked for so far.
    pub fn requested(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// An OCI image manifest with a Wasm config and one `application/wasm` layer, the
/// descriptors' JSON given as written (so they can lie).
pub fn wasm_manifest(config: &str, layer: &str) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{config},"layers":[{layer}]}}"#
    )
    .into_bytes()
}

/// Runs `wedge ARGS` with the env's data root, killing it if it has not finished after
/// `limit` (then the code is -1).
pub fn wedge_within(env: &Env, args: &[&str], limit: std::time::Duration) -> Run {
    let mut child = wedge_command()
        .args(args)
        .env("WEDGE_ROOT", env.root())
        .env_remove("WEDGE_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wedge");
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("wait wedge").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("wait wedge");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Bytes in the files under `dir`, recursively (0 if it does not exist).
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}
