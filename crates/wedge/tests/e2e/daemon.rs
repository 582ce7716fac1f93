//! wedged end to end: a real daemon process with a temp root and a real SQLite file,
//! driven by the real CLI and by raw HTTP over its socket.

use crate::common::{
    Env, TestDaemon, cache_entries, cache_entries_once_compiled, raw_http, relative_to,
};
use serde_json::Value;
use std::time::{Duration, Instant};
use wedge_test_programs::{p1, p2, wat};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// `wedge run -d --name NAME REST…` on the daemon; it must succeed.
fn run_d(d: &TestDaemon, env: &Env, name: &str, rest: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(rest);
    d.wedge(env, &args).expect_code(0);
}

/// The container's summary from `wedge ps -a --format json`.
fn ps(d: &TestDaemon, env: &Env, name: &str) -> Value {
    let run = d.wedge(env, &["ps", "-a", "--format", "json"]);
    run.expect_code(0);
    json(&run.stdout)
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Polls `wedge logs NAME` until `check` holds on its output (a minute at most).
#[track_caller]
fn logs_show(d: &TestDaemon, env: &Env, name: &str, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = d.wedge(env, &["logs", name]).stdout;
        if check(&logs) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the logs never showed it: {logs}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `ps` until `check` holds (a minute at most: the machine may be busy).
#[track_caller]
fn eventually(d: &TestDaemon, env: &Env, name: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually_within(d, env, name, Duration::from_secs(60), check)
}

/// Polls `ps` until `check` holds (`limit` at most).
#[track_caller]
fn eventually_within(
    d: &TestDaemon,
    env: &Env,
    name: &str,
    limit: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let c = ps(d, env, name);
        if check(&c) {
            return c;
        }
        assert!(Instant::now() < deadline, "condition never held: {c}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_detached_logs_wait_and_rm() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    let run = d.wedge(&env, &["run", "-d", "--name", "hello", p1::HELLO]);
    run.expect_code(0);
    let id = run.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    d.wedge(&env, &["wait", "hello"]).expect_code(0);
    let c = ps(&d, &env, "hello");
    assert_eq!(c["state"], "exited");
    assert_eq!(c["exit_code"], 0);
    let logs = d.wedge(&env, &["logs", "hello"]);
    logs.expect_code(0);
    assert_eq!(logs.stdout, "hello from wedge\n");
    let info = d.wedge(&env, &["inspect", "hello"]);
    info.expect_code(0);
    assert_eq!(json(&info.stdout)[0]["id"], id);
    // Started again from `exited`; an id prefix works as a name.
    d.wedge(&env, &["start", &id[..8]]).expect_code(0);
    d.wedge(&env, &["wait", "hello"]).expect_code(0);
    assert_eq!(
        d.wedge(&env, &["logs", "--tail", "1", "hello"]).stdout,
        "hello from wedge\n"
    );
    assert_eq!(d.wedge(&env, &["logs", "hello"]).stdout.lines().count(), 2);
    d.wedge(&env, &["rm", "hello"]).expect_code(0);
    d.wedge(&env, &["inspect", "hello"]).expect_code(125);
    assert_eq!(ps(&d, &env, "hello"), Value::Null);
    // The app still runs in-process with no daemon at all.
    env.wedge(&["run", p1::HELLO]).expect_code(0);
}

#[test]
fn a_big_apps_first_start_runs_on_winch_and_the_next_on_cranelift_code() {
    // The code the daemon's engine (with epoch checks) gets from Cranelift.
    let cranelift = Env::new();
    let expected = cranelift.wedge(&["run", "--engine", "cranelift", "--timeout", "1h", wat::BIG]);
    expected.expect_code(0);

    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    run_d(&d, &env, "first", &[wat::BIG]);
    d.wedge(&env, &["wait", "first"]).expect_code(0);
    assert_eq!(d.wedge(&env, &["logs", "first"]).stdout, expected.stdout);
    // Cranelift's code, compiled on a thread of the daemon, is what the cache gets.
    assert_eq!(
        cache_entries_once_compiled(&env.root()),
        relative_to(&cranelift.root(), &cache_entries(&cranelift.root()))
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.log_text().contains("compiled with Cranelift") {
        assert!(Instant::now() < deadline, "{}", d.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The next start runs that code: nothing is compiled again.
    run_d(&d, &env, "second", &[wat::BIG]);
    d.wedge(&env, &["wait", "second"]).expect_code(0);
    assert_eq!(d.wedge(&env, &["logs", "second"]).stdout, expected.stdout);
    assert_eq!(cache_entries(&env.root()).len(), 1);
    assert_eq!(
        d.log_text().matches("compiled with Cranelift").count(),
        1,
        "{}",
        d.log_text()
    );
}

#[test]
fn invalid_transitions_and_bad_input_are_clear_errors_that_change_nothing() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    d.wedge(&env, &["create", "--name", "job", p1::SLEEP, "3600"])
        .expect_code(0);
    d.wedge(&env, &["pause", "job"])
        .expect_code(125)
        .expect_one_line_error("container `job` is not running");
    d.wedge(&env, &["stop", "job"])
        .expect_code(125)
        .expect_one_line_error("is not running");
    d.wedge(&env, &["create", "--name", "job", p1::HELLO])
        .expect_code(125)
        .expect_one_line_error("name `job` is already in use");
    d.wedge(&env, &["start", "job"]).expect_code(0);
    d.wedge(&env, &["start", "job"])
        .expect_code(125)
        .expect_one_line_error("container `job` is already running");
    d.wedge(&env, &["rm", "job"])
        .expect_code(125)
        .expect_one_line_error("cannot remove container `job`: it is running");
    d.wedge(&env, &["unpause", "job"])
        .expect_code(125)
        .expect_one_line_error("is not paused");
    d.wedge(&env, &["start", "nosuch"])
        .expect_code(125)
        .expect_one_line_error("no such container `nosuch`");
    d.wedge(&env, &["run", "-d", "-m", "lots", p1::HELLO])
        .expect_code(125);
    d.wedge(&env, &["run", "-d", "--restart", "sometimes", p1::HELLO])
        .expect_code(125)
        .expect_one_line_error("invalid restart policy `sometimes`");
    // Not in the daemon's store: the daemon pulls it, and a registry that is down is
    // a clear error.
    let run = d.wedge(&env, &["run", "-d", "localhost:1/no/such:1"]);
    run.expect_code(125);
    assert!(
        run.stderr
            .starts_with("Unable to find image `localhost:1/no/such:1`"),
        "{}",
        run.stderr
    );
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.starts_with("wedge: cannot pull `localhost:1/no/such:1`: "),
        "{last}"
    );
    assert!(last.contains("cannot connect"), "{last}");

    // Raw HTTP: proper codes and one-line JSON messages.
    let (status, body) = d.request("POST", "/v2/containers", Some("{not json"));
    assert_eq!(status, 400, "{body}");
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON")
    );
    let (status, _) = d.request(
        "POST",
        "/v2/containers",
        Some(r#"{"image":"/x.wasm","bogus":1}"#),
    );
    assert_eq!(status, 400);
    let big = format!(
        r#"{{"image":"{}","args":["{}"]}}"#,
        p1::HELLO,
        "a".repeat(2 << 20)
    );
    let (status, body) = d.request("POST", "/v2/containers", Some(&big));
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        d.request("POST", "/v2/containers/nosuch/start", None).0,
        404
    );
    assert_eq!(d.request("POST", "/v2/containers/job/start", None).0, 409);
    assert_eq!(d.request("GET", "/v2/nothing", None).0, 404);
    // The framework's own rejections come back in the same JSON shape.
    for (method, path, status) in [
        ("GET", "/v2/containers?all=yes", 400),
        ("PUT", "/v2/containers", 405),
        ("GET", "/v2/containers/job/logs?tail=x", 400),
    ] {
        let (got, body) = d.request(method, path, None);
        assert_eq!(got, status, "{method} {path}: {body}");
        assert!(
            json(&body)["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let (status, body) = d.request("GET", "/v2/containers?all=true", None);
    assert_eq!(status, 200);
    let list = json(&body);
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "nothing else was created: {list}"
    );
    assert_eq!(list[0]["state"], "running");
    // A wait on a container that is removed meanwhile ends with "no such container".
    d.wedge(&env, &["create", "--name", "never", p1::HELLO])
        .expect_code(0);
    let waiter = {
        let host = d.host();
        std::thread::spawn(move || {
            crate::common::wedge_command()
                .args(["-H", &host, "wait", "never"])
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    d.wedge(&env, &["rm", "never"]).expect_code(0);
    let out = waiter.join().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such container `never`"));
    d.wedge(&env, &["rm", "-f", "job"]).expect_code(0);
}

#[test]
fn restart_policies_with_failing_and_trapping_guests() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    for (name, policy, wasm) in [
        ("exit", "on-failure:2", p1::EXIT42),
        ("trap", "on-failure:1", p1::TRAP),
        ("ok", "on-failure", p1::HELLO),
        ("always", "always", p1::HELLO),
    ] {
        run_d(&d, &env, name, &["--restart", policy, wasm]);
    }
    let exit = eventually(&d, &env, "exit", |c| c["state"] == "exited");
    assert_eq!(exit["exit_code"], 42);
    assert_eq!(exit["restart_count"], 2);
    let trap = eventually(&d, &env, "trap", |c| c["state"] == "exited");
    assert_eq!(trap["exit_code"], 134);
    assert_eq!(trap["restart_count"], 1);
    assert!(
        trap["error"].as_str().unwrap().contains("guest trapped"),
        "{trap}"
    );
    let ok = eventually(&d, &env, "ok", |c| c["state"] == "exited");
    assert_eq!(ok["restart_count"], 0);
    eventually(&d, &env, "always", |c| {
        c["restart_count"].as_u64() >= Some(3)
    });
    d.wedge(&env, &["stop", "always"]).expect_code(0);
    let stopped = eventually(&d, &env, "always", |c| c["state"] == "exited");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ps(&d, &env, "always")["restart_count"],
        stopped["restart_count"]
    );
    let logs = d.wedge(&env, &["logs", "trap"]);
    assert_eq!(logs.stdout.matches("about to trap").count(), 2);
    assert!(logs.stderr.contains("guest trapped"), "{}", logs.stderr);
    let metrics = d.request("GET", "/metrics", None).1;
    assert!(
        metrics.contains("wedge_container_traps_total 2\n"),
        "{metrics}"
    );
}

#[test]
fn stop_kill_and_pause_of_busy_and_sleeping_guests() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    run_d(&d, &env, "busy", &[p1::SPIN]);
    run_d(&d, &env, "sleepy", &[p1::SLEEP, "3600"]);
    run_d(&d, &env, "reader", &[p1::STDIO]);

    // Pause holds a busy loop: its CPU time stops growing, then grows again.
    let cpu = |name: &str| {
        let run = d.wedge(&env, &["stats", "--no-stream", "--format", "json", name]);
        run.expect_code(0);
        let v = json(&run.stdout);
        let v = if v.is_array() { v[0].clone() } else { v };
        v["cpu_time_ns"].as_u64().unwrap()
    };
    d.wedge(&env, &["pause", "busy"]).expect_code(0);
    assert_eq!(ps(&d, &env, "busy")["state"], "paused");
    std::thread::sleep(Duration::from_millis(100));
    let held = cpu("busy");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        cpu("busy") - held < 20_000_000,
        "a paused guest kept running"
    );
    d.wedge(&env, &["unpause", "busy"]).expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while cpu("busy") < held + 50_000_000 {
        assert!(Instant::now() < deadline, "an unpaused guest did not run");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A polite stop: the reader sees end of input and exits by itself.
    d.wedge(&env, &["stop", "-t", "10", "reader"])
        .expect_code(0);
    let reader = ps(&d, &env, "reader");
    assert_eq!(reader["exit_code"], 0, "{reader}");
    assert!(
        d.wedge(&env, &["logs", "reader"])
            .stderr
            .contains("stderr: 0 bytes")
    );

    // A busy loop ignores stdin: killed when the grace period ends.
    let t = Instant::now();
    d.wedge(&env, &["stop", "-t", "1", "busy"]).expect_code(0);
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(ps(&d, &env, "busy")["exit_code"], 137);

    // A guest sleeping in the host is killed at once.
    let t = Instant::now();
    d.wedge(&env, &["kill", "sleepy"]).expect_code(0);
    assert!(
        t.elapsed() < Duration::from_secs(600),
        "it sleeps for an hour"
    );
    let sleepy = ps(&d, &env, "sleepy");
    assert_eq!(sleepy["state"], "exited");
    assert_eq!(sleepy["exit_code"], 137);
}

#[test]
fn kill_9_of_the_daemon_in_a_loop_loses_nothing() {
    let env = Env::new();
    let mut d = TestDaemon::start(&env, &[]);
    run_d(
        &d,
        &env,
        "keeper",
        &["--restart", "always", p1::SLEEP, "3600"],
    );
    run_d(&d, &env, "done", &[p1::EXIT42]);
    d.wedge(&env, &["wait", "done"]).expect_code(0);
    let mut acknowledged = vec!["keeper".to_string(), "done".to_string()];
    for round in 0..20 {
        let name = format!("c{round}");
        // A create, a start and a stop in flight, cut at a point that moves each round.
        let host = d.host();
        let root = env.root();
        let worker = {
            let name = name.clone();
            std::thread::spawn(move || {
                let wedge = |args: &[&str]| {
                    crate::common::wedge_command()
                        .arg("-H")
                        .arg(&host)
                        .args(args)
                        .env("WEDGE_ROOT", &root)
                        .output()
                        .map(|o| o.status.success())
                        .unwrap_or(false)
                };
                let created = wedge(&[
                    "create",
                    "--name",
                    &name,
                    "--restart",
                    "unless-stopped",
                    p1::SLEEP,
                    "3600",
                ]);
                let started = created && wedge(&["start", &name]);
                let stopped = started && wedge(&["stop", "-t", "0", &name]);
                (created, stopped)
            })
        };
        std::thread::sleep(Duration::from_millis(5 + (round as u64 * 7) % 60));
        d.kill9();
        let (created, stopped) = worker.join().unwrap();
        d.spawn();
        if created {
            acknowledged.push(name.clone());
        }
        let list = d.wedge(&env, &["ps", "-a", "--format", "json"]);
        list.expect_code(0);
        let list = json(&list.stdout);
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for n in &acknowledged {
            assert!(
                names.contains(&n.as_str()),
                "round {round}: `{n}` lost: {names:?}"
            );
        }
        let done = ps(&d, &env, "done");
        assert_eq!(
            (done["state"].as_str(), done["exit_code"].as_i64()),
            (Some("exited"), Some(42))
        );
        eventually(&d, &env, "keeper", |c| c["state"] == "running");
        if stopped {
            let c = ps(&d, &env, &name);
            assert_eq!(
                c["state"], "exited",
                "round {round}: an operator's stop holds: {c}"
            );
        }
    }
    let keeper = ps(&d, &env, "keeper");
    assert!(keeper["restart_count"].as_u64().unwrap() >= 20, "{keeper}");
    let db = rusqlite::Connection::open(env.root().join("wedged.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn tcp_listener_requires_the_bearer_token() {
    let env = Env::new();
    let token = "s3cret-token-0123456789";
    std::fs::write(env.path("token"), format!("{token}\n")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let token_file = env.path("token").display().to_string();
    let d = TestDaemon::start(&env, &["--listen", &addr, "--token-file", &token_file]);
    let tcp = |token: Option<&str>, path: &str| {
        raw_http(
            std::net::TcpStream::connect(&addr).ok(),
            "GET",
            path,
            None,
            token,
        )
    };
    assert_eq!(tcp(None, "/v2/version").0, 401);
    assert_eq!(tcp(Some("wrong"), "/v2/version").0, 401);
    assert_eq!(tcp(Some("s3cret-token-012345678"), "/v2/containers").0, 401);
    assert_eq!(tcp(Some(token), "/v2/version").0, 200);
    assert_eq!(tcp(Some(token), "/metrics").0, 200);
    // The CLI with WEDGE_TOKEN.
    let host = format!("tcp://{addr}");
    let out = crate::common::wedge_command()
        .args(["-H", &host, "ps"])
        .env("WEDGE_TOKEN", token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crate::common::wedge_command()
        .args(["-H", &host, "ps"])
        .env_remove("WEDGE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
    // The socket needs no token.
    assert_eq!(d.request("GET", "/v2/version", None).0, 200);
}

#[test]
fn events_stream_and_metrics() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    let mut events = crate::common::wedge_command()
        .args(["-H", &d.host(), "events", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<Value>();
    let stdout = events.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if tx.send(json(&line)).is_err() {
                break;
            }
        }
    });
    // The stream is live once a throwaway container's creation shows up in it.
    let deadline = Instant::now() + Duration::from_secs(60);
    'subscribed: loop {
        assert!(Instant::now() < deadline, "no event ever arrived");
        d.wedge(&env, &["create", "--name", "warm", p1::HELLO])
            .expect_code(0);
        d.wedge(&env, &["rm", "warm"]).expect_code(0);
        while let Ok(event) = lines.recv_timeout(Duration::from_millis(500)) {
            if event["action"] == "destroy" {
                break 'subscribed;
            }
        }
    }
    run_d(&d, &env, "ev", &["-m", "2MiB", p1::MEMHOG]);
    d.wedge(&env, &["wait", "ev"]).expect_code(0);
    d.wedge(&env, &["rm", "ev"]).expect_code(0);
    let mut actions = Vec::new();
    while actions.last().map(String::as_str) != Some("destroy") {
        let event = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("events stopped after {actions:?}"));
        actions.push(event["action"].as_str().unwrap().to_string());
    }
    let _ = events.kill();
    let _ = events.wait();
    assert_eq!(actions, ["create", "start", "oom", "die", "destroy"]);
    let metrics = d.request("GET", "/metrics", None).1;
    for line in [
        "wedge_container_starts_total 1\n",
        "wedge_container_exits_total{reason=\"oom\"} 1\n",
        "wedge_containers{state=\"exited\"} 0\n",
        "wedge_container_start_latency_seconds_count 1\n",
    ] {
        assert!(metrics.contains(line), "`{line}` missing:\n{metrics}");
    }
}

#[test]
fn a_thousand_containers_in_one_daemon() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    let n = 1000;
    for i in 0..n {
        let body = format!(
            r#"{{"name":"c{i}","image":"{}","args":["3600"]}}"#,
            p1::SLEEP
        );
        let (status, answer) = d.request("POST", "/v2/containers", Some(&body));
        assert_eq!(status, 201, "{answer}");
        let (status, answer) = d.request("POST", &format!("/v2/containers/c{i}/start"), None);
        assert_eq!(status, 204, "{answer}");
    }
    let t = Instant::now();
    let list = d.wedge(&env, &["ps", "--format", "json"]);
    list.expect_code(0);
    let running = json(&list.stdout);
    assert_eq!(running.as_array().unwrap().len(), n);
    assert!(
        running
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["state"] == "running")
    );
    eprintln!("ps of {n} running containers: {:?}", t.elapsed());
    let metrics = d.request("GET", "/metrics", None).1;
    assert!(metrics.contains(&format!("wedge_containers{{state=\"running\"}} {n}\n")));
}

#[test]
fn a_looping_a_flooding_and_a_memory_hungry_guest_do_not_hold_up_the_others() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &["--log-max-size", "256KiB", "--log-max-files", "2"]);
    run_d(&d, &env, "loop", &[p1::SPIN]);
    run_d(&d, &env, "flood", &[p1::FLOOD]);
    run_d(
        &d,
        &env,
        "hog",
        &["--restart", "always", "-m", "8MiB", p1::MEMHOG],
    );
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..5 {
        let t = Instant::now();
        let name = format!("quick{i}");
        run_d(&d, &env, &name, &[p1::HELLO]);
        d.wedge(&env, &["wait", &name]).expect_code(0);
        assert_eq!(d.wedge(&env, &["logs", &name]).stdout, "hello from wedge\n");
        // Starved, it would never finish; a loaded machine may still make it slow.
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "run {i} took {:?}",
            t.elapsed()
        );
    }
    // The flood is rotated: two files of at most 256 KiB (on a loaded machine the
    // flood may need a moment more to fill the first).
    let id = ps(&d, &env, "flood")["id"].as_str().unwrap().to_string();
    let log_sizes = || -> Vec<u64> {
        std::fs::read_dir(env.root().join("containers"))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&id))
            .map(|e| e.metadata().unwrap().len())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut sizes = log_sizes();
    while sizes.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        sizes = log_sizes();
    }
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s <= 256 << 10), "{sizes:?}");
    let tail = d.wedge(&env, &["logs", "--tail", "3", "flood"]);
    assert_eq!(tail.stdout.lines().count(), 3);
    assert!(ps(&d, &env, "hog")["restart_count"].as_u64().unwrap() >= 1);
    for name in ["loop", "flood", "hog"] {
        d.wedge(&env, &["rm", "-f", name]).expect_code(0);
    }
}

