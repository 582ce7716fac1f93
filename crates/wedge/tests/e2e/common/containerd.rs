//! A real containerd (Debian's package) of the test's own: started under a temporary
//! root, state and socket, with `containerd-shim-wedge-v1` on its `PATH`, optionally
//! with its CRI plugin serving the runtime handler `wedge` (with the repo's own
//! `deploy/kubernetes/containerd.toml`). Images are OCI image-layout tars made here.

use crate::common::Run;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shim's runtime type.
pub const RUNTIME: &str = "io.containerd.wedge.v1";
/// The sandbox image the CRI plugin is configured with (never pulled: imported).
pub const PAUSE_IMAGE: &str = "localhost/wedge-test/pause:1";
/// What the `args_env` guest prints run as `/app.wasm one --two` with `LOG=debug`
/// in an image whose environment is `GREETING=hello`.
pub const ARGS_ENV_LINES: [&str; 5] = [
    "arg[0]=/app.wasm",
    "arg[1]=one",
    "arg[2]=--two",
    "env GREETING=hello",
    "env LOG=debug",
];
/// The CRI plugin's containerd namespace.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// A containerd of the test's own.
pub struct Containerd {
    pub dir: tempfile::TempDir,
    daemon: Child,
    /// The pod network's bridge, to delete when done.
    bridge: Option<String>,
}

