//! `containerd-shim-wedge-v1` under a real containerd (Debian's package, started here
//! under a temporary root, state and socket, the shim on its `PATH`), driven by `ctr`
//! as an operator would: images imported from OCI image-layout tars whose filesystem
//! layer holds the `.wasm` (what every containerd runs), `ctr run` with arguments,
//! environment, mounts and a memory limit, exit codes, kill and delete.

use crate::common::Run;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wedge_test_programs::p1;

const RUNTIME: &str = "io.containerd.wedge.v1";

/// A containerd of the test's own.
struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let shim =
            Path::new(env!("CARGO_BIN_EXE_wedge")).with_file_name("containerd-shim-wedge-v1");
        assert!(
            shim.is_file(),
            "`{}` is missing: run the tests with `cargo test --workspace`",
            shim.display()
        );
        std::os::unix::fs::symlink(&shim, bin.join("containerd-shim-wedge-v1")).unwrap();
        let d = dir.path().display();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .env("PATH", path)
            .env("WEDGE_SHIM_ROOT", dir.path().join("shim"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is not installed: run scripts/setup.sh");
        let containerd = Containerd { dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(60);
        while containerd.ctr(&["version"]).code != 0 {
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                containerd.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        containerd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr` against this containerd.
    fn ctr(&self, args: &[&str]) -> Run {
        let output = self.ctr_command(args).output().expect("ctr");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn ctr_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// `ctr run --rm` of `image` as container `id` on the wedge runtime, with `extra`
    /// options before the image and `command` after the id.
    fn run(&self, extra: &[&str], image: &str, id: &str, command: &[&str]) -> Run {
        let fifo = self.dir.path().join("fifo");
        let fifo = fifo.to_str().unwrap();
        let mut args = vec!["run", "--rm", "--runtime", RUNTIME, "--fifo-dir", fifo];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[image, id]);
        args.extend_from_slice(command);
        self.ctr(&args)
    }

    /// Imports an image whose one filesystem layer holds `wasm` as `/app.wasm`, its
    /// entrypoint, under the name `image`.
    fn import_wasm(&self, image: &str, wasm: &str) {
        let tar = self
            .dir
            .path()
            .join(format!("{}.tar", image.replace(['/', ':'], "_")));
        write_image(&tar, image, &std::fs::read(wasm).unwrap());
        self.ctr(&["image", "import", "--all-platforms", tar.to_str().unwrap()])
            .expect_code(0);
    }

    /// Polls `ctr task ls` until `id`'s status is `status`.
    fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let tasks = self.ctr(&["task", "ls"]).stdout;
            if tasks
                .lines()
                .any(|l| l.starts_with(id) && l.contains(status))
            {
                return;
            }
            assert!(Instant::now() < deadline, "`{id}` never {status}: {tasks}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: a plain signal to the child this fixture started.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
        // Shims outlive containerd (as they must); end those of this test.
        let mine = self.dir.path().to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&mine)
                && let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>()
            {
                // SAFETY: a plain signal to a shim process of this test.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Writes an OCI image-layout tar (as `docker save`/`ctr export` do) of one
/// uncompressed layer holding `app.wasm`, platform `wasip1/wasm`, entrypoint
/// `/app.wasm`, and the environment `GREETING=hello`.
fn write_image(path: &Path, name: &str, wasm: &[u8]) {
    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(wasm.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    layer.append_data(&mut header, "app.wasm", wasm).unwrap();
    let layer = layer.into_inner().unwrap();
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut put = |bytes: Vec<u8>| {
        let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        let size = bytes.len();
        blobs.push((digest.clone(), bytes));
        (digest, size)
    };
    let (layer_digest, layer_size) = put(layer);
    let config = serde_json::json!({
        "architecture": "wasm", "os": "wasip1",
        "config": {"Entrypoint": ["/app.wasm"], "Env": ["GREETING=hello"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = put(serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = put(serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "platform": {"os": "wasip1", "architecture": "wasm"},
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name},
        }],
    });
    let mut out = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        out.append_data(&mut header, name, bytes).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &serde_json::to_vec(&index).unwrap());
    for (digest, bytes) in &blobs {
        add(
            &format!("blobs/sha256/{}", &digest["sha256:".len()..]),
            bytes,
        );
    }
    out.finish().unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn ctr_runs_a_wasm_image_with_its_args_env_and_exit_code() {
    let ctd = Containerd::start();
    ctd.import_wasm("localhost/wedge-test/args:1", p1::ARGS_ENV);
    let run = ctd.run(
        &["--env", "LOG=debug"],
        "localhost/wedge-test/args:1",
        "args",
        &["/app.wasm", "one", "--two"],
    );
    run.expect_code(0);
    for line in [
        "arg[0]=/app.wasm",
        "arg[1]=one",
        "arg[2]=--two",
        "env GREETING=hello",
        "env LOG=debug",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "no `{line}` in {}",
            run.stdout
        );
    }
    ctd.import_wasm("localhost/wedge-test/exit42:1", p1::EXIT42);
    ctd.run(&[], "localhost/wedge-test/exit42:1", "exit42", &[])
        .expect_code(42);
    assert_eq!(
        ctd.ctr(&["task", "ls", "-q"]).stdout.trim(),
        "",
        "tasks left behind"
    );
}

#[test]
fn only_the_image_and_mounted_directories_are_visible() {
    let ctd = Containerd::start();
    ctd.import_wasm("localhost/wedge-test/files:1", p1::FILES);
    let data = ctd.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("note.txt"), "from the host").unwrap();
    let ro = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        data.display()
    );
    let rw = format!(
        "type=bind,src={},dst=/data,options=rbind:rw",
        data.display()
    );
    let image = "localhost/wedge-test/files:1";
    let run = ctd.run(
        &["--mount", &ro],
        image,
        "read",
        &["/app.wasm", "read", "/data/note.txt"],
    );
    run.expect_code(0);
    assert!(run.stdout.contains("from the host"), "{}", run.stdout);
    // A read-only mount refuses writes; a read-write one takes them.
    ctd.run(
        &["--mount", &ro],
        image,
        "write-ro",
        &["/app.wasm", "write", "/data/new.txt", "x"],
    )
    .expect_code(1);
    assert!(!data.join("new.txt").exists());
    ctd.run(
        &["--mount", &rw],
        image,
        "write-rw",
        &["/app.wasm", "write", "/data/new.txt", "x"],
    )
    .expect_code(0);
    assert_eq!(std::fs::read_to_string(data.join("new.txt")).unwrap(), "x");
    // The root is the image's own filesystem, not the node's.
    let run = ctd.run(&[], image, "ls-root", &["/app.wasm", "ls", "/"]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), "app.wasm", "{}", run.stdout);
    ctd.run(
        &[],
        image,
        "host-file",
        &["/app.wasm", "read", "/etc/passwd"],
    )
    .expect_code(1);
    ctd.run(
        &[],
        image,
        "escape",
        &["/app.wasm", "read", "/../../../../etc/passwd"],
    )
    .expect_code(1);
}

#[test]
fn the_memory_limit_caps_linear_memory() {
    let ctd = Containerd::start();
    ctd.import_wasm("localhost/wedge-test/memhog:1", p1::MEMHOG);
    let run = ctd.run(
        &["--memory-limit", &(32u64 << 20).to_string()],
        "localhost/wedge-test/memhog:1",
        "memhog",
        &[],
    );
    run.expect_code(134);
    assert!(run.stdout.contains("allocated 16 MiB"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("allocated 32 MiB"),
        "grew past the cap: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("memory limit of 32MiB"),
        "{}",
        run.stderr
    );
}

#[test]
fn kill_stops_a_running_container_and_delete_removes_it() {
    let ctd = Containerd::start();
    ctd.import_wasm("localhost/wedge-test/sleep:1", p1::SLEEP);
    let fifo = ctd.dir.path().join("fifo");
    ctd.ctr(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        "--fifo-dir",
        fifo.to_str().unwrap(),
        "localhost/wedge-test/sleep:1",
        "sleeper",
    ])
    .expect_code(0);
    ctd.wait_status("sleeper", "RUNNING");
    let pid: u32 = ctd
        .ctr(&["task", "ls"])
        .stdout
        .lines()
        .find(|l| l.starts_with("sleeper"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("a pid");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "no process {pid}"
    );
    ctd.ctr(&["task", "kill", "-s", "SIGKILL", "sleeper"])
        .expect_code(0);
    ctd.wait_status("sleeper", "STOPPED");
    ctd.ctr(&["task", "delete", "sleeper"]).expect_code(0);
    ctd.ctr(&["container", "delete", "sleeper"]).expect_code(0);
    assert_eq!(ctd.ctr(&["task", "ls", "-q"]).stdout.trim(), "");
    assert!(
        !Path::new(&format!("/proc/{pid}/exe")).exists(),
        "process {pid} outlived its task"
    );
}

#[test]
fn sigterm_asks_the_app_to_stop() {
    let ctd = Containerd::start();
    ctd.import_wasm("localhost/wedge-test/graceful:1", p1::GRACEFUL);
    let fifo = ctd.dir.path().join("fifo");
    let mut foreground = ctd
        .ctr_command(&[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            "--fifo-dir",
            fifo.to_str().unwrap(),
            "localhost/wedge-test/graceful:1",
            "graceful",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the app works, SIGTERM (ctr's default) calls its stop function.
    let stdout = std::io::BufReader::new(foreground.stdout.take().unwrap());
    let (lines, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stdout).map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut output = String::new();
    while !output.contains("working 1") {
        let line = rx
            .recv_timeout(deadline - Instant::now())
            .expect("the app never worked");
        output.push_str(&line);
        output.push('\n');
    }
    ctd.ctr(&["task", "kill", "graceful"]).expect_code(0);
    output.extend(rx.iter().map(|line| line + "\n"));
    let status = foreground.wait().unwrap();
    assert!(output.contains("stopping after"), "{output}");
    assert_eq!(status.code(), Some(0), "{output}");
}

#[test]
fn an_entrypoint_that_is_not_in_the_image_is_a_clear_error() {
    let ctd = Containerd::start();
    ctd.import_wasm("localhost/wedge-test/args:1", p1::ARGS_ENV);
    let run = ctd.run(
        &[],
        "localhost/wedge-test/args:1",
        "missing",
        &["/missing.wasm"],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("`/missing.wasm` is not in the image"),
        "{}",
        run.stderr
    );
    assert_eq!(ctd.ctr(&["task", "ls", "-q"]).stdout.trim(), "");
}