#[test]
fn without_room_for_the_instance_pool_the_daemon_allocates_on_demand() {
    // 16 GiB of address space cannot hold 1000 pooled slots (small boards hit this).
    let env = Env::new();
    let script = format!(
        "ulimit -v 16777216; exec {} --root {} --socket {}",
        crate::common::wedged().display(),
        env.root().display(),
        env.path("wedged.sock").display()
    );
    let mut daemon = std::process::Command::new("bash")
        .args(["-c", &script])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let socket = env.path("wedged.sock");
    let deadline = Instant::now() + Duration::from_secs(60);
    while raw_http(
        std::os::unix::net::UnixStream::connect(&socket).ok(),
        "GET",
        "/v2/_ping",
        None,
        None,
    )
    .0 != 200
    {
        assert!(Instant::now() < deadline, "wedged did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let host = format!("unix://{}", socket.display());
    env.wedge(&["-H", &host, "run", "-d", "--name", "h", p1::HELLO])
        .expect_code(0);
    env.wedge(&["-H", &host, "wait", "h"]).expect_code(0);
    assert_eq!(
        env.wedge(&["-H", &host, "logs", "h"]).stdout,
        "hello from wedge\n"
    );
    let _ = daemon.kill();
    let out = daemon.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("pooling allocator unavailable"), "{log}");
    assert!(log.contains("on-demand allocation"), "{log}");
}

#[test]
fn logs_follow_streams_new_lines_and_ends_with_the_run() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    run_d(&d, &env, "t", &[p1::TICKER]);
    logs_show(&d, &env, "t", |logs| logs.contains("tick "));
    let mut follower = crate::common::wedge_command()
        .args(["-H", &d.host(), "logs", "-f", "--tail", "1", "t"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the guest once the follower has streamed ten ticks.
    let mut reader = std::io::BufReader::new(follower.stdout.take().unwrap());
    let mut stdout = String::new();
    while stdout.matches("tick ").count() < 10 {
        let read = std::io::BufRead::read_line(&mut reader, &mut stdout).unwrap();
        assert!(read > 0, "the follower ended early: {stdout}");
    }
    d.wedge(&env, &["kill", "t"]).expect_code(0);
    std::io::Read::read_to_string(&mut reader, &mut stdout).unwrap();
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success());
    let ticks: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert!(
        ticks.len() >= 10,
        "followed only {} ticks: {stdout}",
        ticks.len()
    );
    assert!(
        ticks.windows(2).all(|w| w[1] == w[0] + 1),
        "a tick was lost: {ticks:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("wedged: killed"));
}

#[test]
fn a_full_instance_pool_is_a_clear_start_failure_not_a_trap() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &["--pool-size", "2"]);
    for name in ["a", "b", "c"] {
        run_d(&d, &env, name, &[p1::SLEEP, "3600"]);
    }
    let c = eventually(&d, &env, "c", |c| c["state"] == "exited");
    assert_eq!(c["exit_code"], 125, "{c}");
    let error = c["error"].as_str().unwrap();
    assert!(error.starts_with("cannot instantiate the app: "), "{error}");
    assert!(error.contains("concurrent limit of 2"), "{error}");
    d.wedge(&env, &["rm", "-f", "a"]).expect_code(0);
    d.wedge(&env, &["start", "c"]).expect_code(0);
    assert_eq!(ps(&d, &env, "c")["state"], "running");
}

