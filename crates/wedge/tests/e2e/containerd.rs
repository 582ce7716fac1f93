//! `containerd-shim-wedge-v1` under a real containerd (Debian's package, started here
//! under a temporary root, state and socket, the shim on its `PATH`), driven by `ctr`
//! as an operator would: images imported from OCI image-layout tars whose filesystem
//! layer holds the `.wasm` (what every containerd runs), `ctr run` with arguments,
//! environment, mounts and a memory limit, exit codes, kill and delete.

use crate::common::containerd::{ARGS_ENV_LINES, Containerd, Entry, RUNTIME};
use crate::common::{Env, app_folder, assert_stopped_at_cap};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use wedge_test_programs::p1;

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
    for line in ARGS_ENV_LINES {
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

/// The container's memory limit is its cgroup's (the kernel enforces it on the
/// whole process) and, less what the runtime holds, the cap on linear memory: a
/// guest that keeps allocating traps on the cap, never meets the OOM killer.
#[test]
fn the_memory_limit_caps_linear_memory() {
    let ctd = Containerd::start();
    ctd.import_wasm("localhost/wedge-test/memhog:1", p1::MEMHOG);
    let run = ctd.run(
        &["--memory-limit", &(64u64 << 20).to_string()],
        "localhost/wedge-test/memhog:1",
        "memhog",
        &[],
    );
    assert_stopped_at_cap(
        &run,
        16,
        64,
        "guest trapped after reaching its memory limit of",
    );
}

#[test]
fn kill_stops_a_running_container_and_delete_removes_it() {
    let ctd = Containerd::start();
    ctd.import_wasm("localhost/wedge-test/sleep:1", p1::SLEEP);
    let pid = ctd.run_detached("localhost/wedge-test/sleep:1", "sleeper");
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

/// The media type of a component layer in runwasi's images.
const COMPONENT_LAYER: &str = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";

/// An image whose app is a raw Wasm layer (runwasi's form, reached through a nested
/// index as after a registry pull) runs from the layer the shim reads out of
/// containerd's content store, kept by its digest for the next container.
#[test]
fn an_image_with_a_wasm_layer_runs_from_containerds_content_store() {
    let ctd = Containerd::start();
    let wasm = std::fs::read(p1::ARGS_ENV).unwrap();
    let image = "localhost/wedge-test/layer:1";
    ctd.import_wasm_layers(image, &[(COMPONENT_LAYER, &wasm)]);
    for id in ["layer-1", "layer-2"] {
        let run = ctd.run_unpacked(image, id, &["/app.wasm", "one", "--two"]);
        run.expect_code(0);
        for line in &ARGS_ENV_LINES[..4] {
            assert!(
                run.stdout.lines().any(|l| l == *line),
                "no `{line}` in {}",
                run.stdout
            );
        }
    }
    let kept = ctd
        .dir
        .path()
        .join("shim/layers")
        .join(format!("{}.wasm", hex(&Sha256::digest(&wasm))));
    assert_eq!(std::fs::read(&kept).unwrap(), wasm);
    assert_eq!(ctd.ctr(&["task", "ls", "-q"]).stdout.trim(), "");
}

/// What the shim reads from containerd's content store is checked: a Wasm layer whose
/// bytes no longer match its digest is refused, as is an image of two Wasm layers.
#[test]
fn a_tampered_or_ambiguous_wasm_layer_is_refused() {
    let ctd = Containerd::start();
    let wasm = std::fs::read(p1::HELLO).unwrap();
    ctd.import_wasm_layers(
        "localhost/wedge-test/two:1",
        &[
            ("application/wasm", &wasm),
            (COMPONENT_LAYER, &wasm[..wasm.len() - 1]),
        ],
    );
    let run = ctd.run_unpacked("localhost/wedge-test/two:1", "two", &["/app.wasm"]);
    assert_eq!(run.code, -1);
    assert!(run.stderr.contains("several Wasm layers"), "{}", run.stderr);
    ctd.import_wasm_layers(
        "localhost/wedge-test/tampered:1",
        &[(COMPONENT_LAYER, &wasm)],
    );
    let blob = ctd
        .dir
        .path()
        .join("root/io.containerd.content.v1.content/blobs/sha256")
        .join(hex(&Sha256::digest(&wasm)));
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let run = ctd.run_unpacked(
        "localhost/wedge-test/tampered:1",
        "tampered",
        &["/app.wasm"],
    );
    assert_eq!(run.code, -1);
    assert!(
        run.stderr.contains("does not match its digest"),
        "{}",
        run.stderr
    );
    assert!(!ctd.dir.path().join("shim/layers").exists());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An entrypoint that is a symbolic link out of the image (absolute, or climbing
/// with `..`) is refused, never followed to the node's files.
#[test]
fn a_symlinked_entrypoint_cannot_leave_the_image() {
    let ctd = Containerd::start();
    let wasm = std::fs::read(p1::HELLO).unwrap();
    for (name, target) in [
        ("absolute", "/etc/passwd"),
        ("climbing", "../../../../../../../../etc/passwd"),
    ] {
        let image = format!("localhost/wedge-test/{name}:1");
        ctd.import(
            "default",
            &image,
            ("wasip1", "wasm"),
            "/app.wasm",
            &[
                ("hello.wasm", Entry::File(&wasm)),
                ("app.wasm", Entry::Symlink(target)),
            ],
        );
        let run = ctd.run(&[], &image, name, &[]);
        assert_ne!(run.code, 0, "{name}: {}", run.stdout);
        // Resolved inside the image, both name its own (missing) `/etc/passwd`.
        assert!(
            run.stderr.contains("`/app.wasm` is not in the image"),
            "{name}: {}",
            run.stderr
        );
    }
    // Links inside the image are followed, absolute ones from the image's root.
    for (name, target) in [("relative", "hello.wasm"), ("rooted", "/hello.wasm")] {
        let image = format!("localhost/wedge-test/{name}:1");
        ctd.import(
            "default",
            &image,
            ("wasip1", "wasm"),
            "/app.wasm",
            &[
                ("hello.wasm", Entry::File(&wasm)),
                ("app.wasm", Entry::Symlink(target)),
            ],
        );
        ctd.run(&[], &image, name, &[]).expect_code(0);
    }
}

/// The air-gapped path: `wedge build --for containerd`, `wedge save`, then
/// `ctr image import` on the node; the app runs with its arguments.
#[test]
fn an_app_built_and_saved_by_wedge_is_imported_by_ctr() {
    let env = Env::new();
    let app = app_folder(&env, p1::ARGS_ENV, "args", "");
    let reference = "registry.example/team/args:1.0";
    env.wedge(&[
        "build",
        "--for",
        "containerd",
        "-t",
        reference,
        app.to_str().unwrap(),
    ])
    .expect_code(0);
    let archive = env.path("args.tar");
    env.wedge(&["save", "-o", archive.to_str().unwrap(), reference])
        .expect_code(0);
    let ctd = Containerd::start();
    ctd.ctr(&[
        "image",
        "import",
        "--all-platforms",
        archive.to_str().unwrap(),
    ])
    .expect_code(0);
    let images = ctd.ctr(&["image", "ls", "-q"]).stdout;
    assert!(images.lines().any(|l| l == reference), "{images}");
    let run = ctd.run(
        &[],
        reference,
        "saved",
        &["/app.wasm", "from", "wedge save"],
    );
    run.expect_code(0);
    assert!(
        run.stdout.lines().any(|l| l == "arg[2]=wedge save"),
        "{}",
        run.stdout
    );
}

/// A shim killed with SIGKILL leaves containerd consistent: containerd sees the task
/// end, its clean-up (`delete`) ends the container's process and unmounts its root
/// filesystem, and the container can be deleted.
#[test]
fn a_killed_shim_leaves_containerd_consistent() {
    let ctd = Containerd::start();
    ctd.import_wasm("localhost/wedge-test/sleep:1", p1::SLEEP);
    let app = ctd.run_detached("localhost/wedge-test/sleep:1", "orphan");
    let shims: Vec<i32> = ctd.shims().into_iter().filter(|pid| *pid != app).collect();
    assert_eq!(shims.len(), 1, "one shim serves the container: {shims:?}");
    // SAFETY: a plain signal to this test's shim process.
    unsafe { libc::kill(shims[0], libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Path::new(&format!("/proc/{app}/exe")).exists() {
        assert!(
            Instant::now() < deadline,
            "the app's process {app} outlived its shim"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    while ctd.ctr(&["task", "ls", "-q"]).stdout.contains("orphan") {
        // containerd reports the task stopped; deleting it is the client's part.
        let _ = ctd.ctr(&["task", "delete", "orphan"]);
        assert!(Instant::now() < deadline, "the task never went away");
        std::thread::sleep(Duration::from_millis(50));
    }
    ctd.ctr(&["container", "delete", "orphan"]).expect_code(0);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = ctd.dir.path().to_string_lossy().into_owned();
    assert!(
        !mounts.lines().any(|l| l.contains(&root)),
        "a root filesystem is still mounted: {mounts}"
    );
}
