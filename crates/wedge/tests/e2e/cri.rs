//! Pods through containerd's CRI plugin, driven over its gRPC socket as the kubelet
//! drives it (crate `k8s-cri`, CRI `runtime.v1`): RunPodSandbox with the runtime
//! handler `wedge`, CreateContainer with args, env, mounts, a memory limit and
//! annotations, StartContainer, ContainerStatus, the container's log file in CRI
//! format, StopContainer, RemovePodSandbox.

use crate::common::containerd::{ARGS_ENV_LINES, CRI_NAMESPACE, Containerd};
use crate::common::mosquitto::Mosquitto;
use crate::common::{Env, TestRegistry, app_folder};
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use wedge_test_programs::{edge, http, models, p1};

/// A kubelet's view of one containerd: its CRI clients and the pods' log directory.
struct Kubelet {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    logs: PathBuf,
}

impl Kubelet {
    async fn connect(ctd: &Containerd) -> Kubelet {
        let socket = ctd.socket();
        let channel = tonic::transport::Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(socket).await?,
                    ))
                }
            }))
            .await
            .expect("connect to containerd's CRI socket");
        let logs = ctd.dir.path().join("pods");
        std::fs::create_dir_all(&logs).unwrap();
        Kubelet {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            logs,
        }
    }

    /// A host-network pod's config, with `annotations`.
    fn pod(&self, name: &str, annotations: &[(&str, &str)]) -> PodSandboxConfig {
        let mut config = self.networked_pod(name);
        config.annotations = owned(annotations);
        config.linux = Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        config
    }

    /// A pod with a network of its own (CNI) and a hostname.
    fn networked_pod(&self, name: &str) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: self.logs.join(name).to_string_lossy().into_owned(),
            ..Default::default()
        }
    }

    /// RunPodSandbox with the `wedge` runtime handler; returns the sandbox id.
    async fn run_pod(&mut self, config: &PodSandboxConfig) -> String {
        let response = self
            .runtime
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: "wedge".into(),
            })
            .await
            .expect("RunPodSandbox");
        response.into_inner().pod_sandbox_id
    }

    /// PodSandboxStatus.
    async fn pod_status(&mut self, pod: &str) -> PodSandboxStatus {
        self.runtime
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: pod.into(),
                verbose: false,
            })
            .await
            .expect("PodSandboxStatus")
            .into_inner()
            .status
            .expect("a status")
    }

    /// CreateContainer, then StartContainer; returns the container id.
    async fn start(
        &mut self,
        pod: &str,
        sandbox: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> String {
        let id = self
            .create(pod, sandbox, config)
            .await
            .expect("CreateContainer");
        self.runtime
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("StartContainer");
        id
    }

    async fn create(
        &mut self,
        pod: &str,
        sandbox: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> Result<String, tonic::Status> {
        let response = self
            .runtime
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(config),
                sandbox_config: Some(sandbox.clone()),
            })
            .await?;
        Ok(response.into_inner().container_id)
    }

    async fn status(&mut self, id: &str) -> ContainerStatus {
        self.runtime
            .container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("a status")
    }

    /// Polls ContainerStatus until the container has exited.
    async fn exited(&mut self, id: &str) -> ContainerStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.status(id).await;
            if status.state == ContainerState::ContainerExited as i32 {
                return status;
            }
            assert!(Instant::now() < deadline, "never exited: {status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// StartContainer of a new container, then ContainerStatus until it has exited.
    async fn run_to_exit(
        &mut self,
        pod: &str,
        sandbox: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> ContainerStatus {
        let id = self.start(pod, sandbox, config).await;
        self.exited(&id).await
    }

    /// CreateContainer, then a StartContainer that must fail (where the shim reads
    /// the spec); removes the container and returns the error.
    async fn start_error(
        &mut self,
        pod: &str,
        sandbox: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> tonic::Status {
        let id = self
            .create(pod, sandbox, config)
            .await
            .expect("CreateContainer");
        let error = self
            .runtime
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect_err("StartContainer should fail");
        self.runtime
            .remove_container(RemoveContainerRequest { container_id: id })
            .await
            .expect("RemoveContainer");
        error
    }

    /// StopContainer with a grace period of `timeout` seconds.
    async fn stop(&mut self, id: &str, timeout: i64) {
        self.runtime
            .stop_container(StopContainerRequest {
                container_id: id.into(),
                timeout,
            })
            .await
            .expect("StopContainer");
    }

    /// The container's log file (CRI format) as `(stream, line)` pairs.
    fn log(&self, pod: &str, container: &str) -> Vec<(String, String)> {
        let path = self.logs.join(pod).join(format!("{container}.log"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("`{}`: {e}", path.display()));
        text.lines()
            .map(|line| {
                // `<RFC 3339 time> <stdout|stderr> <F|P> <text>`
                let mut fields = line.splitn(4, ' ');
                let time = fields.next().unwrap_or_default();
                assert!(time.contains('T'), "not a CRI log line: {line}");
                let stream = fields.next().unwrap_or_default().to_string();
                let tag = fields.next().unwrap_or_default();
                assert!(tag == "F" || tag == "P", "not a CRI log line: {line}");
                (stream, fields.next().unwrap_or_default().to_string())
            })
            .collect()
    }

    /// The container's log file's text so far (empty until it exists).
    fn log_text(&self, pod: &str, container: &str) -> String {
        std::fs::read_to_string(self.logs.join(pod).join(format!("{container}.log")))
            .unwrap_or_default()
    }

    /// StopPodSandbox and RemovePodSandbox.
    async fn remove_pod(&mut self, pod: &str) {
        self.runtime
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .expect("StopPodSandbox");
        self.runtime
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .expect("RemovePodSandbox");
    }
}

/// A container's config: `image`, `args` after its entrypoint, `env`, its log file
/// `<name>.log`.
fn container(name: &str, image: &str, args: &[&str], env: &[(&str, &str)]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        args: args.iter().map(|a| a.to_string()).collect(),
        envs: env
            .iter()
            .map(|(key, value)| KeyValue {
                key: key.to_string(),
                value: value.to_string(),
            })
            .collect(),
        log_path: format!("{name}.log"),
        ..Default::default()
    }
}

/// `config` with the `wedge.io/grants` annotation `grants`.
fn granted(mut config: ContainerConfig, grants: &str) -> ContainerConfig {
    config.annotations = owned(&[("wedge.io/grants", grants)]);
    config
}

fn owned(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits until the shim processes of `ctd` are gone (a pod's shim exits once its
/// sandbox is removed).
fn wait_no_shims(ctd: &Containerd) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ctd.shims().is_empty() {
        assert!(
            Instant::now() < deadline,
            "shims left behind: {:?}",
            ctd.shims()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_pod_runs_through_the_cri_api_as_the_kubelet_drives_it() {
    let ctd = Containerd::start_with_cri();
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/args:1", p1::ARGS_ENV);
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/exit42:1", p1::EXIT42);
    runtime().block_on(async {
        let mut kubelet = Kubelet::connect(&ctd).await;
        let version = kubelet
            .runtime
            .version(VersionRequest::default())
            .await
            .expect("Version")
            .into_inner();
        assert_eq!(version.runtime_name, "containerd");
        let image = kubelet
            .images
            .image_status(ImageStatusRequest {
                image: Some(ImageSpec {
                    image: "localhost/wedge-test/args:1".into(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .expect("ImageStatus")
            .into_inner();
        assert!(image.image.is_some(), "the imported image is not visible");

        let config = kubelet.pod("hello", &[]);
        let pod = kubelet.run_pod(&config).await;
        let sandbox = kubelet.pod_status(&pod).await;
        assert_eq!(sandbox.state, PodSandboxState::SandboxReady as i32);
        assert_eq!(sandbox.runtime_handler, "wedge");

        let args = container(
            "args",
            "localhost/wedge-test/args:1",
            &["one", "--two"],
            &[("LOG", "debug")],
        );
        let status = kubelet.run_to_exit(&pod, &config, args).await;
        assert_eq!(status.exit_code, 0, "{status:?}");
        assert_eq!(status.reason, "Completed");
        let log = kubelet.log("hello", "args");
        for line in ARGS_ENV_LINES {
            assert!(
                log.iter().any(|(s, l)| s == "stdout" && l == line),
                "no `{line}` in {log:?}"
            );
        }

        let exit = container("exit42", "localhost/wedge-test/exit42:1", &[], &[]);
        let id = kubelet.start(&pod, &config, exit).await;
        let status = kubelet.exited(&id).await;
        assert_eq!(status.exit_code, 42, "{status:?}");
        assert_eq!(status.reason, "Error");
        kubelet
            .runtime
            .remove_container(RemoveContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("RemoveContainer");
        kubelet.remove_pod(&pod).await;
    });
    assert_eq!(
        ctd.ctr(&["--namespace", CRI_NAMESPACE, "task", "ls", "-q"])
            .stdout
            .trim(),
        "",
        "tasks left behind"
    );
    wait_no_shims(&ctd);
}

#[test]
fn a_pod_gets_its_mounts_memory_limit_and_annotated_grants() {
    let ctd = Containerd::start_with_cri();
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/files:1", p1::FILES);
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/memhog:1", p1::MEMHOG);
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/spin:1", p1::SPIN);
    let data = ctd.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("note.txt"), "from a volume").unwrap();
    runtime().block_on(async {
        let mut kubelet = Kubelet::connect(&ctd).await;
        // A pod annotation reaches every container of the pod.
        let config = kubelet.pod(
            "grants",
            &[("wedge.io/grants", r#"{"limits": {"fuel": 50000000}}"#)],
        );
        let pod = kubelet.run_pod(&config).await;

        let mount = |readonly| Mount {
            container_path: "/data".into(),
            host_path: data.to_string_lossy().into_owned(),
            readonly,
            ..Default::default()
        };
        let mut read = container(
            "read",
            "localhost/wedge-test/files:1",
            &["read", "/data/note.txt"],
            &[],
        );
        read.mounts = vec![mount(true)];
        assert_eq!(kubelet.run_to_exit(&pod, &config, read).await.exit_code, 0);
        let log = kubelet.log("grants", "read");
        assert!(
            log.iter().any(|(_, l)| l.contains("from a volume")),
            "{log:?}"
        );

        let mut write = container(
            "write",
            "localhost/wedge-test/files:1",
            &["write", "/data/new.txt", "x"],
            &[],
        );
        write.mounts = vec![mount(true)];
        assert_eq!(kubelet.run_to_exit(&pod, &config, write).await.exit_code, 1);
        assert!(
            !data.join("new.txt").exists(),
            "wrote through a read-only mount"
        );

        // The memory limit holds the whole container: linear memory traps below it.
        // CPU limits (half a core) go to the container's cgroup too.
        let mut memhog = container("memhog", "localhost/wedge-test/memhog:1", &[], &[]);
        memhog.linux = Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                cpu_period: 100_000,
                cpu_quota: 50_000,
                cpu_shares: 512,
                ..Default::default()
            }),
            ..Default::default()
        });
        let status = kubelet.run_to_exit(&pod, &config, memhog).await;
        assert_eq!(status.exit_code, 134, "{status:?}");
        let log = kubelet.log("grants", "memhog");
        assert!(
            log.iter().any(|(s, l)| s == "stderr"
                && l.contains("guest trapped after reaching its memory limit")),
            "{log:?}"
        );

        // The pod's fuel budget (annotation) ends a spinning guest.
        let spin = container("spin", "localhost/wedge-test/spin:1", &[], &[]);
        let status = kubelet.run_to_exit(&pod, &config, spin).await;
        assert_eq!(status.exit_code, 124, "{status:?}");
        let log = kubelet.log("grants", "spin");
        assert!(
            log.iter().any(|(_, l)| l.contains("fuel exhausted")),
            "{log:?}"
        );
        kubelet.remove_pod(&pod).await;
    });
    wait_no_shims(&ctd);
}

#[test]
fn stop_container_asks_the_app_to_stop_and_a_stubborn_one_is_killed() {
    let ctd = Containerd::start_with_cri();
    ctd.import_wasm_into(
        CRI_NAMESPACE,
        "localhost/wedge-test/graceful:1",
        p1::GRACEFUL,
    );
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/sleep:1", p1::SLEEP);
    runtime().block_on(async {
        let mut kubelet = Kubelet::connect(&ctd).await;
        let config = kubelet.pod("stop", &[]);
        let pod = kubelet.run_pod(&config).await;
        let mut graceful = container("graceful", "localhost/wedge-test/graceful:1", &[], &[]);
        graceful.linux = Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_period: 100_000,
                cpu_quota: 50_000,
                ..Default::default()
            }),
            ..Default::default()
        });
        let id = kubelet.start(&pod, &config, graceful).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !kubelet.log_text("stop", "graceful").contains("working 1") {
            assert!(Instant::now() < deadline, "the app never worked");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            kubelet.status(&id).await.state,
            ContainerState::ContainerRunning as i32
        );
        // The kubelet's accounting sees the container's own cgroup.
        let stats = kubelet
            .runtime
            .container_stats(ContainerStatsRequest {
                container_id: id.clone(),
            })
            .await
            .expect("ContainerStats")
            .into_inner()
            .stats
            .expect("stats");
        let memory = stats
            .memory
            .and_then(|m| m.working_set_bytes)
            .map_or(0, |v| v.value);
        assert!(memory > 1 << 20, "working set {memory} bytes: {stats:?}");
        // Its CPU limit (half a core) is its cgroup's (v1 or v2).
        let quota = [
            format!("/sys/fs/cgroup/cpu/k8s.io/{id}/cpu.cfs_quota_us"),
            format!("/sys/fs/cgroup/k8s.io/{id}/cpu.max"),
        ]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .expect("the container's cgroup");
        assert!(quota.trim().starts_with("50000"), "{quota}");
        kubelet.stop(&id, 30).await;
        let status = kubelet.exited(&id).await;
        assert_eq!(status.exit_code, 0, "{status:?}");
        assert!(
            kubelet
                .log_text("stop", "graceful")
                .contains("stopping after")
        );

        // An app that does not stop is killed when the grace period ends.
        let sleeper = container("sleeper", "localhost/wedge-test/sleep:1", &["3600"], &[]);
        let id = kubelet.start(&pod, &config, sleeper).await;
        kubelet.stop(&id, 1).await;
        let status = kubelet.exited(&id).await;
        assert!(
            status.exit_code == 137 || status.exit_code == 143,
            "{status:?}"
        );
        kubelet.remove_pod(&pod).await;
    });
    wait_no_shims(&ctd);
}

#[test]
fn a_hostile_annotation_fails_the_container_with_a_clear_reason() {
    let ctd = Containerd::start_with_cri();
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/files:1", p1::FILES);
    runtime().block_on(async {
        let mut kubelet = Kubelet::connect(&ctd).await;
        let config = kubelet.pod("hostile", &[]);
        let pod = kubelet.run_pod(&config).await;
        for (grants, reason) in [
            (
                r#"{"volumes": ["/:/host:rw"]}"#,
                "`volumes` name host paths",
            ),
            (r#"{"env": ["HOME"]}"#, "would take the node's environment"),
            (r#"{"limits": {"memory": "lots"}}"#, "wedge.io/grants"),
            ("not json", "wedge.io/grants"),
        ] {
            let mut files = container(
                "files",
                "localhost/wedge-test/files:1",
                &["ls", "/host"],
                &[],
            );
            files.annotations = owned(&[("wedge.io/grants", grants)]);
            // CRI creates the task, where the shim reads the spec, at StartContainer.
            let error = kubelet.start_error(&pod, &config, files).await;
            assert!(
                error.message().contains(reason)
                    && error.message().contains("annotation `wedge.io/grants`"),
                "{grants}: {}",
                error.message()
            );
        }
        kubelet.remove_pod(&pod).await;
    });
    wait_no_shims(&ctd);
}

/// `GET path` over HTTP/1.0 on a new connection: status and body, or `None` while
/// nothing listens.
fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    // HTTP/1.0: the whole body, not chunked, then the server closes.
    let request = format!("GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n");
    tcp.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    tcp.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// The first answer to `GET /env?GREETING` at `addr`, polling while nothing listens
/// there yet (a minute at most; then the failure shows the `(pod, container)` log).
async fn first_reply(
    kubelet: &Kubelet,
    addr: std::net::SocketAddr,
    (pod, name): (&str, &str),
) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(reply) = tokio::task::spawn_blocking(move || http_get(addr, "/env?GREETING"))
            .await
            .unwrap()
        {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "never served on {addr}: {}",
            kubelet.log_text(pod, name)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `wasi:http/proxy` component is served on the container's listen address
/// (annotation `wedge.io/listen`) with the pod's environment, a fresh instance per
/// request; StopContainer drains it and it exits 0.
#[test]
fn an_http_component_serves_on_the_pods_port() {
    let ctd = Containerd::start_with_cri();
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/probe:1", http::PROBE);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    runtime().block_on(async {
        let mut kubelet = Kubelet::connect(&ctd).await;
        let config = kubelet.pod("web", &[]);
        let pod = kubelet.run_pod(&config).await;
        let mut web = container(
            "web",
            "localhost/wedge-test/probe:1",
            &[],
            &[("GREETING", "hi from the pod")],
        );
        let listen = addr.to_string();
        web.annotations = owned(&[("wedge.io/listen", &listen)]);
        let id = kubelet.start(&pod, &config, web).await;
        let reply = first_reply(&kubelet, addr, ("web", "web")).await;
        assert_eq!(reply, (200, "hi from the pod".to_string()));
        for _ in 0..3 {
            let counter = tokio::task::spawn_blocking(move || http_get(addr, "/counter"))
                .await
                .unwrap();
            assert_eq!(counter, Some((200, "count 1\n".to_string())));
        }
        kubelet.stop(&id, 30).await;
        assert_eq!(kubelet.exited(&id).await.exit_code, 0);
        assert!(
            kubelet
                .log_text("web", "web")
                .contains("serving on http://"),
            "{}",
            kubelet.log_text("web", "web")
        );
        kubelet.remove_pod(&pod).await;
    });
    wait_no_shims(&ctd);
}

/// What `wedge build --for containerd` makes and `wedge push` pushes, the kubelet
/// pulls (PullImage from a real registry) and runs through the shim; wedge itself
/// says clearly that this form is containerd's.
#[test]
fn an_app_built_and_pushed_by_wedge_is_pulled_and_run_by_the_kubelet() {
    let env = Env::new();
    let registry = TestRegistry::start(None);
    let app = app_folder(&env, p1::ARGS_ENV, "args", "");
    let reference = format!("{}/wedge-test/args:1", registry.host);
    env.wedge(&[
        "build",
        "--for",
        "containerd",
        "-t",
        &reference,
        app.to_str().unwrap(),
    ])
    .expect_code(0);
    env.wedge(&["push", &reference]).expect_code(0);
    let images = env.wedge(&["images"]);
    assert!(
        images.stdout.contains("wasip1 (containerd)"),
        "{}",
        images.stdout
    );
    let run = env.wedge(&["run", &reference]);
    assert_ne!(run.code, 0);
    run.expect_one_line_error("the container form for containerd");

    let ctd = Containerd::start_with_cri();
    ctd.allow_plain_http(&registry.host);
    runtime().block_on(async {
        let mut kubelet = Kubelet::connect(&ctd).await;
        kubelet
            .images
            .pull_image(PullImageRequest {
                image: Some(ImageSpec {
                    image: reference.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("PullImage");
        let config = kubelet.pod("pulled", &[]);
        let pod = kubelet.run_pod(&config).await;
        let args = container("args", &reference, &["from", "the registry"], &[]);
        let status = kubelet.run_to_exit(&pod, &config, args).await;
        assert_eq!(status.exit_code, 0, "{status:?}");
        let log = kubelet.log("pulled", "args");
        for line in ["arg[0]=/app.wasm", "arg[1]=from", "arg[2]=the registry"] {
            assert!(log.iter().any(|(_, l)| l == line), "no `{line}` in {log:?}");
        }
        kubelet.remove_pod(&pod).await;
    });
    wait_no_shims(&ctd);
}

/// Key-value and WASI-NN grants from the pod's annotation: the store is the node's
/// (one SQLite file under the shim's root), every namespace is scoped by the pod's
/// Kubernetes namespace, and models are files the container sees (a mounted volume
/// here), never the node's paths.
#[test]
fn keyvalue_and_nn_grants_come_from_annotations_inside_the_pods_namespace() {
    let ctd = Containerd::start_with_cri();
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/kv:1", edge::KV);
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/nn:1", p1::NN);
    let models_dir = std::path::Path::new(models::CLASSIFIER).parent().unwrap();
    runtime().block_on(async {
        let mut kubelet = Kubelet::connect(&ctd).await;
        let config = kubelet.pod("data", &[]);
        let pod = kubelet.run_pod(&config).await;
        let shared = r#"{"keyvalue": {"namespace": "shared"}}"#;
        let mut runs = Vec::new();
        for (name, args, grants) in [
            ("writer", vec!["set", "greeting", "hi"], shared),
            ("reader", vec!["get", "greeting"], shared),
            ("own", vec!["get", "greeting"], r#"{"keyvalue": {}}"#),
        ] {
            let mut kv = container(name, "localhost/wedge-test/kv:1", &args, &[]);
            kv.annotations = owned(&[("wedge.io/grants", grants)]);
            assert_eq!(
                kubelet.run_to_exit(&pod, &config, kv).await.exit_code,
                0,
                "{name}"
            );
            runs.push(kubelet.log_text("data", name));
        }
        assert!(runs[1].contains("stdout F hi"), "{}", runs[1]);
        assert!(runs[2].contains("(none)"), "{}", runs[2]);

        let mount = Mount {
            container_path: "/models".into(),
            host_path: models_dir.to_string_lossy().into_owned(),
            readonly: true,
            ..Default::default()
        };
        let mut nn = container(
            "nn",
            "localhost/wedge-test/nn:1",
            &["classify", "mnist"],
            &[],
        );
        nn.mounts = vec![mount.clone()];
        nn.annotations = owned(&[(
            "wedge.io/grants",
            r#"{"nn": {"models": ["mnist=/models/classifier.onnx"]}}"#,
        )]);
        assert_eq!(kubelet.run_to_exit(&pod, &config, nn).await.exit_code, 0);
        assert!(kubelet.log_text("data", "nn").contains("class 1"));

        // A model path out of the volume, or a node path, is not the container's.
        for (name, model) in [
            ("climb", "m=/models/../../../../../../etc/passwd"),
            ("node", &*format!("m={}", models::CLASSIFIER)),
        ] {
            let mut nn = container(name, "localhost/wedge-test/nn:1", &["classify", "m"], &[]);
            nn.mounts = vec![mount.clone()];
            let grants = format!(r#"{{"nn": {{"models": ["{model}"]}}}}"#);
            nn.annotations = owned(&[("wedge.io/grants", &grants)]);
            let error = kubelet.start_error(&pod, &config, nn).await;
            assert!(
                error.message().contains("is not in the container"),
                "{model}: {}",
                error.message()
            );
        }
        kubelet.remove_pod(&pod).await;
    });
    // The node's store holds the data under the pod's Kubernetes namespace.
    let db = rusqlite::Connection::open(ctd.dir.path().join("shim/keyvalue.db")).unwrap();
    let namespaces: Vec<String> = db
        .prepare("SELECT DISTINCT ns FROM kv")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(namespaces, ["default.shared"]);
    wait_no_shims(&ctd);
}

/// Messaging between pods goes through the node's MQTT broker (`WEDGE_SHIM_MQTT` in
/// containerd's environment), within each container's topic grants; without a broker,
/// a messaging grant fails the container with the reason.
#[test]
fn pods_exchange_messages_through_the_nodes_broker() {
    let env = Env::new();
    let broker = Mosquitto::start(&env);
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let ctd = Containerd::start_with_cri_env(&[("WEDGE_SHIM_MQTT", &url)]);
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/msg:1", edge::MSG);
    runtime().block_on(async {
        let mut kubelet = Kubelet::connect(&ctd).await;
        let reader = kubelet.pod("reader", &[]);
        let reader_pod = kubelet.run_pod(&reader).await;
        let sub = granted(
            container(
                "sub",
                "localhost/wedge-test/msg:1",
                &["sub", "sensors/#", "1", "60000"],
                &[],
            ),
            r#"{"messaging": {"subscribe": ["sensors/#"]}}"#,
        );
        let sub_id = kubelet.start(&reader_pod, &reader, sub).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !kubelet.log_text("reader", "sub").contains("ready") {
            assert!(Instant::now() < deadline, "the subscriber never got ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // On the broker, the pods' topics are under their Kubernetes namespace.
        let outside = std::process::Command::new("mosquitto_sub")
            .args(&broker.client)
            .args(["-t", "default/sensors/#", "-v", "-C", "1", "-W", "60"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("mosquitto_sub");
        let writer = kubelet.pod("writer", &[]);
        let writer_pod = kubelet.run_pod(&writer).await;
        // Published until received: the bridge mirrors the subscription to the broker
        // within a moment of the app subscribing.
        let mut attempt = 0;
        while kubelet.status(&sub_id).await.state != ContainerState::ContainerExited as i32 {
            assert!(Instant::now() < deadline, "the message never arrived");
            let name = format!("pub{attempt}");
            attempt += 1;
            let publish = granted(
                container(
                    &name,
                    "localhost/wedge-test/msg:1",
                    &["pub", "sensors/t1", "21.5"],
                    &[],
                ),
                r#"{"messaging": {"publish": ["sensors/+"]}}"#,
            );
            assert_eq!(
                kubelet
                    .run_to_exit(&writer_pod, &writer, publish)
                    .await
                    .exit_code,
                0,
                "{name}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_eq!(kubelet.exited(&sub_id).await.exit_code, 0);
        let seen = outside.wait_with_output().expect("mosquitto_sub");
        assert_eq!(
            String::from_utf8_lossy(&seen.stdout).trim(),
            "default/sensors/t1 21.5"
        );
        assert!(
            kubelet
                .log_text("reader", "sub")
                .contains("sensors/t1 21.5"),
            "{}",
            kubelet.log_text("reader", "sub")
        );
        // Outside its grant, a publish is refused.
        let stray = granted(
            container(
                "stray",
                "localhost/wedge-test/msg:1",
                &["pub", "alerts/x", "1"],
                &[],
            ),
            r#"{"messaging": {"publish": ["sensors/+"]}}"#,
        );
        assert_eq!(
            kubelet
                .run_to_exit(&writer_pod, &writer, stray)
                .await
                .exit_code,
            1
        );
        kubelet.remove_pod(&writer_pod).await;
        kubelet.remove_pod(&reader_pod).await;
    });
    wait_no_shims(&ctd);
    drop(ctd);

    // A node without a broker refuses messaging grants with the reason.
    let ctd = Containerd::start_with_cri();
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/msg:1", edge::MSG);
    runtime().block_on(async {
        let mut kubelet = Kubelet::connect(&ctd).await;
        let config = kubelet.pod("lonely", &[]);
        let pod = kubelet.run_pod(&config).await;
        let publish = granted(
            container(
                "pub",
                "localhost/wedge-test/msg:1",
                &["pub", "sensors/t1", "1"],
                &[],
            ),
            r#"{"messaging": {"publish": ["sensors/+"]}}"#,
        );
        let error = kubelet.start_error(&pod, &config, publish).await;
        assert!(
            error.message().contains("WEDGE_SHIM_MQTT"),
            "{}",
            error.message()
        );
        kubelet.remove_pod(&pod).await;
    });
}

/// A pod with a network of its own (Debian's CNI bridge plugin): the sandbox holds the
/// pod's network namespace, the HTTP component listens in it on the default
/// `0.0.0.0:8080`, and the node reaches it at the pod's IP, not on its own loopback.
#[test]
fn an_http_component_serves_on_the_pod_network() {
    // A bridge and subnet of this test run's own.
    let tag = std::process::id() % 200 + 20;
    let ctd = Containerd::start_with_pod_network(
        &format!("wedgetest{tag}"),
        &format!("10.213.{tag}.0/24"),
    );
    ctd.import_wasm_into(CRI_NAMESPACE, "localhost/wedge-test/probe:1", http::PROBE);
    runtime().block_on(async {
        let mut kubelet = Kubelet::connect(&ctd).await;
        let config = kubelet.networked_pod("netpod");
        let pod = kubelet.run_pod(&config).await;
        let status = kubelet.pod_status(&pod).await;
        let ip: std::net::IpAddr = status
            .network
            .expect("a pod network")
            .ip
            .parse()
            .expect("a pod IP");
        assert!(
            ip.to_string().starts_with(&format!("10.213.{tag}.")),
            "{ip}"
        );
        let web = container(
            "web",
            "localhost/wedge-test/probe:1",
            &[],
            &[("GREETING", "hi from the pod network")],
        );
        let id = kubelet.start(&pod, &config, web).await;
        let addr = std::net::SocketAddr::new(ip, 8080);
        let reply = first_reply(&kubelet, addr, ("netpod", "web")).await;
        assert_eq!(reply, (200, "hi from the pod network".to_string()));
        // The node's own loopback is not the pod's.
        let local = tokio::task::spawn_blocking(|| {
            http_get("127.0.0.1:8080".parse().unwrap(), "/env?GREETING")
        })
        .await
        .unwrap();
        assert_ne!(local, Some(reply), "the pod listened in the node's network");
        kubelet.stop(&id, 30).await;
        assert_eq!(kubelet.exited(&id).await.exit_code, 0);
        kubelet.remove_pod(&pod).await;
    });
    wait_no_shims(&ctd);
}
