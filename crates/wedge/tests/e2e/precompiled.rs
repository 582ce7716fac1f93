//! Code precompiled on a build machine, attached to an image as OCI referrers (`wedge
//! push --precompile`), and a device running it without compiling
//! (`--use-precompiled`): against Debian's registry (no referrers API, so the referrers
//! tag schema), read back by `skopeo`; code for other targets, tampered code and code
//! wasmtime refuses.

use crate::common::{Env, TestDaemon, TestRegistry};
use std::path::Path;
use std::process::Command;
use wedge_image::precompiled::{ARTIFACT_TYPE, CodeKey, PrecompiledCode, TARGET_ANNOTATION};
use wedge_image::registry::{NoProgress, Registry};
use wedge_image::{Digest, ImageStore};
use wedge_runtime::{Engine, EngineOptions};
use wedge_test_programs::p1;

/// Builds the hello guest as the image `reference` in `env`'s store; its digest.
fn build_hello(env: &Env, reference: &str) -> String {
    let dir = crate::common::app_folder(env, p1::HELLO, "hello", "");
    let run = env.wedge(&["build", "-t", reference, &dir.to_string_lossy()]);
    run.expect_code(0);
    run.stdout.trim().to_string()
}

/// The engine a plain `wedge run` uses on this machine, for `target` if given.
fn engine(target: Option<&str>) -> Engine {
    Engine::new(EngineOptions {
        target: target.map(str::to_string),
        ..EngineOptions::default()
    })
    .unwrap()
}

fn key(engine: &Engine) -> CodeKey {
    CodeKey {
        target: engine.code_target(),
        settings: engine.code_settings(),
    }
}

/// The referrers list Debian's registry keeps for `image` under the tag schema's tag,
/// read with `skopeo`.
fn referrers_with_skopeo(registry: &TestRegistry, repository: &str, image: &str) -> String {
    skopeo_inspect(&format!(
        "docker://{}/{repository}:{}",
        registry.host,
        image.replace(':', "-")
    ))
}

fn skopeo_inspect(what: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", what])
        .output()
        .expect("run skopeo (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The code blob of the referrer manifest `manifest`, from the registry's storage.
fn code_blob(registry: &TestRegistry, manifest: &str) -> Vec<u8> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(registry.blob_data(&manifest[7..])).unwrap())
            .unwrap();
    let digest = manifest["layers"][0]["digest"].as_str().unwrap();
    std::fs::read(registry.blob_data(&digest[7..])).unwrap()
}

/// The payload (without the cache's trailer) of the one code cache entry for `engine`.
fn cached_code(root: &Path, engine: &Engine) -> Vec<u8> {
    let hash = engine.compatibility_hash();
    let entries: Vec<_> = crate::common::cache_entries(root)
        .into_iter()
        .filter(|e| e.parent().unwrap().ends_with(&hash))
        .collect();
    assert_eq!(entries.len(), 1, "one cache entry: {entries:?}");
    let bytes = std::fs::read(&entries[0]).unwrap();
    bytes[..bytes.len() - 24].to_vec()
}

/// Attaches `code` to the stored image `reference` of `env` through the library, as a
/// pusher with other tools (or other intentions) could.
fn attach(env: &Env, reference: &str, code: Vec<PrecompiledCode>) {
    let store = ImageStore::open(env.root().join("images")).unwrap();
    let reference = wedge_image::parse_reference(reference).unwrap();
    let image = store.resolve(&reference).unwrap();
    let auth = wedge_image::credentials::lookup(
        reference.resolve_registry(),
        &env.path("no-credentials.json"),
    )
    .unwrap();
    let registry = Registry::new(&reference, auth, false).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(registry.push_precompiled(&store, &image, &reference, &code, &NoProgress))
        .unwrap();
}

