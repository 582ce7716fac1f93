//! Push and pull against a real registry (Debian's `docker-registry`): round trips by
//! tag and by digest, pull-on-run, basic auth with `wedge login`, tampered blobs,
//! non-Wasm images, an unreachable registry, and `skopeo` reading what wedge pushes.

use crate::common::{Env, TestRegistry, cache_entries, cache_entries_once_compiled, relative_to};
use std::path::PathBuf;
use std::process::Command;
use wedge_image::ImageStore;
use wedge_test_programs::{p1, wat};

/// Builds the args/env guest as an image named `reference` in `env`'s store.
fn build(env: &Env, reference: &str) -> String {
    let dir = crate::common::app_folder(env, p1::ARGS_ENV, "demo", "[env]\nASKED = \"1\"\n");
    let run = env.wedge(&["build", "-t", reference, &dir.to_string_lossy()]);
    run.expect_code(0);
    run.stdout.trim().to_string()
}

#[test]
fn push_then_pull_by_tag_and_by_digest() {
    let registry = TestRegistry::start(None);
    let reference = format!("{}/sensors/demo:1.0", registry.host);
    let builder = Env::new();
    let digest = build(&builder, &reference);
    let run = builder.wedge(&["push", &reference]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{reference}@{digest}"));
    // Pushing again uploads nothing new and succeeds.
    builder.wedge(&["push", &reference]).expect_code(0);

    let device = Env::new();
    let run = device.wedge(&["pull", &reference]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{reference}@{digest}"));
    // Pulling compiled the app into the AOT cache already.
    assert!(
        device
            .root()
            .join("cache/aot")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
    let run = device.wedge(&["run", &reference, "hi"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "arg[0]=demo\narg[1]=hi\n");

    let by_digest = format!("{}/sensors/demo@{digest}", registry.host);
    let fresh = Env::new();
    fresh.wedge(&["pull", &by_digest]).expect_code(0);
    fresh.wedge(&["run", &by_digest]).expect_code(0);
    // A digest that does not match what the registry serves is refused.
    let wrong = format!("{}/sensors/demo@sha256:{}", registry.host, "0".repeat(64));
    fresh.wedge(&["pull", &wrong]).expect_code(125);
}

#[test]
fn run_pulls_a_missing_image() {
    let registry = TestRegistry::start(None);
    let reference = format!("{}/demo/args:2", registry.host);
    let builder = Env::new();
    build(&builder, &reference);
    builder.wedge(&["push", &reference]).expect_code(0);
    let device = Env::new();
    let run = device.wedge(&["run", "--grant-requested", &reference]);
    run.expect_code(0);
    assert_eq!(run.stdout, "arg[0]=demo\nenv ASKED=1\n");
}

#[test]
fn run_pulls_and_compiles_a_layer_too_large_to_keep_in_memory() {
    // hello with a custom section past the 64 MiB a pull keeps in memory: the compile
    // then reads the layer from the store's file.
    let mut wasm = std::fs::read(p1::HELLO).unwrap();
    let name = b"payload";
    let size = (65 << 20) + 1 + name.len();
    wasm.push(0);
    let mut n = size;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        wasm.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            break;
        }
    }
    wasm.push(name.len() as u8);
    wasm.extend_from_slice(name);
    wasm.resize(wasm.len() + (65 << 20), 0xa5);
    let registry = TestRegistry::start(None);
    let reference = format!("{}/demo/large:1", registry.host);
    let builder = Env::new();
    let dir = crate::common::app_folder(&builder, p1::HELLO, "large", "");
    std::fs::write(dir.join("app.wasm"), &wasm).unwrap();
    builder
        .wedge(&["build", "-t", &reference, &dir.to_string_lossy()])
        .expect_code(0);
    builder.wedge(&["push", &reference]).expect_code(0);
    let device = Env::new();
    let run = device.wedge(&["run", &reference]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hello from wedge\n");
    device.wedge(&["image", "fsck"]).expect_code(0);
}

/// What a run of `wasm` naming Cranelift with a timeout prints, and the cache entries it
/// makes (relative to its root): the code a pull's engine (default settings, with epoch
/// checks) gets from Cranelift.
fn cranelift_code_of(wasm: &str) -> (String, Vec<PathBuf>) {
    let env = Env::new();
    let run = env.wedge(&["run", "--engine", "cranelift", "--timeout", "1h", wasm]);
    run.expect_code(0);
    let entries = relative_to(&env.root(), &cache_entries(&env.root()));
    assert_eq!(entries.len(), 1);
    (run.stdout, entries)
}

/// `wasm` built as the app `name` and pushed to `registry`: its reference.
fn push_app(registry: &TestRegistry, wasm: &str, name: &str) -> String {
    let reference = format!("{}/demo/{name}:1", registry.host);
    let builder = Env::new();
    let dir = crate::common::app_folder(&builder, wasm, name, "");
    builder
        .wedge(&["build", "-t", &reference, &dir.to_string_lossy()])
        .expect_code(0);
    builder.wedge(&["push", &reference]).expect_code(0);
    reference
}

#[test]
fn a_big_app_pulled_starts_on_winch_and_cranelift_code_follows_in_the_background() {
    let (expected, expected_entries) = cranelift_code_of(wat::BIG);
    let registry = TestRegistry::start(None);
    let reference = push_app(&registry, wat::BIG, "big");

    // `wedge pull` compiles nothing itself (no run waits on it) and leaves Cranelift to
    // a `wedge tier-up` in the background: it returns before any code is in the cache.
    let device = Env::new();
    device.wedge(&["pull", &reference]).expect_code(0);
    assert!(cache_entries(&device.root()).is_empty());
    assert_eq!(
        cache_entries_once_compiled(&device.root()),
        expected_entries
    );
    let run = device.wedge(&["run", &reference]);
    run.expect_code(0);
    assert_eq!(run.stdout, expected);
    assert_eq!(cache_entries(&device.root()).len(), 1);

    // A run that pulls it runs the pull's Winch code at once, and has the same made.
    let other = Env::new();
    let run = other.wedge(&["run", &reference]);
    run.expect_code(0);
    assert_eq!(run.stdout, expected);
    assert_eq!(cache_entries_once_compiled(&other.root()), expected_entries);
    // A compiler named gets its own code, not the pull's.
    let named = Env::new();
    let run = named.wedge(&[
        "run",
        "--engine",
        "cranelift",
        "--timeout",
        "1h",
        &reference,
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, expected);
    assert_eq!(
        relative_to(&named.root(), &cache_entries(&named.root())),
        expected_entries
    );
}

#[test]
fn a_big_app_winch_refuses_is_compiled_with_cranelift_by_its_pull() {
    let (expected, expected_entries) = cranelift_code_of(wat::BIG_THROWS);
    // The number came through the exception unchanged.
    assert_eq!(expected, cranelift_code_of(wat::BIG).0);
    let registry = TestRegistry::start(None);
    let reference = push_app(&registry, wat::BIG_THROWS, "big-throws");

    // Winch refuses its exceptions, so a run would wait for Cranelift anyway: the pull
    // compiles it, and has its code in the cache when it returns.
    let device = Env::new();
    device.wedge(&["pull", &reference]).expect_code(0);
    assert_eq!(
        relative_to(&device.root(), &cache_entries(&device.root())),
        expected_entries
    );
    let run = device.wedge(&["run", &reference]);
    run.expect_code(0);
    assert_eq!(run.stdout, expected);
}

#[test]
fn basic_auth_needs_login() {
    let registry = TestRegistry::start(Some("alice"));
    let reference = format!("{}/private/app:1", registry.host);
    let env = Env::new();
    build(&env, &reference);
    env.wedge(&["push", &reference])
        .expect_code(125)
        .expect_one_line_error("not authorized");
    env.wedge_with_stdin(
        &["login", &registry.host, "-u", "alice", "--password-stdin"],
        b"wrong\n",
    )
    .expect_code(125)
    .expect_one_line_error("login failed");
    let run = env.wedge_with_stdin(
        &["login", &registry.host, "-u", "alice", "--password-stdin"],
        b"secret\n",
    );
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), "Login Succeeded");
    env.wedge(&["push", &reference]).expect_code(0);
    env.wedge(&["rmi", &reference]).expect_code(0);
    env.wedge(&["pull", &reference]).expect_code(0);
    env.wedge(&["logout", &registry.host]).expect_code(0);
    env.wedge(&["rmi", &reference]).expect_code(0);
    env.wedge(&["pull", &reference])
        .expect_code(125)
        .expect_one_line_error("not authorized");
}

#[test]
fn docker_credential_helpers_are_asked_as_the_docker_cli_does() {
    use std::os::unix::fs::PermissionsExt;
    let registry = TestRegistry::start(Some("alice"));
    let reference = format!("{}/private/helped:1", registry.host);
    let env = Env::new();
    build(&env, &reference);
    // A helper that knows the registry: it reads the server from stdin, as Docker's do.
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = |name: &str, script: &str| {
        let path = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    helper(
        "wedgetest",
        &format!(
            r#"read server; [ "$1" = get ] && [ "$server" = "{}" ] || exit 3
echo '{{"ServerURL":"'$server'","Username":"alice","Secret":"secret"}}'"#,
            registry.host
        ),
    );
    helper(
        "empty",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    helper("broken", "echo 'keychain locked' >&2; exit 2");
    let docker = env.path("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let with_config = |config: String, args: &[&str]| {
        std::fs::write(docker.join("config.json"), config).unwrap();
        env.wedge_with(
            args,
            b"",
            &[
                ("DOCKER_CONFIG", docker.display().to_string()),
                ("PATH", path.clone()),
            ],
        )
    };
    let per_registry = format!(r#"{{"credHelpers": {{"{}": "wedgetest"}}}}"#, registry.host);
    with_config(per_registry.clone(), &["push", &reference]).expect_code(0);
    env.wedge(&["rmi", &reference]).expect_code(0);
    with_config(
        r#"{"credsStore": "wedgetest"}"#.into(),
        &["pull", &reference],
    )
    .expect_code(0);
    env.wedge(&["rmi", &reference]).expect_code(0);
    // Nothing in the store for it: anonymous, which this registry refuses.
    with_config(r#"{"credsStore": "empty"}"#.into(), &["pull", &reference])
        .expect_code(125)
        .expect_one_line_error("not authorized");
    with_config(r#"{"credsStore": "broken"}"#.into(), &["pull", &reference])
        .expect_code(125)
        .expect_one_line_error("`docker-credential-broken`: exit status: 2: keychain locked");
    with_config(r#"{"credsStore": "missing"}"#.into(), &["pull", &reference])
        .expect_code(125)
        .expect_one_line_error("`docker-credential-missing`: cannot run it");
}

#[test]
fn tampered_blobs_are_refused_and_nothing_is_stored() {
    let registry = TestRegistry::start(None);
    let reference = format!("{}/demo/tampered:1", registry.host);
    let builder = Env::new();
    build(&builder, &reference);
    builder.wedge(&["push", &reference]).expect_code(0);
    let store = ImageStore::open(builder.root().join("images")).unwrap();
    let image = store
        .resolve(&wedge_image::parse_reference(&reference).unwrap())
        .unwrap();
    let layer = store.read_manifest(&image.digest).unwrap().layers[0]
        .digest
        .clone();
    let data = registry.blob_data(layer.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&data).unwrap();
    // The last byte is in a trailing custom section: the tampered layer is still valid
    // Wasm, which compiles while it downloads, and must compile into nothing stored.
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    let device = Env::new();
    for command in ["pull", "run"] {
        device
            .wedge(&[command, &reference])
            .expect_code(125)
            .expect_one_line_error("digest");
    }
    let device_store = ImageStore::open(device.root().join("images")).unwrap();
    assert!(
        device_store.list().unwrap().is_empty(),
        "a failed pull must not tag anything"
    );
    let cached = crate::common::cache_entries(&device.root());
    assert!(
        cached.is_empty(),
        "no compiled code for unverified bytes: {cached:?}"
    );
    assert!(device.wedge(&["image", "fsck"]).code == 0);
}

#[test]
fn unreachable_registry_and_missing_images_are_clear_errors() {
    let mut registry = TestRegistry::start(None);
    let env = Env::new();
    env.wedge(&["pull", &format!("{}/no/such:1", registry.host)])
        .expect_code(125)
        .expect_one_line_error("not found");
    let reference = format!("{}/demo/down:1", registry.host);
    build(&env, &reference);
    registry.kill();
    env.wedge(&["push", &reference])
        .expect_code(125)
        .expect_one_line_error("cannot connect");
    env.wedge(&["pull", &reference])
        .expect_code(125)
        .expect_one_line_error("cannot connect");
}

#[test]
fn skopeo_reads_what_wedge_pushes_byte_for_byte() {
    let registry = TestRegistry::start(None);
    let reference = format!("{}/interop/app:1", registry.host);
    let env = Env::new();
    let digest = build(&env, &reference);
    env.wedge(&["push", &reference]).expect_code(0);

    // skopeo copies the image from the registry into an OCI layout...
    let out = env.path("skopeo-layout");
    let status = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            &format!("oci:{}:app", out.display()),
        ])
        .output()
        .expect("run skopeo (scripts/setup.sh installs it)");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let skopeo_store = ImageStore::open(&out).unwrap();
    let copied = &skopeo_store.list().unwrap()[0];
    assert_eq!(
        copied.digest.to_string(),
        digest,
        "skopeo's copy has another manifest digest"
    );
    let ours = ImageStore::open(env.root().join("images")).unwrap();
    let manifest = ours.read_manifest(&copied.digest).unwrap();
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let d: wedge_image::Digest = d.digest.parse().unwrap();
        assert_eq!(
            skopeo_store.read_blob(&d).unwrap(),
            ours.read_blob(&d).unwrap()
        );
    }
    // ...and reads wedge's local store directly, as the OCI layout it is.
    let status = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            &format!("oci:{}:{reference}", env.root().join("images").display()),
        ])
        .output()
        .expect("run skopeo");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn non_wasm_images_are_refused_before_download() {
    let registry = TestRegistry::start(None);
    let env = Env::new();
    // A Linux-style image in an OCI layout, copied to the registry with skopeo.
    let layout = ImageStore::open(env.path("linux-layout")).unwrap();
    let (layer, digest, manifest) = linux_image(&layout);
    layout.tag("linux", &digest, manifest.len() as i64).unwrap();
    let reference = format!("{}/library/linux:1", registry.host);
    skopeo_push(&layout, "linux", &reference);
    env.wedge(&["pull", &reference])
        .expect_code(125)
        .expect_one_line_error("is not a Wasm image: its layer has media type `application/vnd.oci.image.layer.v1.tar+gzip`");
    let store = ImageStore::open(env.root().join("images")).unwrap();
    assert!(
        !store.has_blob(&layer),
        "a layer of a refused image was downloaded"
    );
}

/// A 2 MiB app, so transfers can be cut in the middle of its layer.
fn build_big(env: &Env, reference: &str) {
    let dir = env.path("big");
    std::fs::create_dir_all(&dir).unwrap();
    let mut wasm = std::fs::read(p1::HELLO).unwrap();
    // A custom section (id 0) named "pad" holding 2 MiB of bytes.
    let payload_len: usize = 4 + (2 << 20);
    wasm.push(0);
    let mut n = payload_len;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        wasm.push(if n > 0 { byte | 0x80 } else { byte });
        if n == 0 {
            break;
        }
    }
    wasm.extend_from_slice(&[3, b'p', b'a', b'd']);
    wasm.extend((0..(2u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    std::fs::write(dir.join("app.wasm"), &wasm).unwrap();
    std::fs::write(
        dir.join("wedge.toml"),
        "manifest_version = 1\n[app]\nname = \"big\"\nwasm = \"app.wasm\"\n",
    )
    .unwrap();
    env.wedge(&["build", "-t", reference, &dir.to_string_lossy()])
        .expect_code(0);
}

#[test]
fn transfers_cut_midway_leave_nothing_behind_and_can_be_retried() {
    let registry = TestRegistry::start(None);
    let proxy = crate::common::CuttingProxy::start(&registry.host, 1 << 20);
    let reference = format!("{}/demo/big:1", proxy.host);

    // Push dies in the middle of the 2 MiB layer: an error, and the tag is not there.
    let env = Env::new();
    build_big(&env, &reference);
    env.wedge(&["push", &reference]).expect_code(125);
    let direct = format!("{}/demo/big:1", registry.host);
    Env::new()
        .wedge(&["pull", &direct])
        .expect_code(125)
        .expect_one_line_error("not found");

    // The registry "comes back": the same push now completes.
    proxy.set_cut(usize::MAX / 2);
    env.wedge(&["push", &reference]).expect_code(0);

    // Pull dies mid-layer: an error, nothing tagged, the store still passes fsck.
    proxy.set_cut(1 << 20);
    let device = Env::new();
    device.wedge(&["pull", &reference]).expect_code(125);
    let store = ImageStore::open(device.root().join("images")).unwrap();
    assert!(store.list().unwrap().is_empty());
    device.wedge(&["image", "fsck"]).expect_code(0);
    proxy.set_cut(usize::MAX / 2);
    device.wedge(&["pull", &reference]).expect_code(0);
    device.wedge(&["run", &reference]).expect_code(0);
}

#[test]
fn multi_platform_indexes_are_followed_to_their_wasm_entry() {
    let registry = TestRegistry::start(None);
    let env = Env::new();
    // An OCI layout holding an index with a linux/amd64 entry and a wasm/wasip1 entry.
    let layout = ImageStore::open(env.path("multi-layout")).unwrap();
    let wasm = std::fs::read(p1::HELLO).unwrap();
    let (wasm_manifest, wasm_size) =
        wedge_image::artifact::build(&layout, &wasm, &wedge_image::Requested::default()).unwrap();
    let (_, linux_digest, linux) = linux_image(&layout);
    let entry = |digest: &wedge_image::Digest, size: usize, arch: &str, os: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{size},"platform":{{"architecture":"{arch}","os":"{os}"}}}}"#
        )
    };
    let publish = |name: &str, entries: Vec<String>| {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            entries.join(",")
        );
        let digest = layout.put_blob(index.as_bytes(), None).unwrap();
        let top = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{name}"}}}}]}}"#,
            index.len()
        );
        std::fs::write(layout.root().join("index.json"), top).unwrap();
        let reference = format!("{}/multi/{name}:1", registry.host);
        skopeo_push(&layout, name, &reference);
        reference
    };
    let both = publish(
        "both",
        vec![
            entry(&linux_digest, linux.len(), "amd64", "linux"),
            entry(&wasm_manifest, wasm_size as usize, "wasm", "wasip1"),
        ],
    );
    let run = env.wedge(&["run", &both]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hello from wedge\n");

    let linux_only = publish(
        "linux",
        vec![entry(&linux_digest, linux.len(), "amd64", "linux")],
    );
    env.wedge(&["pull", &linux_only])
        .expect_code(125)
        .expect_one_line_error("image index with no entry for the `wasm` platform");
}

/// A Linux-style image (tar+gzip layer) in `layout`: its layer digest, manifest digest
/// and manifest text.
fn linux_image(layout: &ImageStore) -> (wedge_image::Digest, wedge_image::Digest, String) {
    let layer = layout.put_blob(b"pretend tarball", None).unwrap();
    let config = layout
        .put_blob(br#"{"architecture":"amd64","os":"linux"}"#, None)
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":37}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":15}}]}}"#
    );
    let digest = layout.put_blob(manifest.as_bytes(), None).unwrap();
    (layer, digest, manifest)
}