#[test]
fn a_guest_opening_files_in_a_loop_stops_at_its_cap_and_spares_the_daemon() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    let vol = env.path("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f.txt"), "x").unwrap();
    let volume = format!("{}:/data", vol.display());
    run_d(&d, &env, "ticker", &[p1::TICKER]);
    run_d(&d, &env, "hog1", &["-v", &volume, p1::FDHOG, "/data/f.txt"]);
    run_d(&d, &env, "hog2", &["-v", &volume, p2::FDHOG, "/data/f.txt"]);

    // The core module is refused at the default cap and keeps running with what it holds.
    eventually_within(&d, &env, "hog1", Duration::from_secs(60), |_| {
        d.wedge(&env, &["logs", "hog1"]).stdout.contains("opened")
    });
    let logs = d.wedge(&env, &["logs", "hog1"]).stdout;
    assert!(logs.starts_with("opened 256 files: "), "{logs}");
    assert_eq!(ps(&d, &env, "hog1")["state"], "running");
    // The component fails in itself at its table's cap, or holds at most that many.
    eventually_within(&d, &env, "hog2", Duration::from_secs(60), |c| {
        c["state"] != "running" || {
            let logs = d.wedge(&env, &["logs", "hog2"]).stdout;
            logs.contains("opened")
        }
    });

    // The daemon still answers, and the ticker's new lines still reach its log.
    let ticks = |env: &Env| {
        let logs = d.wedge(env, &["logs", "ticker"]);
        logs.expect_code(0);
        logs.stdout
            .lines()
            .filter(|l| l.starts_with("tick "))
            .count()
    };
    let before = ticks(&env);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ticks(&env) < before + 5 {
        assert!(
            Instant::now() < deadline,
            "the ticker's lines stopped arriving"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ps(&d, &env, "ticker")["state"], "running");
    for name in ["hog1", "hog2", "ticker"] {
        d.wedge(&env, &["rm", "-f", name]).expect_code(0);
    }
}

