//! `containerd-shim-wedge-v1`: runs Wasm containers for containerd (runtime type
//! `io.containerd.wedge.v1`, and Kubernetes through a `RuntimeClass`) on wedge's
//! runtime. containerd starts it with its shim v2 flags (`start`, `delete`, or
//! serving); the shim re-executes itself with a mode word for each container's own
//! process (see `process.rs`).

mod cgroup;
mod container;
mod error;
mod launch;
mod namespaces;
mod process;
mod service;
mod wasm_layer;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, bundle] = args.as_slice()
        && (mode == process::APP_MODE || mode == process::SANDBOX_MODE)
    {
        // Before any thread exists: the process joins the pod's namespaces.
        std::process::exit(process::main(mode, std::path::Path::new(bundle)));
    }
    if let [_, flag] = args.as_slice()
        && (flag == "-v" || flag == "--version")
    {
        println!("containerd-shim-wedge-v1 {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    if args.len() == 1 {
        eprintln!(
            "containerd-shim-wedge-v1: containerd runs this (runtime type \
             `io.containerd.wedge.v1`); see docs/kubernetes.md. `-v` prints the version."
        );
        std::process::exit(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("containerd-shim-wedge-v1: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(containerd_shim::asynchronous::run::<service::Service>(
        "io.containerd.wedge.v1",
        None,
    ));
}
