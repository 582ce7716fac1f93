//! Images in the local store: build from a wedge.toml, list, inspect, run (requested
//! grants are not granted unless asked), tag, rmi, prune, fsck, and refusal of images
//! that are not Wasm.

use crate::common::Env;
use wedge_image::{Digest, ImageStore};
use wedge_test_programs::{p1, p2};

const REF: &str = "localhost:5000/demo/args:1.0";

/// An app folder whose manifest requests env, a volume and network access.
fn app(env: &Env, wasm: &str) -> String {
    let dir = env.path("app");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy(wasm, dir.join("app.wasm")).unwrap();
    std::fs::write(
        dir.join("wedge.toml"),
        "manifest_version = 1\n[app]\nname = \"demo\"\nversion = \"1.0\"\nwasm = \"app.wasm\"\nargs = [\"from-image\"]\n\
         [env]\nREQUESTED = \"yes\"\n[[volumes]]\nhost = \"data\"\nguest = \"/data\"\nmode = \"rw\"\n\
         [network]\nconnect = [\"127.0.0.1:9\"]\n[limits]\nmemory = \"64MiB\"\n",
    )
    .unwrap();
    dir.to_string_lossy().into_owned()
}

fn store(env: &Env) -> ImageStore {
    ImageStore::open(env.root().join("images")).unwrap()
}

