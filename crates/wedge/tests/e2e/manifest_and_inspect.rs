//! Apps described by a `wedge.toml`, flags layered on top, and `wedge inspect`.

use crate::common::Env;
use wedge_test_programs::{p1, p2};

fn app_folder(env: &Env, manifest_extra: &str) -> String {
    let dir = env.path("app");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/in.txt"), "from manifest volume").unwrap();
    std::fs::copy(p1::ARGS_ENV, dir.join("args_env.wasm")).unwrap();
    std::fs::copy(p1::FILES, dir.join("files.wasm")).unwrap();
    let manifest = format!(
        "manifest_version = 1\n\n[app]\nname = \"demo\"\nwasm = \"args_env.wasm\"\nargs = [\"from-manifest\"]\n\n\
         [env]\nMODE = \"manifest\"\nKEEP = \"yes\"\n\n[[volumes]]\nhost = \"data\"\nguest = \"/data\"\n{manifest_extra}"
    );
    std::fs::write(dir.join("wedge.toml"), manifest).unwrap();
    dir.to_string_lossy().into_owned()
}

#[test]
fn a_folder_with_a_manifest_runs_with_its_grants() {
    let env = Env::new();
    let dir = app_folder(&env, "");
    let run = env.wedge(&["run", &dir, "extra"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "arg[0]=args_env.wasm\narg[1]=from-manifest\narg[2]=extra\nenv KEEP=yes\nenv MODE=manifest\n"
    );
    // Flags override the manifest's values and add to its grants.
    let run = env.wedge(&[
        "run",
        "-e",
        "MODE=flag",
        "-e",
        "NEW=1",
        &format!("{dir}/wedge.toml"),
    ]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "arg[0]=args_env.wasm\narg[1]=from-manifest\nenv KEEP=yes\nenv MODE=flag\nenv NEW=1\n"
    );
}

#[test]
fn manifest_volumes_and_limits_apply() {
    let env = Env::new();
    let dir = app_folder(&env, "\n[limits]\ntimeout = \"300ms\"\n");
    let toml = std::fs::read_to_string(format!("{dir}/wedge.toml"))
        .unwrap()
        .replace("args_env.wasm", "files.wasm");
    std::fs::write(
        format!("{dir}/wedge.toml"),
        toml.replace("args = [\"from-manifest\"]", "args = []"),
    )
    .unwrap();
    let run = env.wedge(&["run", &dir, "read", "/data/in.txt"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "from manifest volume\n");
    // The manifest's volume is read-only: its default mode.
    env.wedge(&["run", &dir, "write", "/data/x", "y"])
        .expect_code(1);
}

#[test]
fn bad_manifests_name_line_and_column() {
    let env = Env::new();
    let dir = app_folder(&env, "\n[limits]\nmemroy = \"1MiB\"\n");
    let run = env.wedge(&["run", &dir]);
    run.expect_code(125)
        .expect_one_line_error("wedge.toml:17:1: unknown field `memroy`");
    let empty = env.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    env.wedge(&["run", &empty.to_string_lossy()])
        .expect_code(125)
        .expect_one_line_error("without a `wedge.toml`");
}

#[test]
fn inspect_reports_kind_capabilities_and_digest() {
    let env = Env::new();
    let run = env.wedge(&["inspect", "--format", "json", p1::FILES]);
    run.expect_code(0);
    let info: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(info["kind"], "module");
    assert_eq!(info["wasi"], "preview1");
    assert_eq!(info["sha256"].as_str().unwrap().len(), 64);
    let caps = strings(&info["capabilities"]);
    assert!(
        caps.contains(&"filesystem") && caps.contains(&"environment"),
        "{caps:?}"
    );
    assert!(strings(&info["exports"]).contains(&"_start"));

    let run = env.wedge(&["inspect", "--format", "json", p2::NET]);
    let info: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(info["kind"], "component");
    assert_eq!(info["wasi"], "preview2");
    let caps = strings(&info["capabilities"]);
    assert!(
        caps.contains(&"network") && caps.contains(&"dns"),
        "{caps:?}"
    );
    assert!(
        strings(&info["exports"])
            .iter()
            .any(|e| e.starts_with("wasi:cli/run"))
    );

    // wedge's host APIs are named too, on both ABIs.
    for (wasm, want) in [
        (p1::NN, "nn"),
        (p2::NN, "nn"),
        (wedge_test_programs::edge::KV, "keyvalue"),
        (wedge_test_programs::c::PUBLISHER, "messaging"),
    ] {
        let run = env.wedge(&["inspect", "--format", "json", wasm]);
        let info: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let caps = strings(&info["capabilities"]);
        assert!(caps.contains(&want), "{wasm}: {caps:?}");
    }

    let run = env.wedge(&["inspect", p2::HELLO]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("kind:          component (WASI preview2)"),
        "{}",
        run.stdout
    );
}

/// A JSON array of strings, as `&str`s.
fn strings(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect()
}
