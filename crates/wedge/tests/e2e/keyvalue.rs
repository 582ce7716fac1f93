//! `wasi:keyvalue` and `wasi:config` end to end: the real `wedge` and `wedged` running the
//! `kv` guest component against the SQLite store under the data root.

use crate::common::{Env, TestDaemon, app_folder};
use std::time::{Duration, Instant};
use wedge_test_programs::edge::KV;

/// `wedge run [FLAGS…] kv.wasm ARGS…` must succeed; its stdout.
#[track_caller]
fn kv(env: &Env, flags: &[&str], args: &[&str]) -> String {
    let mut all = vec!["run"];
    all.extend_from_slice(flags);
    all.push(KV);
    all.extend_from_slice(args);
    let run = env.wedge(&all);
    run.expect_code(0);
    run.stdout
}

/// `wedge run [FLAGS…] kv.wasm ARGS…` must fail with the guest's exit 1; its stderr.
#[track_caller]
fn kv_fails(env: &Env, flags: &[&str], args: &[&str]) -> String {
    let mut all = vec!["run"];
    all.extend_from_slice(flags);
    all.push(KV);
    all.extend_from_slice(args);
    let run = env.wedge(&all);
    run.expect_code(1);
    run.stderr
}

#[test]
fn data_persists_across_runs_per_namespace_and_bucket() {
    let env = Env::new();
    kv(&env, &["--kv"], &["set", "greeting", "hello"]);
    assert_eq!(kv(&env, &["--kv"], &["get", "greeting"]), "hello\n");
    assert_eq!(kv(&env, &["--kv"], &["incr", "n", "5"]), "5\n");
    assert_eq!(kv(&env, &["--kv"], &["incr", "n", "2"]), "7\n");
    // Another namespace, another bucket: other data.
    assert_eq!(
        kv(&env, &["--kv-namespace", "other"], &["get", "greeting"]),
        "(none)\n"
    );
    assert_eq!(
        kv(&env, &["--kv"], &["--bucket", "b2", "get", "greeting"]),
        "(none)\n"
    );
    assert_eq!(kv(&env, &["--kv"], &["list"]), "greeting\nn\n");
    kv(&env, &["--kv"], &["delete", "greeting"]);
    assert_eq!(kv(&env, &["--kv"], &["list"]), "n\n");
    assert!(env.root().join("keyvalue.db").exists());
}

#[test]
fn without_a_grant_the_store_is_denied_and_not_created() {
    let env = Env::new();
    let err = kv_fails(&env, &[], &["get", "x"]);
    assert!(err.contains("access denied"), "{err}");
    assert!(!env.root().join("keyvalue.db").exists());
}

#[test]
fn quotas_refuse_keys_and_bytes_beyond_them_and_batches_are_all_or_nothing() {
    let env = Env::new();
    let err = kv_fails(&env, &["--kv-max-keys", "5"], &["fill", "10"]);
    assert!(err.contains("at k5: quota exceeded"), "{err}");
    assert_eq!(kv(&env, &["--kv"], &["list"]).lines().count(), 5);
    // Overwriting a key does not count twice.
    kv(&env, &["--kv-max-keys", "5"], &["fill", "5"]);

    let err = kv_fails(
        &env,
        &["--kv-namespace", "small", "--kv-max-bytes", "100"],
        &["fill", "10", "20"],
    );
    assert!(
        err.contains("at k4: quota exceeded") && err.contains("100 bytes"),
        "{err}"
    );

    let err = kv_fails(
        &env,
        &["--kv-namespace", "batch", "--kv-max-keys", "3"],
        &["batch", "5"],
    );
    assert!(err.contains("quota exceeded"), "{err}");
    assert_eq!(kv(&env, &["--kv-namespace", "batch"], &["list"]), "");
    kv(
        &env,
        &["--kv-namespace", "batch", "--kv-max-keys", "3"],
        &["batch", "3"],
    );
    assert_eq!(
        kv(&env, &["--kv-namespace", "batch"], &["list"]),
        "b0\nb1\nb2\n"
    );
}

#[test]
fn config_values_come_from_the_manifest_and_flags() {
    let env = Env::new();
    assert_eq!(kv(&env, &[], &["config", "site"]), "(none)\n");
    assert_eq!(
        kv(&env, &["--config", "site=north-3"], &["config", "site"]),
        "north-3\n"
    );
    let app = app_folder(
        &env,
        KV,
        "edge",
        "[config]\nsite = \"south-1\"\nmode = \"fast\"\n\n[keyvalue]\nmax_keys = 2\n",
    );
    let app = app.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        env.wedge(&all)
    };
    assert_eq!(run(&[app, "config", "site"]).stdout, "south-1\n");
    assert_eq!(
        run(&["--config", "site=west", app, "config", "site"]).stdout,
        "west\n"
    );
    assert_eq!(run(&[app, "config", "mode"]).stdout, "fast\n");
    // The manifest's [keyvalue] grants the store, in the app's namespace, with its quota.
    let full = run(&[app, "fill", "3"]);
    full.expect_code(1);
    assert!(
        full.stderr.contains("at k2: quota exceeded"),
        "{}",
        full.stderr
    );
    assert_eq!(run(&[app, "list"]).stdout, "k0\nk1\n");
    // The manifest's name is not a namespace another app could reach it by.
    assert_eq!(kv(&env, &["--kv-namespace", "edge"], &["list"]), "");
}