#[test]
fn build_list_inspect_and_run_an_image() {
    let env = Env::new();
    let dir = app(&env, p1::ARGS_ENV);
    let run = env.wedge(&["build", "-t", REF, &dir]);
    run.expect_code(0);
    let digest: Digest = run.stdout.trim().parse().unwrap();

    let run = env.wedge(&["images", "--format", "json"]);
    run.expect_code(0);
    let images: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(images[0]["reference"], REF);
    assert_eq!(images[0]["digest"], digest.to_string());
    assert_eq!(images[0]["os"], "wasip1");
    assert!(env.wedge(&["images"]).stdout.contains(REF));

    let run = env.wedge(&["image", "inspect", REF]);
    run.expect_code(0);
    let info: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        info["manifest"]["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(
        info["manifest"]["layers"][0]["mediaType"],
        "application/wasm"
    );
    assert_eq!(info["manifest"]["layers"].as_array().unwrap().len(), 1);
    assert_eq!(info["config"]["architecture"], "wasm");
    assert_eq!(info["config"]["os"], "wasip1");
    assert_eq!(info["config"]["layerDigests"][0], info["layer"]);
    assert_eq!(info["requested"]["env"][0], "REQUESTED=yes");
    assert_eq!(info["requested"]["volumes"][0]["guest"], "/data");
    assert!(
        !run.stdout.contains(&dir),
        "a host path leaked into the image"
    );

    // The image asks; the operator grants. Limits apply; env only with --grant-requested.
    let run = env.wedge(&["run", REF, "x"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "arg[0]=demo\narg[1]=from-image\narg[2]=x\n");
    let run = env.wedge(&["run", "--grant-requested", "-e", "MINE=1", REF]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "arg[0]=demo\narg[1]=from-image\nenv MINE=1\nenv REQUESTED=yes\n"
    );
    // By digest too.
    let by_digest = format!("localhost:5000/demo/args@{digest}");
    env.wedge(&["run", &by_digest]).expect_code(0);
}

#[test]
fn component_images_describe_their_world() {
    let env = Env::new();
    let dir = app(&env, p2::HELLO);
    env.wedge(&["build", "-t", "demo/hello:2", &dir])
        .expect_code(0);
    let run = env.wedge(&["image", "inspect", "demo/hello:2"]);
    let info: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(info["reference"], "docker.io/demo/hello:2");
    assert_eq!(info["config"]["os"], "wasip2");
    let exports = info["config"]["component"]["exports"].as_array().unwrap();
    assert!(
        exports
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("wasi:cli/run")),
        "{exports:?}"
    );
    let run = env.wedge(&["run", "demo/hello:2"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hello from wedge\n");
}

#[test]
fn tag_rmi_and_prune() {
    let env = Env::new();
    let dir = app(&env, p1::HELLO);
    env.wedge(&["build", "-t", REF, &dir]).expect_code(0);
    env.wedge(&["tag", REF, "other/name:latest"]).expect_code(0);
    assert_eq!(store(&env).list().unwrap().len(), 2);
    env.wedge(&["rmi", REF]).expect_code(0);
    // The other tag still runs: its blobs were kept.
    env.wedge(&["run", "other/name"]).expect_code(0);
    env.wedge(&["rmi", "other/name"]).expect_code(0);
    // By digest: every tag of that manifest goes.
    let run = env.wedge(&["build", "-t", "a/one:1", "-t", "a/two:1", &dir]);
    let digest = run.stdout.trim().to_string();
    let run = env.wedge(&["rmi", &format!("a/one@{digest}")]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("untagged docker.io/a/one:1")
            && run.stdout.contains("untagged docker.io/a/two:1"),
        "{}",
        run.stdout
    );
    let blobs = std::fs::read_dir(env.root().join("images/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "rmi of the last tag removes the image's blobs");
    env.wedge(&["rmi", "other/name"])
        .expect_code(125)
        .expect_one_line_error("no such image");
    // Not local and its registry is down: one clear line, nothing stored.
    env.wedge(&["run", "localhost:1/nothing/here:1"])
        .expect_code(125)
        .expect_one_line_error("no such image locally; pulling it failed: registry: localhost:1/nothing/here:1: cannot connect to `localhost:1`");
    assert!(store(&env).list().unwrap().is_empty());
}

#[test]
fn fsck_quarantines_a_tampered_layer_and_run_refuses_it() {
    let env = Env::new();
    let dir = app(&env, p1::HELLO);
    env.wedge(&["build", "-t", REF, &dir]).expect_code(0);
    let store = store(&env);
    let image = store
        .resolve(&wedge_image::parse_reference(REF).unwrap())
        .unwrap();
    let manifest = store.read_manifest(&image.digest).unwrap();
    let layer: Digest = manifest.layers[0].digest.parse().unwrap();
    let mut wasm = std::fs::read(store.blob_path(&layer)).unwrap();
    let last = wasm.len() - 1;
    wasm[last] ^= 0xff;
    std::fs::write(store.blob_path(&layer), &wasm).unwrap();

    env.wedge(&["run", REF])
        .expect_code(125)
        .expect_one_line_error("corrupt blob");
    let run = env.wedge(&["image", "fsck", "--format", "json"]);
    run.expect_code(1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["quarantined"][0], layer.to_string());
    assert_eq!(report["untagged"][0], REF);
    env.wedge(&["image", "fsck"]).expect_code(0);
    assert!(env.wedge(&["images", "--format", "json"]).stdout.trim() == "[]");
}

#[test]
fn images_that_are_not_wasm_are_refused() {
    let env = Env::new();
    let store = store(&env);
    let layer = store.put_blob(b"not really a tarball", None).unwrap();
    let config = store
        .put_blob(b"{\"architecture\":\"amd64\",\"os\":\"linux\"}", None)
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":38}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":20}}]}}"#
    );
    let digest = store.put_blob(manifest.as_bytes(), None).unwrap();
    store
        .tag("docker.io/library/alpine:3", &digest, manifest.len() as i64)
        .unwrap();
    env.wedge(&["run", "alpine:3"])
        .expect_code(125)
        .expect_one_line_error("is not a Wasm image: its layer has media type `application/vnd.oci.image.layer.v1.tar+gzip`");
}

#[test]
fn build_needs_a_manifest_and_valid_tags() {
    let env = Env::new();
    let dir = app(&env, p1::HELLO);
    env.wedge(&["build", "-t", "UPPER/case:1", &dir])
        .expect_code(125)
        .expect_one_line_error("invalid image reference");
    env.wedge(&["build", "-t", REF, p1::HELLO])
        .expect_code(125)
        .expect_one_line_error("no `wedge.toml`");
}