#[test]
fn stop_calls_the_apps_stop_function_with_its_state_intact() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    run_d(&d, &env, "g", &[p1::GRACEFUL]);
    logs_show(&d, &env, "g", |logs| logs.matches("working ").count() >= 3);
    // Without its stop function the guest would run until the grace period ends.
    let t = Instant::now();
    d.wedge(&env, &["stop", "-t", "600", "g"]).expect_code(0);
    assert!(
        t.elapsed() < Duration::from_secs(300),
        "the stop function was not called"
    );
    let g = ps(&d, &env, "g");
    assert_eq!(
        (g["state"].as_str(), g["exit_code"].as_i64()),
        (Some("exited"), Some(0)),
        "{g}"
    );
    let logs = d.wedge(&env, &["logs", "g"]).stdout;
    let worked = logs.lines().filter(|l| l.starts_with("working ")).count();
    assert!(worked >= 3, "{logs}");
    assert_eq!(
        logs.lines().last(),
        Some(format!("stopping after {worked} steps").as_str())
    );
    // A kill does not call it.
    d.wedge(&env, &["start", "g"]).expect_code(0);
    std::thread::sleep(Duration::from_millis(200));
    d.wedge(&env, &["kill", "g"]).expect_code(0);
    assert_eq!(ps(&d, &env, "g")["exit_code"], 137);
    assert_eq!(
        d.wedge(&env, &["logs", "g"])
            .stdout
            .matches("stopping after")
            .count(),
        1
    );
}