/// `skopeo copy --all oci:LAYOUT:NAME docker://REFERENCE` (plain HTTP to the test registry).
fn skopeo_push(layout: &ImageStore, name: &str, reference: &str) {
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:{name}", layout.root().display()),
            &format!("docker://{reference}"),
        ])
        .output()
        .expect("run skopeo (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kill_9_during_a_pull_leaves_a_store_that_loads_and_passes_fsck() {
    let registry = TestRegistry::start(None);
    let proxy = crate::common::CuttingProxy::start(&registry.host, usize::MAX / 2);
    let reference = format!("{}/demo/killed:1", proxy.host);
    let builder = Env::new();
    build_big(&builder, &reference);
    builder.wedge(&["push", &reference]).expect_code(0);

    let device = Env::new();
    for kill_after_ms in [150, 400, 800] {
        // Stretch the 2 MiB layer over about a second, then kill -9 the pull.
        proxy.set_delay(5);
        let mut child = crate::common::wedge_command()
            .args(["pull", &reference])
            .env("WEDGE_ROOT", device.root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(kill_after_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        proxy.set_delay(0);
        // Killed mid-download: nothing tagged. Killed later (while warming the AOT
        // cache): the image was tagged only once complete. Either way fsck finds nothing
        // to repair and whatever is listed runs.
        device.wedge(&["image", "fsck"]).expect_code(0);
        device.wedge(&["images"]).expect_code(0);
        let store = ImageStore::open(device.root().join("images")).unwrap();
        for image in store.list().unwrap() {
            device.wedge(&["run", &image.reference]).expect_code(0);
        }
    }
    device.wedge(&["pull", &reference]).expect_code(0);
    device.wedge(&["run", &reference]).expect_code(0);
}

#[test]
fn a_machine_without_ca_certificates_pulls_from_loopback_and_says_why_https_fails() {
    // What an edge device without the ca-certificates package looks like to rustls.
    let no_roots = [
        ("SSL_CERT_FILE", "/nonexistent/ca.pem".to_string()),
        ("SSL_CERT_DIR", "/nonexistent/certs".to_string()),
    ];
    let registry = TestRegistry::start(None);
    let reference = format!("{}/edge/nocerts:1", registry.host);
    let builder = Env::new();
    let digest = build(&builder, &reference);
    builder.wedge(&["push", &reference]).expect_code(0);

    let device = Env::new();
    let run = device.wedge_with(&["pull", &reference], b"", &no_roots);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{reference}@{digest}"));
    // An HTTPS registry needs trust roots: a one-line error, not a panic.
    device
        .wedge_with(&["pull", "registry.example:443/app:1"], b"", &no_roots)
        .expect_code(125)
        .expect_one_line_error("certificate");
}

/// A hostile registry: `/v2/<case>/manifests/1` is an image whose layer declares the
/// size of its case and whose blob never ends; `big-manifest` is a manifest that never
/// ends; the config is a real one.
fn hostile_registry() -> crate::common::FakeRegistry {
    use crate::common::Reply;
    let config = br#"{"architecture":"wasm","os":"wasip1","layerDigests":[]}"#.to_vec();
    let config_digest = wedge_image::Digest::of(&config);
    let config_json = format!(
        r#"{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"{config_digest}","size":{}}}"#,
        config.len()
    );
    let layer = format!("sha256:{}", "ab".repeat(32));
    crate::common::FakeRegistry::start(move |path| {
        const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
        let case = path
            .trim_start_matches("/v2/")
            .split('/')
            .next()
            .unwrap_or("");
        if path == "/v2/" {
            return Reply::Body(200, "application/json", b"{}".to_vec());
        }
        if path.contains("/blobs/") {
            if path.ends_with(&config_digest.to_string()) {
                return Reply::Body(200, "application/octet-stream", config.clone());
            }
            return Reply::Endless("application/octet-stream");
        }
        let size = match case {
            "big-manifest" => return Reply::Endless(MANIFEST),
            "negative" => "-1".to_string(),
            "absent" => {
                let layer = format!(r#"{{"mediaType":"application/wasm","digest":"{layer}"}}"#);
                return Reply::Body(
                    200,
                    MANIFEST,
                    crate::common::wasm_manifest(&config_json, &layer),
                );
            }
            "huge" => (100u64 << 30).to_string(),
            _ => (1u64 << 20).to_string(),
        };
        let layer =
            format!(r#"{{"mediaType":"application/wasm","digest":"{layer}","size":{size}}}"#);
        Reply::Body(
            200,
            MANIFEST,
            crate::common::wasm_manifest(&config_json, &layer),
        )
    })
}

/// Temp files left in an image store.
fn temp_files(store: &std::path::Path) -> Vec<String> {
    [store.to_path_buf(), store.join("blobs/sha256")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

#[test]
fn a_hostile_registry_cannot_fill_the_disk_or_the_memory() {
    let registry = hostile_registry();
    let env = Env::new();
    let store = env.root().join("images");
    let limit = std::time::Duration::from_secs(120);
    let pull = |case: &str, extra: &[&str]| {
        let reference = format!("{}/{case}/app:1", registry.host);
        let mut args = vec!["pull"];
        args.extend_from_slice(extra);
        args.push(&reference);
        crate::common::wedge_within(&env, &args, limit)
    };
    let blob_requests = || {
        registry
            .requested()
            .iter()
            .filter(|p| p.contains("/blobs/"))
            .count()
    };

    // Sizes that would switch the check off, or that no Wasm app has, are refused
    // before a byte of the layer is asked for.
    pull("negative", &[])
        .expect_code(125)
        .expect_one_line_error("declares a negative size `-1`");
    pull("absent", &[])
        .expect_code(125)
        .expect_one_line_error("missing field `size`");
    pull("huge", &[])
        .expect_code(125)
        .expect_one_line_error("is 107374182400 bytes, over the limit of 268435456 bytes");
    pull("small", &["--max-layer-size", "512KiB"])
        .expect_code(125)
        .expect_one_line_error("is 1048576 bytes, over the limit of 524288 bytes");
    assert_eq!(blob_requests(), 0, "{:?}", registry.requested());
    // The same limit from the environment, for the pull behind `wedge run IMAGE`.
    env.wedge_with(
        &["run", &format!("{}/small/app:1", registry.host)],
        b"",
        &[("WEDGE_MAX_LAYER_SIZE", "512KiB".to_string())],
    )
    .expect_code(125);
    assert_eq!(blob_requests(), 0, "{:?}", registry.requested());

    // A layer that declares 1 MiB and never ends: stopped once it sends more.
    pull("small", &[])
        .expect_code(125)
        .expect_one_line_error("is larger than the 1048576 bytes its manifest declares");
    assert!(blob_requests() >= 1);
    // A manifest that never ends: refused while it is read.
    pull("big-manifest", &[])
        .expect_code(125)
        .expect_one_line_error("is larger than the 4194304-byte cap");

    // wedge hung up on both endless bodies: the registry got to send little of them.
    let sent = registry.sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(sent < 64 << 20, "the registry sent {sent} bytes");
    let written = crate::common::disk_usage(&store);
    assert!(written < 1 << 20, "{written} bytes written to the store");
    assert_eq!(temp_files(&store), Vec::<String>::new());
}

#[test]
fn foreign_layer_urls_are_never_fetched() {
    use crate::common::Reply;
    // The layer's real content, served by a host the manifest names.
    let wasm = std::fs::read(p1::HELLO).unwrap();
    let layer = wedge_image::Digest::of(&wasm);
    let foreign = crate::common::FakeRegistry::start(move |_| {
        Reply::Body(200, "application/octet-stream", wasm.clone())
    });
    let config = br#"{"architecture":"wasm","os":"wasip1","layerDigests":[]}"#.to_vec();
    let config_digest = wedge_image::Digest::of(&config);
    let manifest = crate::common::wasm_manifest(
        &format!(
            r#"{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"{config_digest}","size":{}}}"#,
            config.len()
        ),
        &format!(
            r#"{{"mediaType":"application/wasm","digest":"{layer}","size":{},"urls":["http://{}/steal"]}}"#,
            std::fs::metadata(p1::HELLO).unwrap().len(),
            foreign.host
        ),
    );
    let registry = crate::common::FakeRegistry::start(move |path| {
        if path == "/v2/" {
            Reply::Body(200, "application/json", b"{}".to_vec())
        } else if path.contains("/manifests/") {
            Reply::Body(
                200,
                "application/vnd.oci.image.manifest.v1+json",
                manifest.clone(),
            )
        } else if path.ends_with(&config_digest.to_string()) {
            Reply::Body(200, "application/octet-stream", config.clone())
        } else {
            Reply::Body(
                404,
                "application/json",
                br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#.to_vec(),
            )
        }
    });
    let env = Env::new();
    let reference = format!("{}/foreign/app:1", registry.host);
    env.wedge(&["pull", &reference]).expect_code(125);
    assert_eq!(foreign.requested(), Vec::<String>::new());
    assert!(
        registry.requested().iter().any(|p| p.contains("/blobs/")),
        "{:?}",
        registry.requested()
    );
}

#[test]
fn temp_files_of_a_killed_pull_are_removed_at_daemon_start_and_by_fsck() {
    let registry = hostile_registry();
    let env = Env::new();
    let store = env.root().join("images");
    let reference = format!("{}/huge/app:1", registry.host);
    let kill_mid_pull = || {
        let mut child = crate::common::wedge_command()
            .args(["pull", "--max-layer-size", "200GiB", &reference])
            .env("WEDGE_ROOT", env.root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while temp_files(&store.join("blobs/sha256")).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "no temp file appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!temp_files(&store).is_empty());
    };
    kill_mid_pull();
    let daemon = crate::common::TestDaemon::start(&env, &[]);
    assert_eq!(temp_files(&store), Vec::<String>::new());
    assert!(
        daemon
            .log_text()
            .contains("leftover temp files from the image store"),
        "{}",
        daemon.log_text()
    );
    drop(daemon);
    kill_mid_pull();
    let run = env.wedge(&["image", "fsck"]);
    run.expect_code(0);
    assert!(run.stdout.contains("leftover temp files"), "{}", run.stdout);
    assert_eq!(temp_files(&store), Vec::<String>::new());
}

#[test]
fn prune_running_during_a_pull_deletes_nothing_the_pull_needs() {
    let registry = TestRegistry::start(None);
    let proxy = crate::common::CuttingProxy::start(&registry.host, usize::MAX / 2);
    let reference = format!("{}/demo/pruned:1", proxy.host);
    let builder = Env::new();
    build_big(&builder, &reference);
    builder.wedge(&["push", &reference]).expect_code(0);

    let device = Env::new();
    // Stretch the 2 MiB layer out, and prune again and again while it arrives.
    proxy.set_delay(2);
    let mut pull = crate::common::wedge_command()
        .args(["pull", &reference])
        .env("WEDGE_ROOT", device.root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut prunes = 0;
    let status = loop {
        if let Some(status) = pull.try_wait().unwrap() {
            break status;
        }
        device.wedge(&["image", "prune"]).expect_code(0);
        prunes += 1;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(pull.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        status.success(),
        "pull failed after {prunes} prunes: {stderr}"
    );
    assert!(prunes > 0);
    proxy.set_delay(0);
    device.wedge(&["image", "prune"]).expect_code(0);
    device.wedge(&["image", "fsck"]).expect_code(0);
    device.wedge(&["run", &reference]).expect_code(0);
}