#[test]
fn save_and_load_round_trip_through_an_oci_tar() {
    let env = Env::new();
    let dir = app(&env, p1::ARGS_ENV);
    env.wedge(&["build", "-t", REF, &dir]).expect_code(0);
    let tar = env.path("app.tar").to_string_lossy().into_owned();
    env.wedge(&["save", REF, "-o", &tar]).expect_code(0);

    let device = Env::new();
    let run = device.wedge(&["load", "-i", &tar]);
    run.expect_code(0);
    assert_eq!(run.stdout, format!("Loaded image: {REF}\n"));
    let run = device.wedge(&["run", REF]);
    run.expect_code(0);
    assert_eq!(run.stdout, "arg[0]=demo\narg[1]=from-image\n");
    assert_eq!(
        env.wedge(&["images", "--format", "json"]).stdout,
        device.wedge(&["images", "--format", "json"]).stdout,
        "same digests on both sides"
    );

    // A tampered archive is refused whole.
    let mut bytes = std::fs::read(&tar).unwrap();
    let pos = bytes.windows(4).position(|w| w == b"\0asm").unwrap();
    bytes[pos + 20] ^= 0xff;
    let bad = env.path("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();
    let other = Env::new();
    other
        .wedge(&["load", "-i", &bad.to_string_lossy()])
        .expect_code(125)
        .expect_one_line_error("digest mismatch");
    assert!(store(&other).list().unwrap().is_empty());
}

/// Builds `wasm` as the image `reference` from a wedge.toml with `[limits] LIMITS`.
fn build_with_limits(env: &Env, wasm: &str, reference: &str, limits: &str) {
    let dir = env.path(&format!("limits-{}", reference.len()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(wasm, dir.join("app.wasm")).unwrap();
    std::fs::write(
        dir.join("wedge.toml"),
        format!(
            "manifest_version = 1\n[app]\nname = \"hog\"\nwasm = \"app.wasm\"\n[limits]\n{limits}\n"
        ),
    )
    .unwrap();
    env.wedge(&["build", "-t", reference, &dir.to_string_lossy()])
        .expect_code(0);
}

#[test]
fn an_image_request_lowers_limits_and_never_raises_them() {
    let env = Env::new();
    let greedy = "localhost:5000/demo/greedy:1";
    build_with_limits(&env, p1::MEMHOG, greedy, "memory = \"4GiB\"");
    // Asking for 4 GiB does not lift the 512 MiB default...
    let run = env.wedge(&["run", greedy, "600"]);
    run.expect_code(134);
    assert!(
        run.stderr.contains("memory limit of 512MiB"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("done"), "{}", run.stdout);
    // ...unless the operator grants what the image requests.
    let run = env.wedge(&["run", "--grant-requested", greedy, "600"]);
    run.expect_code(0);
    assert!(run.stdout.ends_with("done: 600 MiB\n"), "{}", run.stdout);
    // Even then, a limit the operator sets holds.
    let run = env.wedge(&["run", "--grant-requested", "-m", "32MiB", greedy, "40"]);
    run.expect_code(134);
    assert!(
        run.stderr.contains("memory limit of 32MiB"),
        "{}",
        run.stderr
    );

    // A request below the operator's limit lowers it.
    let frugal = "localhost:5000/demo/frugal:1";
    build_with_limits(&env, p1::MEMHOG, frugal, "memory = \"16MiB\"");
    let run = env.wedge(&["run", "-m", "64MiB", frugal, "20"]);
    run.expect_code(134);
    assert!(
        run.stderr.contains("memory limit of 16MiB"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_image_never_names_a_host_environment_variable() {
    let env = Env::new();
    // A crafted image whose request names variables of the host (`wedge build` never
    // writes a bare `KEY`): the test harness gives every `wedge` WEDGE_TEST_SECRET, and
    // the daemon has HOME.
    let requested = wedge_image::Requested {
        name: "thief".into(),
        env: vec![
            "WEDGE_TEST_SECRET".parse().unwrap(),
            "HOME".parse().unwrap(),
            "ASKED=1".parse().unwrap(),
        ],
        ..Default::default()
    };
    let wasm = std::fs::read(p1::ARGS_ENV).unwrap();
    let (digest, size) = wedge_image::artifact::build(&store(&env), &wasm, &requested).unwrap();
    let thief = "localhost:5000/demo/thief:1";
    store(&env).tag(thief, &digest, size).unwrap();

    let run = env.wedge(&["run", "--grant-requested", thief]);
    run.expect_code(0);
    assert_eq!(run.stdout, "arg[0]=thief\nenv ASKED=1\n");
    // The operator can still pass a host variable by name.
    let run = env.wedge(&["run", "--grant-requested", "-e", "WEDGE_TEST_SECRET", thief]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("env WEDGE_TEST_SECRET=host-only"),
        "{}",
        run.stdout
    );

    // Nor through the daemon, whose own environment it would otherwise read.
    assert!(std::env::var_os("HOME").is_some());
    let d = crate::common::TestDaemon::start(&env, &[]);
    d.wedge(
        &env,
        &["run", "-d", "--name", "thief", "--grant-requested", thief],
    )
    .expect_code(0);
    d.wedge(&env, &["wait", "thief"]).expect_code(0);
    let logs = d.wedge(&env, &["logs", "thief"]);
    logs.expect_code(0);
    assert_eq!(logs.stdout, "arg[0]=thief\nenv ASKED=1\n");
}

#[test]
fn load_streams_the_archive_and_says_which_tags_it_moved() {
    let env = Env::new();
    let tag = "localhost:5000/demo/moving:1";
    let save = |wasm: &str, name: &str| {
        build_with_limits(&env, wasm, tag, "");
        let tar = env.path(name).to_string_lossy().into_owned();
        env.wedge(&["save", tag, "-o", &tar]).expect_code(0);
        tar
    };
    let hello = save(p1::HELLO, "hello.tar");
    let args = save(p1::ARGS_ENV, "args.tar");

    let device = Env::new();
    let run = device.wedge(&["load", "-i", &hello]);
    run.expect_code(0);
    assert_eq!(run.stdout, format!("Loaded image: {tag}\n"));
    assert_eq!(run.stderr, "");
    let before = store(&device).list().unwrap()[0].digest.clone();
    let run = device.wedge(&["load", "-i", &args]);
    run.expect_code(0);
    assert_eq!(run.stdout, format!("Loaded image: {tag}\n"));
    let after = store(&device).list().unwrap()[0].digest.clone();
    assert_ne!(before, after);
    assert_eq!(
        run.stderr,
        format!("moved tag {tag} from {before} to {after}\n")
    );
    // Loading the same archive again moves nothing.
    let run = device.wedge(&["load", "-i", &args]);
    run.expect_code(0);
    assert_eq!(run.stderr, "");

    // A 96 MiB app loads under an address-space limit far below its size (the archive
    // is streamed to the store, never held whole).
    let big = env.path("big");
    std::fs::create_dir_all(&big).unwrap();
    let mut wasm = std::fs::read(p1::HELLO).unwrap();
    let pad = 96usize << 20;
    wasm.push(0);
    let mut n = pad + 4;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        wasm.push(if n > 0 { byte | 0x80 } else { byte });
        if n == 0 {
            break;
        }
    }
    wasm.extend_from_slice(&[3, b'p', b'a', b'd']);
    wasm.resize(wasm.len() + pad, 7);
    std::fs::write(big.join("app.wasm"), &wasm).unwrap();
    drop(wasm);
    std::fs::write(
        big.join("wedge.toml"),
        "manifest_version = 1\n[app]\nname = \"big\"\nwasm = \"app.wasm\"\n",
    )
    .unwrap();
    let big_tag = "localhost:5000/demo/big:1";
    env.wedge(&["build", "-t", big_tag, &big.to_string_lossy()])
        .expect_code(0);
    let tar = env.path("big.tar");
    env.wedge(&["save", big_tag, "-o", &tar.to_string_lossy()])
        .expect_code(0);
    let limited = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v {}; exec \"$0\" load -i \"$1\"",
            LOAD_ADDRESS_SPACE_KIB
        ))
        .arg(env!("CARGO_BIN_EXE_wedge"))
        .arg(&tar)
        .env("WEDGE_ROOT", device.root())
        .output()
        .unwrap();
    assert!(
        limited.status.success(),
        "{}",
        String::from_utf8_lossy(&limited.stderr)
    );
    device.wedge(&["run", big_tag]).expect_code(0);
}

/// The address space `wedge load` gets in the test above: what the debug binary needs to
/// start (about 80 MB) and room to work, below what holding the 96 MiB layer takes (the
/// reading-whole `load` failed under it: `memory allocation of 100727895 bytes failed`).
const LOAD_ADDRESS_SPACE_KIB: u64 = 160_000;