#[test]
fn run_detached_pulls_a_missing_image_into_the_daemons_store() {
    let registry = crate::common::TestRegistry::start(None);
    let builder = Env::new();
    let dir = crate::common::app_folder(&builder, p1::HELLO, "hello", "");
    let image = format!("{}/demo/hello:1", registry.host);
    builder
        .wedge(&["build", "-t", &image, dir.to_str().unwrap()])
        .expect_code(0);
    builder.wedge(&["push", &image]).expect_code(0);

    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    let run = d.wedge(&env, &["run", "-d", "--name", "h", &image]);
    run.expect_code(0);
    assert!(run.stderr.contains("pulling it"), "{}", run.stderr);
    d.wedge(&env, &["wait", "h"]).expect_code(0);
    assert_eq!(d.wedge(&env, &["logs", "h"]).stdout, "hello from wedge\n");
    // Now local: no second pull.
    let again = d.wedge(&env, &["run", "-d", "--name", "h2", &image]);
    again.expect_code(0);
    assert_eq!(again.stderr, "");
    let (status, body) = d.request(
        "POST",
        "/v2/images/pull",
        Some(r#"{"reference":"localhost:1/x:1"}"#),
    );
    assert_eq!(status, 502, "{body}");
}

#[test]
fn sigterm_shuts_the_daemon_down_cleanly_and_policies_apply_at_the_next_start() {
    let env = Env::new();
    let mut d = TestDaemon::start(&env, &[]);
    run_d(
        &d,
        &env,
        "keep",
        &["--restart", "unless-stopped", p1::SLEEP, "3600"],
    );
    run_d(&d, &env, "once", &[p1::SLEEP, "3600"]);
    let status = d.terminate();
    assert!(status.success(), "{status}: {}", d.log_text());
    assert!(!d.socket.exists(), "the socket is removed");
    d.spawn();
    let keep = eventually(&d, &env, "keep", |c| c["state"] == "running");
    assert_eq!(keep["restart_count"], 1);
    let once = ps(&d, &env, "once");
    assert_eq!(
        (once["state"].as_str(), once["exit_code"].as_i64()),
        (Some("exited"), Some(137))
    );
    assert_eq!(once["error"], "wedged stopped while it was running");
}

/// GET `path` from an HTTP container listening on 127.0.0.1:`port`: (status, body), or
/// status 0 while nothing listens.
fn http_get(port: u16, path: &str) -> (u16, String) {
    raw_http(
        std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        "GET",
        path,
        None,
        None,
    )
}

/// A loopback port that is free now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn http_containers_serve_per_request_limits_log_metrics_stop_and_kill() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}");
    run_d(
        &d,
        &env,
        "api",
        &[
            "-p",
            &publish,
            "--timeout",
            "500ms",
            "-e",
            "GREETING=hi",
            "--restart",
            "always",
            wedge_test_programs::http::PROBE,
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(port, "/").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the HTTP container never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(http_get(port, "/env?GREETING"), (200, "hi".into()));
    assert_eq!(http_get(port, "/counter"), (200, "count 1\n".into()));
    assert_eq!(http_get(port, "/counter"), (200, "count 1\n".into()));
    // Without the 500 ms limit, `/spin` would never answer.
    assert_eq!(http_get(port, "/spin").0, 504);
    assert_eq!(http_get(port, "/trap").0, 500);
    assert_eq!(http_get(port, "/").0, 200, "the server keeps serving");
    let summary = ps(&d, &env, "api");
    assert_eq!(summary["state"], "running");
    assert_eq!(summary["ports"], publish.as_str());

    let logs = d.wedge(&env, &["logs", "api"]);
    logs.expect_code(0);
    assert!(
        logs.stdout.contains("\"GET /env?GREETING HTTP/1.1\" 200"),
        "access log missing: {}",
        logs.stdout
    );
    assert!(logs.stdout.contains("\"GET /spin HTTP/1.1\" 504"));
    let metrics = d.request("GET", "/metrics", None).1;
    for line in [
        "wedge_http_requests_total{container=\"api\",code=\"504\"} 1\n",
        "wedge_http_requests_total{container=\"api\",code=\"500\"} 1\n",
        "wedge_http_guest_failures_total{container=\"api\",reason=\"timeout\"} 1\n",
        "wedge_http_guest_failures_total{container=\"api\",reason=\"trap\"} 1\n",
    ] {
        assert!(metrics.contains(line), "`{line}` missing:\n{metrics}");
    }

    // A second server on the same port cannot bind: its run ends with 125.
    run_d(
        &d,
        &env,
        "clash",
        &["-p", &publish, wedge_test_programs::http::HELLO],
    );
    let clash = eventually(&d, &env, "clash", |c| c["state"] == "exited");
    assert_eq!(clash["exit_code"], 125);
    assert!(
        clash["error"].as_str().unwrap().contains("cannot listen"),
        "{clash}"
    );

    // stop drains and ends the run with 0; the port is closed; start serves again.
    d.wedge(&env, &["stop", "api"]).expect_code(0);
    let stopped = eventually(&d, &env, "api", |c| c["state"] == "exited");
    assert_eq!(stopped["exit_code"], 0);
    assert_eq!(
        http_get(port, "/").0,
        0,
        "the port must be closed after stop"
    );
    d.wedge(&env, &["start", "api"]).expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(port, "/").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the restarted container never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.wedge(&env, &["kill", "api"]).expect_code(0);
    let killed = eventually(&d, &env, "api", |c| c["state"] == "exited");
    assert_eq!(killed["exit_code"], 137);

    // A component that is not an HTTP app is refused at start, with the reason.
    d.wedge(
        &env,
        &[
            "run",
            "-d",
            "-p",
            &free_port().to_string(),
            wedge_test_programs::p2::HELLO,
        ],
    )
    .expect_one_line_error("wasi:http/incoming-handler");
}

/// An HTTP container's `--body-timeout` (API field `body_timeout`): a client that
/// stalls its request body is cut off with 408 and the server keeps serving.
#[test]
fn an_http_container_cuts_a_stalled_request_body() {
    use std::io::{Read, Write};
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}");
    run_d(
        &d,
        &env,
        "api",
        &[
            "-p",
            &publish,
            "--body-timeout",
            "1s",
            wedge_test_programs::http::PROBE,
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the HTTP container never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.write_all(b"POST /echo HTTP/1.1\r\nHost: api\r\nContent-Length: 1000\r\n\r\nabc")
        .unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 408");
    assert_eq!(http_get(port, "/").0, 200, "the server keeps serving");
}

// ---- hardening (issue 15): the daemon's own resources, files and state ----

/// Polls `check` until it gives a value (60 s at most).
#[track_caller]
fn poll<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `wedge -H <d> ARGS` as a child, giving up (and failing) after 60 s.
#[track_caller]
fn wedge_within_a_minute(d: &TestDaemon, args: &[&str]) -> std::process::Output {
    let mut child = crate::common::wedge_command()
        .arg("-H")
        .arg(d.host())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`wedge {}` did not finish within a minute", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_stop_with_a_huge_grace_period_lets_kill_and_rm_f_win_at_once() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    for (name, action) in [("s1", &["kill", "s1"][..]), ("s2", &["rm", "-f", "s2"][..])] {
        run_d(&d, &env, name, &[p1::STUBBORN]);
        poll("the guest started", || {
            d.wedge(&env, &["logs", name])
                .stdout
                .contains("started")
                .then_some(())
        });
        // The guest's stop function ignores the stop: only the grace period (a month)
        // or a kill ends it.
        let host = d.host();
        let stopper = std::thread::spawn(move || {
            crate::common::wedge_command()
                .args(["-H", &host, "stop", "-t", "2592000", name])
                .output()
                .unwrap()
        });
        poll("the stop reached the guest", || {
            d.wedge(&env, &["logs", name])
                .stdout
                .contains("ignoring the stop")
                .then_some(())
        });
        let out = wedge_within_a_minute(&d, action);
        assert!(
            out.status.success(),
            "`{}`: {}",
            action.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        // The stop ends with the run the kill ended.
        let stopped = stopper.join().unwrap();
        assert!(
            stopped.status.success(),
            "{}",
            String::from_utf8_lossy(&stopped.stderr)
        );
    }
    assert_eq!(ps(&d, &env, "s1")["exit_code"], 137);
    assert_eq!(ps(&d, &env, "s2"), Value::Null, "`rm -f` removed it");
}

#[test]
fn an_unreadable_row_marks_its_container_dead_and_the_daemon_still_starts() {
    let env = Env::new();
    let mut d = TestDaemon::start(&env, &[]);
    d.wedge(&env, &["create", "--name", "good", p1::HELLO])
        .expect_code(0);
    d.wedge(&env, &["create", "--name", "future", p1::HELLO])
        .expect_code(0);
    d.wedge(&env, &["create", "--name", "odd", p1::HELLO])
        .expect_code(0);
    d.kill9();
    // Rows as a later version might write them: a config field this one does not
    // know, and a state it does not know.
    let db = rusqlite::Connection::open(env.root().join("wedged.db")).unwrap();
    let config = format!(r#"{{"image":"{}","checkpoint":"always"}}"#, p1::HELLO);
    db.execute(
        "UPDATE containers SET config = ?1 WHERE name = 'future'",
        [&config],
    )
    .unwrap();
    db.execute(
        "UPDATE containers SET state = 'hibernating' WHERE name = 'odd'",
        [],
    )
    .unwrap();
    drop(db);
    d.spawn();
    let log = d.log_text();
    for name in ["future", "odd"] {
        let c = ps(&d, &env, name);
        assert_eq!(c["state"], "dead", "{c}");
        let error = c["error"].as_str().unwrap();
        assert!(error.starts_with("unreadable state: "), "{error}");
        assert!(
            log.lines().any(|l| l.starts_with("wedged: container `")
                && l.contains(&format!("`{name}`"))
                && l.contains("marked dead")),
            "{log}"
        );
    }
    assert!(
        ps(&d, &env, "future")["error"]
            .as_str()
            .unwrap()
            .contains("checkpoint")
    );
    assert!(
        ps(&d, &env, "odd")["error"]
            .as_str()
            .unwrap()
            .contains("unknown state `hibernating`")
    );
    // The rest works as before: the good one runs, the dead ones can be removed.
    d.wedge(&env, &["start", "good"]).expect_code(0);
    d.wedge(&env, &["wait", "good"]).expect_code(0);
    assert_eq!(
        d.wedge(&env, &["logs", "good"]).stdout,
        "hello from wedge\n"
    );
    d.wedge(&env, &["start", "odd"])
        .expect_code(125)
        .expect_one_line_error("odd");
    d.wedge(&env, &["rm", "future", "odd"]).expect_code(0);
    d.kill9();
    d.spawn();
    assert_eq!(ps(&d, &env, "future"), Value::Null);
    assert_eq!(ps(&d, &env, "good")["state"], "exited");
}

/// Whether the tests run as root (needed to act as a second user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// Every file and folder under `dir` whose mode lets anyone but its owner in.
fn not_private(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.mode() & 0o077 != 0 {
            out.push(format!("{} {:o}", path.display(), meta.mode() & 0o7777));
        }
        if meta.is_dir() {
            todo.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

#[test]
fn the_data_root_is_private_to_the_daemons_user() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let mut d = TestDaemon::start(&env, &[]);
    run_d(
        &d,
        &env,
        "db",
        &["-e", "DB_PASSWORD=hunter2", "--kv", p1::ARGS_ENV],
    );
    d.wedge(&env, &["wait", "db"]).expect_code(0);
    assert!(d.wedge(&env, &["logs", "db"]).stdout.contains("hunter2"));
    let root = env.root();
    assert!(root.join("wedged.db-wal").exists());
    assert_eq!(not_private(&root), Vec::<String>::new());

    // A second local user cannot read the secret, even where the folders above the
    // root let everyone through.
    if is_root() {
        use std::os::unix::process::CommandExt;
        std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for file in ["wedged.db-wal", "wedged.db"] {
            let out = std::process::Command::new("cat")
                .arg(root.join(file))
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap();
            assert!(!out.status.success(), "uid 65534 read `{file}`");
            assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
        }
    }

    // A root made loose (an older wedge, another umask) is made private at start.
    d.kill9();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        root.join("wedged.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(root.join("containers/stale.log"), "x").unwrap();
    std::fs::set_permissions(
        root.join("containers/stale.log"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    assert!(!not_private(&root).is_empty());
    d.spawn();
    assert_eq!(not_private(&root), Vec::<String>::new());
}

#[test]
fn a_socket_folder_or_socket_another_user_controls_is_refused() {
    use std::os::unix::fs::{PermissionsExt, chown};
    use std::os::unix::process::CommandExt;
    if !is_root() {
        eprintln!("skipped: acting as two users needs root");
        return;
    }
    // The victim is uid 65534 without $XDG_RUNTIME_DIR: its socket folder is
    // $TMPDIR/wedge-65534, in a place every user can write to.
    let env = Env::new();
    let tmp = env.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = env.path("victim-root");
    std::fs::create_dir(&root).unwrap();
    chown(&root, Some(65534), Some(65534)).unwrap();
    let folder = tmp.join("wedge-65534");
    let as_victim = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("WEDGE_HOST")
            .env("TMPDIR", &tmp)
            .env("WEDGE_ROOT", &root)
            .env("HOME", &root)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    let one_line = |out: &std::process::Output, prefix: &str, needle: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(prefix), "{stderr}");
        assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    };
    let wedged = crate::common::wedged();
    let wedged = wedged.to_str().unwrap();
    let wedge = env!("CARGO_BIN_EXE_wedge");

    // The attacker (uid 4242) made the folder first.
    std::fs::create_dir(&folder).unwrap();
    chown(&folder, Some(4242), Some(4242)).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let needle = "it is owned by uid 4242, not by this user (uid 65534)";
    let out = as_victim(wedged, &["--pool-size", "0"]);
    assert_eq!(out.status.code(), Some(1));
    one_line(&out, "wedged: refusing the socket folder `", needle);
    let out = as_victim(wedge, &["ps"]);
    assert_eq!(out.status.code(), Some(125));
    one_line(&out, "wedge: refusing the socket folder `", needle);

    // The victim's own folder, but others may write in it.
    chown(&folder, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = as_victim(wedged, &["--pool-size", "0"]);
    assert_eq!(out.status.code(), Some(1));
    one_line(&out, "wedged: ", "writable by other users (mode 777)");
    let out = as_victim(wedge, &["ps"]);
    one_line(&out, "wedge: ", "writable by other users (mode 777)");

    // A sound folder with the attacker's socket in it (planted while it was open): a
    // client would hand it a container's secrets.
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let fake = std::os::unix::net::UnixListener::bind(folder.join("wedged.sock")).unwrap();
    fake.set_nonblocking(true).unwrap();
    chown(folder.join("wedged.sock"), Some(4242), Some(4242)).unwrap();
    let out = as_victim(wedge, &["run", "-d", "-e", "SECRET=hunter2", p1::HELLO]);
    assert_eq!(out.status.code(), Some(125));
    one_line(&out, "wedge: refusing the socket `", "owned by uid 4242");
    assert!(
        fake.accept().is_err(),
        "the client connected to the fake daemon"
    );
    let out = as_victim(wedged, &["--pool-size", "0"]);
    one_line(&out, "wedged: refusing the socket `", "owned by uid 4242");
}

#[test]
fn a_volume_is_pinned_at_create_and_a_swapped_link_is_not_followed() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    let granted = env.path("granted");
    let secret = env.path("secret");
    for (dir, text) in [(&granted, "granted data"), (&secret, "secret data")] {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("data.txt"), text).unwrap();
    }
    let link = env.path("current");
    std::os::unix::fs::symlink(&granted, &link).unwrap();
    let volume = format!("{}:/data", link.display());
    let args = ["-v", &volume, p1::FILES, "read", "/data/data.txt"];
    let mut create = vec!["create", "--name", "v"];
    create.extend_from_slice(&args);
    d.wedge(&env, &create).expect_code(0);
    let info = json(&d.wedge(&env, &["inspect", "v"]).stdout);
    let canonical = std::fs::canonicalize(&granted).unwrap();
    assert_eq!(
        info[0]["config"]["grants"]["volumes"][0],
        format!("{}:/data:ro", canonical.display())
    );
    // The link now points at what the container was never granted.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    d.wedge(&env, &["start", "v"]).expect_code(0);
    d.wedge(&env, &["wait", "v"]).expect_code(0);
    assert_eq!(d.wedge(&env, &["logs", "v"]).stdout, "granted data\n");
    // The pinned folder itself replaced by a link: the start is refused.
    std::fs::rename(&granted, env.path("granted.old")).unwrap();
    std::os::unix::fs::symlink(&secret, &granted).unwrap();
    d.wedge(&env, &["start", "v"])
        .expect_code(125)
        .expect_one_line_error("changed since the container was created");
    let logs = d.wedge(&env, &["logs", "v"]);
    assert!(!logs.stdout.contains("secret"), "{}", logs.stdout);
    // A volume that does not resolve is refused at create.
    let missing = format!("{}:/data", env.path("missing").display());
    d.wedge(&env, &["create", "-v", &missing, p1::HELLO])
        .expect_code(125)
        .expect_one_line_error("cannot resolve");
}

/// Starts `wedged --root <env root> --socket S EXTRA…` under `ulimit -n SOFT:HARD` and
/// waits until its socket answers; returns the child, the daemon handle to talk to it
/// through, and its pid.
fn wedged_with_nofile(
    env: &Env,
    soft: u64,
    hard: u64,
    extra: &[&str],
) -> (std::process::Child, std::path::PathBuf) {
    let socket = env.path("limited.sock");
    let log = std::fs::File::create(env.path("limited.log")).unwrap();
    let child = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -S -n {soft} && ulimit -H -n {hard} && exec \"$0\" \"$@\""
        ))
        .arg(crate::common::wedged())
        .arg("--root")
        .arg(env.root())
        .arg("--socket")
        .arg(&socket)
        .args(extra)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    poll("wedged answers", || {
        let stream = std::os::unix::net::UnixStream::connect(&socket).ok();
        (raw_http(stream, "GET", "/v2/_ping", None, None).0 == 200).then_some(())
    });
    (child, socket)
}

/// `Max open files` of a process: (soft, hard).
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut words = line.split_whitespace().skip(3);
    (
        words.next().unwrap().to_string(),
        words.next().unwrap().to_string(),
    )
}

#[test]
fn a_guest_starving_the_daemon_of_descriptors_loses_no_log_line_silently() {
    let env = Env::new();
    // The soft limit goes up to the hard one at start.
    let (mut child, _) = wedged_with_nofile(&env, 64, 4096, &[]);
    assert_eq!(
        open_files_limit(child.id()),
        ("4096".to_string(), "4096".to_string())
    );
    let _ = child.kill();
    let _ = child.wait();

    // Under a hard limit of 128, a guest with a volume opens files until the daemon
    // has none left, and writes a line meanwhile.
    let (mut child, socket) = wedged_with_nofile(&env, 128, 128, &[]);
    let host = format!("unix://{}", socket.display());
    let vol = env.path("vol");
    std::fs::create_dir(&vol).unwrap();
    let volume = format!("{}:/data:rw", vol.display());
    let wedge = |args: &[&str]| {
        let mut all = vec!["-H", host.as_str()];
        all.extend_from_slice(args);
        env.wedge(&all)
    };
    wedge(&[
        "run",
        "-d",
        "--name",
        "hog",
        "-v",
        &volume,
        p1::FDSTARVE,
        "/data",
    ])
    .expect_code(0);
    // The guest starts once `run -d` is over and `go` exists.
    std::fs::write(vol.join("go"), "").unwrap();
    wedge(&["wait", "hog"]).expect_code(0);
    let logs = wedge(&["logs", "hog"]);
    // The line written while no descriptor was left is counted and reported.
    assert!(
        logs.stderr.contains("wedged: 1 log records (") && logs.stderr.contains("were dropped"),
        "stdout: {}\nstderr: {}",
        logs.stdout,
        logs.stderr
    );
    assert_eq!(logs.stdout, "released\n");
    let info = json(&wedge(&["inspect", "hog"]).stdout);
    assert_eq!(info[0]["log_dropped_records"], 1, "{info}");
    assert!(
        info[0]["log_dropped_bytes"].as_u64().unwrap() > 10,
        "{info}"
    );
    let stream = std::os::unix::net::UnixStream::connect(&socket).ok();
    let (_, metrics) = raw_http(stream, "GET", "/metrics", None, None);
    assert!(
        metrics.contains("wedge_log_dropped_records_total 1\n"),
        "{metrics}"
    );
    let log = std::fs::read_to_string(env.path("limited.log")).unwrap();
    assert!(log.contains("dropping its records until it can"), "{log}");
    let _ = child.kill();
    let _ = child.wait();
}

/// A free loopback port.
fn tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn idle_tcp_clients_cannot_starve_the_unix_socket() {
    let env = Env::new();
    let token = "s3cret-token-0123456789";
    std::fs::write(env.path("token"), token).unwrap();
    let addr = format!("127.0.0.1:{}", tcp_port());
    let token_file = env.path("token").display().to_string();
    // 256 descriptors for the whole daemon; 400 idle clients would take them all.
    let (mut child, socket) = wedged_with_nofile(
        &env,
        256,
        256,
        &[
            "--listen",
            &addr,
            "--token-file",
            &token_file,
            "--api-header-timeout",
            "2s",
        ],
    );
    let idle: Vec<std::net::TcpStream> = (0..400)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    // The unix socket answers, and the CLI through it.
    for _ in 0..5 {
        let stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        assert_eq!(
            raw_http(Some(stream), "GET", "/v2/_ping", None, None).0,
            200
        );
    }
    let ps = env.wedge(&["-H", &format!("unix://{}", socket.display()), "ps"]);
    ps.expect_code(0);
    // Idle connections are closed after the header timeout, and a client with the
    // token gets in again.
    let mut first = idle[0].try_clone().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 16];
    let read = std::io::Read::read(&mut first, &mut buf);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "an idle connection stayed open: {read:?}"
    );
    drop(idle);
    poll("a TCP client is served again", || {
        let stream = std::net::TcpStream::connect(&addr).ok();
        (raw_http(stream, "GET", "/v2/version", None, Some(token)).0 == 200).then_some(())
    });
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_tcp_listener_speaks_tls_and_the_cli_trusts_a_given_ca() {
    let env = Env::new();
    let (cert, key) = crate::common::self_signed_cert(env.dir.path());
    let token = "s3cret-token-0123456789";
    std::fs::write(env.path("token"), token).unwrap();
    let addr = format!("127.0.0.1:{}", tcp_port());
    let token_file = env.path("token").display().to_string();
    let d = TestDaemon::start(
        &env,
        &[
            "--listen",
            &addr,
            "--token-file",
            &token_file,
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ],
    );
    assert!(d.log_text().contains(&format!("https://{addr}")));
    let cli = |host: &str, ca: Option<&std::path::Path>, args: &[&str]| {
        let mut command = crate::common::wedge_command();
        command
            .args(["-H", host])
            .args(args)
            .env("WEDGE_TOKEN", token);
        match ca {
            Some(ca) => command.env("WEDGE_TLS_CA", ca),
            None => command.env_remove("WEDGE_TLS_CA"),
        };
        command.output().unwrap()
    };
    let https = format!("https://{addr}");
    let tcp = format!("tcp://{addr}");
    for host in [&https, &tcp] {
        let out = cli(host, Some(&cert), &["run", "-d", "--name", "t", p1::HELLO]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = cli(host, Some(&cert), &["rm", "-f", "t"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cli(
        &https,
        None,
        &["--tls-ca", &cert.display().to_string(), "ps"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown certificate is refused; plain HTTP gets no answer.
    let out = cli(&https, None, &["ps"]);
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TLS"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let plain = raw_http(
        std::net::TcpStream::connect(&addr).ok(),
        "GET",
        "/v2/version",
        None,
        Some(token),
    );
    assert_ne!(plain.0, 200);
}
