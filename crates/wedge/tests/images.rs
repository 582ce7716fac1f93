//! Images in the local store: build from a wedge.toml, list, inspect, run (requested
//! grants are not granted unless asked), tag, rmi, prune, fsck, and refusal of images
//! that are not Wasm.

mod common;

use common::Env;
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
