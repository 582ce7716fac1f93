//! containerd's own gRPC API, for what `ctr` 1.6.20 cannot do: run a container of an
//! image whose layers are Wasm (which this containerd stores but will not unpack) the
//! way containerd 1.6.25+/1.7.7+ does after pulling one: on an empty snapshot, the
//! container record naming the image, the wedge runtime.

use super::containerd::{Containerd, RUNTIME};
use crate::common::Run;
use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{PrepareSnapshotRequest, RemoveSnapshotRequest};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, StartRequest, WaitRequest,
};
use containerd_client::tonic::Request;
use containerd_client::with_namespace;

const NAMESPACE: &str = "default";
const SNAPSHOTTER: &str = "overlayfs";
/// The type containerd gives a container's OCI runtime spec.
const SPEC_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

impl Containerd {
    /// Runs `image` as container `id` (on an empty root filesystem, in the `default`
    /// namespace, with `args` and the environment `GREETING=hello`) to its end, then
    /// deletes it. A task that cannot be created is exit code -1 with containerd's
    /// reason on stderr.
    pub fn run_unpacked(&self, image: &str, id: &str, args: &[&str]) -> Run {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(self.run_unpacked_async(image, id, args))
    }

    async fn run_unpacked_async(&self, image: &str, id: &str, args: &[&str]) -> Run {
        let channel = containerd_client::connect(self.socket()).await.unwrap();
        let mut snapshots = SnapshotsClient::new(channel.clone());
        let mut containers = ContainersClient::new(channel.clone());
        let mut tasks = TasksClient::new(channel);
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": args, "cwd": "/", "env": ["GREETING=hello"],
                        "user": {"uid": 0, "gid": 0}},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "mount"}]},
        });
        let container = Container {
            id: id.into(),
            image: image.into(),
            runtime: Some(Runtime {
                name: RUNTIME.into(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE.into(),
                value: serde_json::to_vec(&spec).unwrap(),
            }),
            snapshotter: SNAPSHOTTER.into(),
            snapshot_key: id.into(),
            ..Default::default()
        };
        let create = CreateContainerRequest {
            container: Some(container),
        };
        containers
            .create(with_namespace!(create, NAMESPACE))
            .await
            .unwrap();
        // Prepared once the container refers to it, so no garbage collection takes it.
        let prepare = PrepareSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: id.into(),
            ..Default::default()
        };
        let mounts = snapshots
            .prepare(with_namespace!(prepare, NAMESPACE))
            .await
            .unwrap()
            .into_inner()
            .mounts;
        let out = self.dir.path().join(format!("{id}.stdout"));
        let err = self.dir.path().join(format!("{id}.stderr"));
        std::fs::write(&out, "").unwrap();
        std::fs::write(&err, "").unwrap();
        let create = CreateTaskRequest {
            container_id: id.into(),
            rootfs: mounts,
            stdout: out.display().to_string(),
            stderr: err.display().to_string(),
            ..Default::default()
        };
        let created = tasks.create(with_namespace!(create, NAMESPACE)).await;
        let code = match created {
            Ok(_) => {
                let start = StartRequest {
                    container_id: id.into(),
                    ..Default::default()
                };
                tasks
                    .start(with_namespace!(start, NAMESPACE))
                    .await
                    .unwrap();
                let wait = WaitRequest {
                    container_id: id.into(),
                    ..Default::default()
                };
                let status = tasks
                    .wait(with_namespace!(wait, NAMESPACE))
                    .await
                    .unwrap()
                    .into_inner()
                    .exit_status;
                let delete = DeleteTaskRequest {
                    container_id: id.into(),
                };
                tasks
                    .delete(with_namespace!(delete, NAMESPACE))
                    .await
                    .unwrap();
                status as i32
            }
            Err(status) => {
                std::fs::write(&err, status.message()).unwrap();
                -1
            }
        };
        let remove = RemoveSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: id.into(),
        };
        snapshots
            .remove(with_namespace!(remove, NAMESPACE))
            .await
            .unwrap();
        let delete = DeleteContainerRequest { id: id.into() };
        containers
            .delete(with_namespace!(delete, NAMESPACE))
            .await
            .unwrap();
        Run {
            code,
            stdout: std::fs::read_to_string(&out).unwrap(),
            stderr: std::fs::read_to_string(&err).unwrap(),
        }
    }
}