#[test]
fn a_device_runs_the_code_pushed_for_its_target_and_never_compiles() {
    let registry = TestRegistry::start(None);
    let repository = "edge/hello";
    let reference = format!("{}/{repository}:1", registry.host);
    let builder = Env::new();
    let image = build_hello(&builder, &reference);
    let host = engine(None);
    let run = builder.wedge(&[
        "push",
        "--precompile",
        "aarch64-unknown-linux-gnu",
        "--precompile",
        "pulley32",
        "--precompile",
        &host.code_target(),
        "--precompile-fuel",
        &reference,
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{reference}@{image}"));
    assert_eq!(
        run.stderr.matches("attached code for").count(),
        6,
        "{}",
        run.stderr
    );

    // The registry has no referrers API: the tag schema's list names each code by key,
    // as skopeo reads it, and each entry is a manifest attached to the image.
    let list: serde_json::Value =
        serde_json::from_str(&referrers_with_skopeo(&registry, repository, &image)).unwrap();
    let entries = list["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 6);
    let targets: Vec<&str> = entries
        .iter()
        .map(|e| e["annotations"][TARGET_ANNOTATION].as_str().unwrap())
        .collect();
    for target in ["aarch64-linux", "pulley32", &host.code_target()] {
        assert_eq!(targets.iter().filter(|t| **t == target).count(), 2);
    }
    let ours = entries
        .iter()
        .find(|e| {
            e["annotations"][TARGET_ANNOTATION] == host.code_target()
                && !e["annotations"]["dev.wedge.precompiled.settings"]
                    .as_str()
                    .unwrap()
                    .contains(", fuel")
        })
        .unwrap();
    assert_eq!(ours["artifactType"], ARTIFACT_TYPE);
    let manifest = ours["digest"].as_str().unwrap();
    let referrer: serde_json::Value = serde_json::from_str(&skopeo_inspect(&format!(
        "docker://{}/{repository}@{manifest}",
        registry.host
    )))
    .unwrap();
    assert_eq!(referrer["subject"]["digest"], image.as_str());
    // The image itself is unchanged: its tag still names the same manifest.
    let tagged = skopeo_inspect(&format!("docker://{reference}"));
    assert_eq!(Digest::of(tagged.as_bytes()).to_string(), image);

    // The device keeps exactly the pushed code in its cache, and runs it.
    let device = Env::new();
    let run = device.wedge(&["pull", "--use-precompiled", &reference]);
    run.expect_code(0);
    assert_eq!(run.stderr, "", "code was found for this machine");
    assert_eq!(
        cached_code(&device.root(), &host),
        code_blob(&registry, manifest)
    );
    let run = device.wedge(&["run", &reference]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hello from wedge\n");

    // Pushing again replaces each key's code rather than adding to the list.
    builder
        .wedge(&["push", "--precompile", "pulley32", &reference])
        .expect_code(0);
    let list: serde_json::Value =
        serde_json::from_str(&referrers_with_skopeo(&registry, repository, &image)).unwrap();
    assert_eq!(list["manifests"].as_array().unwrap().len(), 6);
}

#[test]
fn the_attached_code_is_what_runs_so_only_trusted_pulls_use_it() {
    // Code compiled from another guest, attached to hello's image: a device that uses
    // precompiled code runs that code (it is trusted native code, and never compiled
    // here); one that does not (the default) compiles and runs hello.
    let registry = TestRegistry::start(None);
    let reference = format!("{}/edge/swapped:1", registry.host);
    let builder = Env::new();
    build_hello(&builder, &reference);
    builder.wedge(&["push", &reference]).expect_code(0);
    let host = engine(None);
    let other = host.precompile_file(Path::new(p1::ARGS_ENV)).unwrap();
    attach(
        &builder,
        &reference,
        vec![PrecompiledCode {
            key: key(&host),
            code: other,
        }],
    );

    let device = Env::new();
    let run = device.wedge(&["run", &reference]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hello from wedge\n");

    let device = Env::new();
    let run = device.wedge_with(
        &["run", &reference, "x"],
        b"",
        &[("WEDGE_USE_PRECOMPILED", "1".into())],
    );
    run.expect_code(0);
    assert!(run.stdout.starts_with("arg[0]="), "{}", run.stdout);
    Env::new()
        .wedge_with(
            &["run", &reference],
            b"",
            &[("WEDGE_USE_PRECOMPILED", "maybe".into())],
        )
        .expect_one_line_error("WEDGE_USE_PRECOMPILED");
}

#[test]
fn code_for_other_targets_refused_or_tampered_code_is_never_loaded() {
    let registry = TestRegistry::start(None);
    let builder = Env::new();
    let host = engine(None);

    // Only code for another target: the device says so and compiles.
    let reference = format!("{}/edge/arm-only:1", registry.host);
    build_hello(&builder, &reference);
    builder
        .wedge(&[
            "push",
            "--precompile",
            "aarch64-unknown-linux-gnu",
            &reference,
        ])
        .expect_code(0);
    let device = Env::new();
    let run = device.wedge(&["pull", "--use-precompiled", &reference]);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("carries no code precompiled for this machine")
            && run.stderr.contains("aarch64-linux"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1);
    assert_eq!(
        device.wedge(&["run", &reference]).stdout,
        "hello from wedge\n"
    );

    // Code labelled for this machine that wasmtime refuses (it is ARM code): not kept,
    // one line says why, and the app is compiled here.
    let reference = format!("{}/edge/mislabelled:1", registry.host);
    build_hello(&builder, &reference);
    builder.wedge(&["push", &reference]).expect_code(0);
    let arm = engine(Some("aarch64-unknown-linux-gnu"))
        .precompile_file(Path::new(p1::HELLO))
        .unwrap();
    attach(
        &builder,
        &reference,
        vec![PrecompiledCode {
            key: key(&host),
            code: arm.clone(),
        }],
    );
    let device = Env::new();
    let run = device.wedge(&["pull", "--use-precompiled", &reference]);
    run.expect_code(0);
    assert!(
        run.stderr
            .starts_with("wedge: not using the image's code for")
            && run.stderr.lines().count() == 1,
        "{}",
        run.stderr
    );
    assert_ne!(cached_code(&device.root(), &host), arm);
    assert_eq!(
        device.wedge(&["run", &reference]).stdout,
        "hello from wedge\n"
    );

    // Code changed in the registry's storage after the push: its digest no longer
    // matches, and the pull fails without storing anything.
    let reference = format!("{}/edge/tampered:1", registry.host);
    let image = build_hello(&builder, &reference);
    builder
        .wedge(&["push", "--precompile", &host.code_target(), &reference])
        .expect_code(0);
    let list: serde_json::Value =
        serde_json::from_str(&referrers_with_skopeo(&registry, "edge/tampered", &image)).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(registry.blob_data(&list["manifests"][0]["digest"].as_str().unwrap()[7..]))
            .unwrap(),
    )
    .unwrap();
    let code = registry.blob_data(&manifest["layers"][0]["digest"].as_str().unwrap()[7..]);
    let mut bytes = std::fs::read(&code).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&code, bytes).unwrap();
    let device = Env::new();
    device
        .wedge(&["pull", "--use-precompiled", &reference])
        .expect_code(125)
        .expect_one_line_error("digest mismatch");
    assert!(crate::common::cache_entries(&device.root()).is_empty());
    let run = device.wedge(&["images"]);
    assert!(!run.stdout.contains("edge/tampered"), "{}", run.stdout);
    // Without precompiled code, the same image pulls and runs.
    device.wedge(&["pull", &reference]).expect_code(0);

    // A target wasmtime does not know is one line, and nothing is pushed.
    builder
        .wedge(&["push", "--precompile", "bogus-triple", &reference])
        .expect_one_line_error("bogus-triple");
}

#[test]
fn the_daemon_pulls_code_for_its_engines_when_told_to() {
    let registry = TestRegistry::start(None);
    let reference = format!("{}/edge/daemon:1", registry.host);
    let builder = Env::new();
    build_hello(&builder, &reference);
    builder.wedge(&["push", &reference]).expect_code(0);
    let host = engine(None);
    // Code from another guest again, so the output tells which code ran.
    attach(
        &builder,
        &reference,
        vec![PrecompiledCode {
            key: key(&host),
            code: host.precompile_file(Path::new(p1::ARGS_ENV)).unwrap(),
        }],
    );
    let env = Env::new();
    let daemon = TestDaemon::start(&env, &["--use-precompiled"]);
    // `run -d` pulls the missing image through the daemon.
    daemon
        .wedge(&env, &["run", "-d", "--name", "swapped", &reference, "x"])
        .expect_code(0);
    daemon.wedge(&env, &["wait", "swapped"]).expect_code(0);
    let logs = daemon.wedge(&env, &["logs", "swapped"]).stdout;
    assert!(logs.starts_with("arg[0]="), "{logs}");

    // Without the flag, the daemon compiles the image's Wasm itself.
    let env = Env::new();
    let daemon = TestDaemon::start(&env, &[]);
    daemon
        .wedge(&env, &["run", "-d", "--name", "compiled", &reference])
        .expect_code(0);
    daemon.wedge(&env, &["wait", "compiled"]).expect_code(0);
    let logs = daemon.wedge(&env, &["logs", "compiled"]).stdout;
    assert_eq!(logs, "hello from wedge\n");
}