/// Two different files both named `sensor.wasm`, in different folders, do not see each
/// other's data; nor do two images with the same title in different repositories, or an
/// image naming another app's namespace. Sharing takes the operator's `--kv-namespace`.
#[test]
fn apps_cannot_reach_another_apps_data_by_copying_its_name() {
    let env = Env::new();
    let victim = env.path("victim/sensor.wasm");
    let thief = env.path("thief/sensor.wasm");
    for path in [&victim, &thief] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(KV, path).unwrap();
    }
    let (victim, thief) = (victim.to_str().unwrap(), thief.to_str().unwrap());
    let run = |app: &str, flags: &[&str], args: &[&str]| {
        let mut all = vec!["run", "--kv"];
        all.extend_from_slice(flags);
        all.push(app);
        all.extend_from_slice(args);
        let run = env.wedge(&all);
        run.expect_code(0);
        run.stdout
    };
    run(victim, &[], &["set", "password", "hunter2"]);
    assert_eq!(run(victim, &[], &["get", "password"]), "hunter2\n");
    assert_eq!(run(thief, &[], &["get", "password"]), "(none)\n");
    assert_eq!(
        run(thief, &["--kv-namespace", "sensor"], &["get", "password"]),
        "(none)\n"
    );
    // The operator shares on purpose.
    run(victim, &["--kv-namespace", "shared"], &["set", "k", "v"]);
    assert_eq!(
        run(thief, &["--kv-namespace", "shared"], &["get", "k"]),
        "v\n"
    );

    // Images: the same title, different repositories; one names a namespace.
    let dir = app_folder(&env, KV, "sensor", "[keyvalue]\nnamespace = \"shared\"\n");
    let dir = dir.to_str().unwrap();
    for tag in ["victim/sensor:1", "thief/sensor:1"] {
        env.wedge(&["build", "-t", tag, dir]).expect_code(0);
    }
    run("victim/sensor:1", &[], &["set", "token", "t0p"]);
    assert_eq!(run("victim/sensor:1", &[], &["get", "token"]), "t0p\n");
    assert_eq!(run("thief/sensor:1", &[], &["get", "token"]), "(none)\n");
    // Asking for the `shared` namespace in the image is not granted by --grant-requested.
    let grant = ["--grant-requested"];
    assert_eq!(run("thief/sensor:1", &grant, &["get", "k"]), "(none)\n");
    // A new tag of the same repository keeps its data.
    env.wedge(&["build", "-t", "victim/sensor:2", dir])
        .expect_code(0);
    assert_eq!(run("victim/sensor:2", &[], &["get", "token"]), "t0p\n");
}

#[test]
fn bad_key_value_flags_are_one_line_errors() {
    let env = Env::new();
    let mut args = vec!["run", "--kv-namespace", "a/b", KV, "list"];
    env.wedge(&args)
        .expect_code(125)
        .expect_one_line_error("key-value namespace");
    args = vec!["run", "--config", "novalue", KV, "list"];
    env.wedge(&args)
        .expect_code(125)
        .expect_one_line_error("KEY=VALUE");
    args = vec!["run", "--kv-max-bytes", "lots", KV, "list"];
    env.wedge(&args)
        .expect_code(125)
        .expect_one_line_error("lots");
}

/// Polls `wedge logs NAME` until it holds `needle` (a minute at most).
#[track_caller]
fn logs_contain(d: &TestDaemon, env: &Env, name: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = d.wedge(env, &["logs", name]);
        if logs.stdout.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{needle}` never logged: {}",
            logs.stdout
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn daemon_containers_share_a_namespace_and_data_survives_kill_9() {
    let env = Env::new();
    let mut d = TestDaemon::start(&env, &[]);
    let run_d = |d: &TestDaemon, name: &str, args: &[&str]| {
        let mut all = vec!["run", "-d", "--name", name, "--kv-namespace", "shared", KV];
        all.extend_from_slice(args);
        d.wedge(&env, &all).expect_code(0);
        d.wedge(&env, &["wait", name]).expect_code(0);
    };
    run_d(&d, "writer", &["set", "state", "42"]);
    run_d(&d, "counter", &["incr", "boots", "1"]);
    d.kill9();
    d.spawn();
    run_d(&d, "reader", &["get", "state"]);
    logs_contain(&d, &env, "reader", "42");
    run_d(&d, "counter2", &["incr", "boots", "1"]);
    logs_contain(&d, &env, "counter2", "2");
    // Without a grant, a container is denied.
    d.wedge(&env, &["run", "-d", "--name", "nokv", KV, "get", "state"])
        .expect_code(0);
    let exit = d.wedge(&env, &["wait", "nokv"]);
    assert_eq!(exit.stdout.trim(), "1");
    // A config value reaches a container.
    d.wedge(
        &env,
        &[
            "run", "-d", "--name", "conf", "--config", "site=x", KV, "config", "site",
        ],
    )
    .expect_code(0);
    d.wedge(&env, &["wait", "conf"]).expect_code(0);
    logs_contain(&d, &env, "conf", "x");
}