/// One entry of an image's filesystem layer.
pub enum Entry<'a> {
    /// A regular file with these bytes.
    File(&'a [u8]),
    /// A symbolic link to this target.
    Symlink(&'a str),
}

impl Containerd {
    /// containerd without its CRI plugin, for `ctr`.
    pub fn start() -> Containerd {
        Self::launch(
            "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
            "",
            &[],
        )
    }

    /// containerd with its CRI plugin: runtime handler `wedge` as the repo's deploy
    /// snippet configures it, host-network pods (no CNI configuration), and a local
    /// sandbox image imported before the plugin needs it.
    pub fn start_with_cri() -> Containerd {
        Self::start_with_cri_env(&[])
    }

    /// [`Self::start_with_cri`], with a pod network: Debian's CNI plugins, a bridge
    /// `bridge` (at most 15 characters; deleted on drop) with `subnet` (a /24), the
    /// host its gateway.
    pub fn start_with_pod_network(bridge: &str, subnet: &str) -> Containerd {
        let mut ctd = Self::start_with_cri_env(&[]);
        let conf = serde_json::json!({
            "cniVersion": "1.0.0", "name": "wedge-test",
            "plugins": [
                {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                          "dataDir": ctd.dir.path().join("ipam")}},
                {"type": "loopback"},
            ],
        });
        std::fs::write(
            ctd.dir.path().join("cni/10-wedge-test.conflist"),
            serde_json::to_vec_pretty(&conf).unwrap(),
        )
        .unwrap();
        ctd.bridge = Some(bridge.to_string());
        ctd
    }

    /// [`Self::start_with_cri`], with `env` in containerd's environment (which its
    /// shims inherit).
    pub fn start_with_cri_env(env: &[(&str, &str)]) -> Containerd {
        let snippet = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/containerd.toml"),
        )
        .expect("deploy/kubernetes/containerd.toml");
        let plugin = format!(
            r#"[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # No CAP_SYS_RESOURCE on CI machines: keep oom_score_adj as it is.
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Pods' network namespaces under the state folder, not the node's /var/run/netns.
  netns_mounts_under_state_dir = true
  # As on any node: runc stays the default runtime.
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{{dir}}/certs.d"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{{dir}}/cni"
{snippet}"#
        );
        let ctd = Self::launch("", &plugin, env);
        // The sandbox image: the wedge shim holds a pod's namespaces itself and never
        // runs the image's program, but the CRI plugin needs the image to exist.
        ctd.import(
            CRI_NAMESPACE,
            PAUSE_IMAGE,
            ("linux", "amd64"),
            "/pause",
            &[("pause", Entry::File(b"#!/bin/sh\nexec sleep infinity\n"))],
        );
        ctd
    }

    fn launch(top: &str, plugins: &str, env: &[(&str, &str)]) -> Containerd {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(dir.path().join("cni")).unwrap();
        let shim = shim_binary();
        std::os::unix::fs::symlink(&shim, bin.join("containerd-shim-wedge-v1")).unwrap();
        let d = dir.path().display().to_string();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
{top}
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
{}
"#,
            plugins.replace("{dir}", &d)
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
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is not installed: run scripts/setup.sh");
        let containerd = Containerd {
            dir,
            daemon,
            bridge: None,
        };
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

    /// Lets the CRI plugin pull from the plain-HTTP registry at `host` (a
    /// `certs.d/<host>/hosts.toml`, read at each pull).
    pub fn allow_plain_http(&self, host: &str) {
        let dir = self.dir.path().join("certs.d").join(host);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hosts.toml"),
            format!(
                "server = \"http://{host}\"\n[host.\"http://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .unwrap();
    }

    /// containerd's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// containerd's gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// `ctr` against this containerd.
    pub fn ctr(&self, args: &[&str]) -> Run {
        let output = self.ctr_command(args).output().expect("ctr");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// `ctr run --rm` of `image` as container `id` on the wedge runtime, with `extra`
    /// options before the image and `command` after the id.
    pub fn run(&self, extra: &[&str], image: &str, id: &str, command: &[&str]) -> Run {
        let fifo = self.dir.path().join("fifo");
        let fifo = fifo.to_str().unwrap();
        let mut args = vec!["run", "--rm", "--runtime", RUNTIME, "--fifo-dir", fifo];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[image, id]);
        args.extend_from_slice(command);
        self.ctr(&args)
    }

    /// Imports, into the `default` namespace, an image whose one filesystem layer
    /// holds `wasm` as `/app.wasm`, its entrypoint, under the name `image`.
    pub fn import_wasm(&self, image: &str, wasm: &str) {
        self.import_wasm_into("default", image, wasm);
    }

    /// [`Self::import_wasm`] into `namespace`.
    pub fn import_wasm_into(&self, namespace: &str, image: &str, wasm: &str) {
        let wasm = std::fs::read(wasm).unwrap();
        self.import(
            namespace,
            image,
            ("wasip1", "wasm"),
            "/app.wasm",
            &[("app.wasm", Entry::File(&wasm))],
        );
    }

    /// Imports into `namespace` an image of one layer holding `entries`, with
    /// `platform` (os, architecture), `entrypoint` and the environment
    /// `GREETING=hello`.
    pub fn import(
        &self,
        namespace: &str,
        image: &str,
        platform: (&str, &str),
        entrypoint: &str,
        entries: &[(&str, Entry)],
    ) {
        let tar = self
            .dir
            .path()
            .join(format!("{}.tar", image.replace(['/', ':'], "_")));
        write_image(&tar, image, platform, entrypoint, Layers::Tar(entries));
        self.ctr(&[
            "--namespace",
            namespace,
            "image",
            "import",
            "--all-platforms",
            tar.to_str().unwrap(),
        ])
        .expect_code(0);
    }

    /// Imports into the `default` namespace, without unpacking, an image whose
    /// layers are `layers` (media type, bytes), raw Wasm rather than tars, with
    /// platform `wasip1/wasm` and entrypoint `/app.wasm`.
    pub fn import_wasm_layers(&self, image: &str, layers: &[(&str, &[u8])]) {
        let tar = self
            .dir
            .path()
            .join(format!("{}.tar", image.replace(['/', ':'], "_")));
        let platform = ("wasip1", "wasm");
        write_image(&tar, image, platform, "/app.wasm", Layers::Wasm(layers));
        let tar = tar.to_str().unwrap();
        self.ctr(&["image", "import", "--all-platforms", "--no-unpack", tar])
            .expect_code(0);
    }

    /// `ctr run -d` of `image` as container `id` on the wedge runtime; returns once
    /// its task runs, with its pid.
    pub fn run_detached(&self, image: &str, id: &str) -> i32 {
        let fifo = self.dir.path().join("fifo");
        let fifo = fifo.to_str().unwrap();
        self.ctr(&[
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            "--fifo-dir",
            fifo,
            image,
            id,
        ])
        .expect_code(0);
        self.wait_status(id, "RUNNING");
        self.ctr(&["task", "ls"])
            .stdout
            .lines()
            .find(|l| l.starts_with(id))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .expect("a pid")
    }

    /// Polls `ctr task ls` until `id`'s status is `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
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

    /// The pids of this containerd's shim processes still alive.
    pub fn shims(&self) -> Vec<i32> {
        let mine = self.dir.path().to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'));
            if String::from_utf8_lossy(&cmdline).contains(&mine)
                && !zombie
                && let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>()
                && pid as u32 != self.daemon.id()
            {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: a plain signal to the child this fixture started.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
        // Shims outlive containerd (as they must); end those of this test.
        for pid in self.shims() {
            // SAFETY: a plain signal to a shim process of this test.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Some(bridge) = &self.bridge {
            let _ = Command::new("ip").args(["link", "del", bridge]).status();
        }
    }
}

/// The shim binary `cargo test --workspace` built beside `wedge`.
fn shim_binary() -> PathBuf {
    let shim = Path::new(env!("CARGO_BIN_EXE_wedge")).with_file_name("containerd-shim-wedge-v1");
    assert!(
        shim.is_file(),
        "`{}` is missing: run the tests with `cargo test --workspace`",
        shim.display()
    );
    shim
}

/// An image's layers, as [`write_image`] writes them.
enum Layers<'a> {
    /// One uncompressed tar layer holding these entries.
    Tar(&'a [(&'a str, Entry<'a>)]),
    /// Raw Wasm layers (media type, bytes), which containerd does not unpack; the
    /// manifest is then reached through a nested index, as after a registry pull of
    /// a multi-platform image.
    Wasm(&'a [(&'a str, &'a [u8])]),
}

/// Writes an OCI image-layout tar (as `docker save`/`ctr export` do) of `layers`, with
/// `platform`, `entrypoint` and the environment `GREETING=hello`.
fn write_image(
    path: &Path,
    name: &str,
    (os, architecture): (&str, &str),
    entrypoint: &str,
    layers: Layers,
) {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut put = |bytes: Vec<u8>| {
        let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        let size = bytes.len();
        blobs.push((digest.clone(), bytes));
        (digest, size)
    };
    let (descriptors, diff_ids) = match &layers {
        Layers::Tar(entries) => {
            let (digest, size) = put(tar_layer(entries));
            let layer = serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": digest, "size": size});
            (vec![layer], vec![digest])
        }
        Layers::Wasm(wasm) => {
            let layers = wasm.iter().map(|(media_type, bytes)| {
                let (digest, size) = put(bytes.to_vec());
                serde_json::json!({"mediaType": media_type, "digest": digest, "size": size})
            });
            (layers.collect(), Vec::new())
        }
    };
    let config = serde_json::json!({
        "architecture": architecture, "os": os,
        "config": {"Entrypoint": [entrypoint], "Env": ["GREETING=hello"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (config_digest, config_size) = put(serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": descriptors,
    });
    let (manifest_digest, manifest_size) = put(serde_json::to_vec(&manifest).unwrap());
    let mut top = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
        "platform": {"os": os, "architecture": architecture},
    });
    if let Layers::Wasm(_) = layers {
        let nested = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [top],
        });
        let (digest, size) = put(serde_json::to_vec(&nested).unwrap());
        top = serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest, "size": size,
        });
    }
    top["annotations"] = serde_json::json!({"io.containerd.image.name": name,
                                            "org.opencontainers.image.ref.name": name});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [top]});
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

/// An uncompressed tar layer holding `entries`.
fn tar_layer(entries: &[(&str, Entry)]) -> Vec<u8> {
    let mut layer = tar::Builder::new(Vec::new());
    for (name, entry) in entries {
        let mut header = tar::Header::new_gnu();
        match entry {
            Entry::File(bytes) => {
                header.set_size(bytes.len() as u64);
                header.set_mode(0o755);
                header.set_cksum();
                layer.append_data(&mut header, name, *bytes).unwrap();
            }
            Entry::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                layer.append_link(&mut header, name, target).unwrap();
            }
        }
    }
    layer.into_inner().unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
