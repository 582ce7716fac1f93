//! `wedge:edge/messaging` end to end: the `msg` guest component publishing and
//! subscribing in `wedge run` and between containers of a real `wedged`.

use crate::common::mosquitto::{Mosquitto, Secured};
use crate::common::{Env, TestDaemon, app_folder};
use std::time::{Duration, Instant};
use wedge_test_programs::c::PUBLISHER;
use wedge_test_programs::edge::{HANDLER, MSG};

/// `wedge run FLAGS… msg.wasm ARGS…`.
fn msg(env: &Env, flags: &[&str], args: &[&str]) -> crate::common::Run {
    let mut all = vec!["run"];
    all.extend_from_slice(flags);
    all.push(MSG);
    all.extend_from_slice(args);
    env.wedge(&all)
}

#[test]
fn grants_decide_what_an_app_may_publish_and_subscribe_to() {
    let env = Env::new();
    let run = msg(&env, &[], &["pub", "sensors/kitchen/temp", "21"]);
    run.expect_code(1);
    assert!(run.stderr.contains("permission denied"), "{}", run.stderr);
    let grant = ["--allow-publish", "sensors/+/temp"];
    msg(&env, &grant, &["pub", "sensors/kitchen/temp", "21"]).expect_code(0);
    let run = msg(&env, &grant, &["pub", "sensors/kitchen/hum", "40"]);
    run.expect_code(1);
    assert!(run.stderr.contains("permission denied"), "{}", run.stderr);
    let run = msg(&env, &grant, &["pub", "sensors/+/temp", "21"]);
    run.expect_code(1);
    assert!(run.stderr.contains("invalid topic"), "{}", run.stderr);

    let sub = ["--allow-subscribe", "sensors/+/temp"];
    let run = msg(&env, &sub, &["sub", "sensors/#", "1", "10"]);
    run.expect_code(1);
    assert!(run.stderr.contains("permission denied"), "{}", run.stderr);
    // A covered filter subscribes; nothing is published, so it times out (a component
    // exits with 0 or 1 only).
    let run = msg(&env, &sub, &["sub", "sensors/kitchen/temp", "1", "10"]);
    run.expect_code(1);
    assert_eq!(run.stdout, "ready\ntimeout\n");
    let run = msg(
        &env,
        &["--allow-subscribe", "#"],
        &["sub", "a/#/b", "1", "10"],
    );
    run.expect_code(1);
    assert!(run.stderr.contains("invalid topic"), "{}", run.stderr);
}

#[test]
fn bad_topic_flags_are_one_line_errors() {
    let env = Env::new();
    env.wedge(&["run", "--allow-publish", "a/#/b", MSG, "pub", "a", "b"])
        .expect_code(125)
        .expect_one_line_error("topic filter");
}

/// Polls `wedge logs NAME` until its stdout and stderr hold `needle` (20 s at most);
/// both, stdout first.
#[track_caller]
fn logs_contain(d: &TestDaemon, env: &Env, name: &str, needle: &str) -> String {
    logs_contain_within(d, env, name, needle, Duration::from_secs(60))
}

/// [`logs_contain`], waiting up to `limit`.
#[track_caller]
fn logs_contain_within(
    d: &TestDaemon,
    env: &Env,
    name: &str,
    needle: &str,
    limit: Duration,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let logs = d.wedge(env, &["logs", name]);
        let both = format!("{}{}", logs.stdout, logs.stderr);
        if both.contains(needle) {
            return both;
        }
        assert!(
            Instant::now() < deadline,
            "`{needle}` never logged by {name}: {both}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `wedge run -d --name NAME GRANTS… msg.wasm ARGS…` on the daemon.
fn start(d: &TestDaemon, env: &Env, name: &str, grants: &[&str], args: &[&str]) {
    let mut all = vec!["run", "-d", "--name", name];
    all.extend_from_slice(grants);
    all.push(MSG);
    all.extend_from_slice(args);
    d.wedge(env, &all).expect_code(0);
}

#[test]
fn two_containers_exchange_messages_through_the_daemon() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    start(
        &d,
        &env,
        "sub",
        &["--allow-subscribe", "sensors/#"],
        &["sub", "sensors/+/temp", "3"],
    );
    logs_contain(&d, &env, "sub", "ready");
    start(
        &d,
        &env,
        "pub",
        &["--allow-publish", "sensors/#"],
        &["pub", "sensors/kitchen/hum", "40"],
    );
    start(
        &d,
        &env,
        "pub2",
        &["--allow-publish", "sensors/#"],
        &["pub", "sensors/kitchen/temp", "21", "3"],
    );
    assert_eq!(d.wedge(&env, &["wait", "sub"]).stdout.trim(), "0");
    let logs = d.wedge(&env, &["logs", "sub"]).stdout;
    assert_eq!(
        logs,
        "ready\nsensors/kitchen/temp 21\nsensors/kitchen/temp 21\nsensors/kitchen/temp 21\ndropped 0\n"
    );
    // A container without a grant is refused.
    start(
        &d,
        &env,
        "nogrant",
        &[],
        &["pub", "sensors/kitchen/temp", "1"],
    );
    assert_eq!(d.wedge(&env, &["wait", "nogrant"]).stdout.trim(), "1");
    let metrics = d.request("GET", "/metrics", None).1;
    assert!(
        metrics.contains("wedge_messages_published_total 4\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wedge_messages_delivered_total 3\n"),
        "{metrics}"
    );
}

#[test]
fn a_push_handler_gets_each_message_in_a_fresh_instance_and_survives_failures() {
    let env = Env::new();
    env.wedge(&["run", "--allow-subscribe", "in/#", HANDLER])
        .expect_code(125)
        .expect_one_line_error("push handler");
    let d = TestDaemon::start(&env, &[]);
    // Without a subscribe grant there is nothing to deliver: the container fails.
    d.wedge(&env, &["run", "-d", "--name", "deaf", HANDLER])
        .expect_code(0);
    assert_eq!(d.wedge(&env, &["wait", "deaf"]).stdout.trim(), "125");
    let logs = d.wedge(&env, &["logs", "deaf"]);
    assert!(
        logs.stderr.contains("--allow-subscribe"),
        "{}{}",
        logs.stdout,
        logs.stderr
    );

    let grants = [
        "--allow-subscribe",
        "in/#",
        "--allow-publish",
        "replies/#",
        "--timeout",
        "1s",
    ];
    let mut all = vec!["run", "-d", "--name", "h"];
    all.extend_from_slice(&grants);
    all.push(HANDLER);
    d.wedge(&env, &all).expect_code(0);
    logs_contain(&d, &env, "h", "subscribed to `in/#`");
    start(
        &d,
        &env,
        "sub",
        &["--allow-subscribe", "replies/#"],
        &["sub", "replies/#", "2"],
    );
    logs_contain(&d, &env, "sub", "ready");
    for (i, payload) in ["hello", "refuse", "trap", "spin", "world"]
        .iter()
        .enumerate()
    {
        let name = format!("pub{i}");
        let topic = format!("in/{i}");
        start(
            &d,
            &env,
            &name,
            &["--allow-publish", "in/#"],
            &["pub", &topic, payload],
        );
        assert_eq!(d.wedge(&env, &["wait", &name]).stdout.trim(), "0");
    }
    assert_eq!(d.wedge(&env, &["wait", "sub"]).stdout.trim(), "0");
    let replies = d.wedge(&env, &["logs", "sub"]).stdout;
    assert_eq!(
        replies,
        "ready\nreplies/in_0 hello\nreplies/in_4 world\ndropped 0\n"
    );
    let logs = logs_contain(&d, &env, "h", "handled in/4 world");
    for needle in [
        "handled in/0 hello",
        "handling a message on `in/1` failed: the app answered refused on purpose",
        "handling a message on `in/2` failed: guest trapped",
        "handling a message on `in/3` failed: time limit of 1s exceeded",
    ] {
        assert!(logs.contains(needle), "`{needle}` not in: {logs}");
    }
    // A stop ends it after the message in hand, as a clean exit.
    d.wedge(&env, &["stop", "h"]).expect_code(0);
    assert_eq!(d.wedge(&env, &["wait", "h"]).stdout.trim(), "0");
}

#[test]
fn a_c_publisher_becomes_a_component_and_reaches_a_subscriber() {
    let env = Env::new();
    // `wedge run` makes the wasip1 module (wit-bindgen C bindings) a component itself.
    let run = env.wedge(&["run", PUBLISHER, "sensors/c/temp", "7"]);
    run.expect_code(1);
    assert!(run.stderr.contains("permission denied"), "{}", run.stderr);
    let run = env.wedge(&[
        "run",
        "--allow-publish",
        "sensors/#",
        PUBLISHER,
        "sensors/c/temp",
        "7",
        "2",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, "published 2\n");

    // `wedge build` stores it as a component image, requesting its grant.
    let dir = app_folder(
        &env,
        PUBLISHER,
        "publisher",
        "[messaging]\npublish = [\"sensors/#\"]\n",
    );
    let built = env.wedge(&["build", "-t", "demo/publisher:1", dir.to_str().unwrap()]);
    built.expect_code(0);
    assert!(built.stderr.contains("componentized"), "{}", built.stderr);
    let run = env.wedge(&["image", "inspect", "demo/publisher:1"]);
    let info: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(info["config"]["os"], "wasip2");
    let imports = info["config"]["component"]["imports"].to_string();
    assert!(imports.contains("wedge:edge/messaging"), "{imports}");

    let d = TestDaemon::start(&env, &[]);
    start(
        &d,
        &env,
        "sub",
        &["--allow-subscribe", "sensors/#"],
        &["sub", "sensors/+/temp", "2"],
    );
    logs_contain(&d, &env, "sub", "ready");
    d.wedge(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "c",
            "--grant-requested",
            "demo/publisher:1",
            "sensors/c/temp",
            "from-c",
            "2",
        ],
    )
    .expect_code(0);
    assert_eq!(d.wedge(&env, &["wait", "c"]).stdout.trim(), "0");
    assert_eq!(d.wedge(&env, &["wait", "sub"]).stdout.trim(), "0");
    assert_eq!(
        d.wedge(&env, &["logs", "sub"]).stdout,
        "ready\nsensors/c/temp from-c\nsensors/c/temp from-c\ndropped 0\n"
    );
}

#[test]
fn a_slow_subscriber_loses_its_oldest_messages_without_slowing_a_fast_one() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &["--queue-size", "16"]);
    let grant = ["--allow-subscribe", "load/#"];
    // Slow: reads one message, then nothing for ten minutes.
    start(
        &d,
        &env,
        "slow",
        &grant,
        &["sub", "load/#", "2", "600000", "600000"],
    );
    // Fast: acknowledges every 8 messages, and the producer waits for each
    // acknowledgement, so the fast queue never holds more than 8 of its 16 places,
    // however busy the machine is.
    start(
        &d,
        &env,
        "fast",
        &[
            "--allow-subscribe",
            "load/#",
            "--allow-publish",
            "acks/fast",
        ],
        &["ack-sub", "load/#", "2000", "acks/fast", "8"],
    );
    logs_contain(&d, &env, "slow", "ready");
    logs_contain(&d, &env, "fast", "ready");
    start(
        &d,
        &env,
        "producer",
        &["--allow-publish", "load/#", "--allow-subscribe", "acks/#"],
        &["pub-acked", "load/x", "2000", "acks/#", "8"],
    );
    // The slow subscriber never holds the producer up.
    logs_contain(&d, &env, "producer", "published 2000");
    let fast = logs_contain(&d, &env, "fast", "received");
    assert!(
        fast.contains("received 2000 dropped 0"),
        "the fast subscriber lost messages: {fast}"
    );
    let ps = d.wedge(&env, &["ps", "--format", "json"]).stdout;
    assert!(
        ps.contains("\"slow\""),
        "the slow subscriber should still be running: {ps}"
    );
    // Everything the slow one could not hold was dropped (the fast one dropped none).
    let metrics = d.request("GET", "/metrics", None).1;
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wedge_messages_dropped_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no drop count: {metrics}"));
    assert!(dropped >= 2000 - 16 - 1, "{metrics}");
    d.wedge(&env, &["rm", "-f", "slow"]).expect_code(0);
}

#[test]
fn the_mqtt_bridge_carries_messages_to_and_from_a_real_broker() {
    let env = Env::new();
    let broker = Mosquitto::start(&env);
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let d = TestDaemon::start(&env, &["--mqtt", &url, "--mqtt-client-id", "wedged-test"]);

    // Out: an app's message reaches `mosquitto_sub`.
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args(&broker.client)
        .args(["-t", "out/#", "-C", "1", "-v"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while sub.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "mosquitto_sub got nothing");
        n += 1;
        let name = format!("out{n}");
        start(
            &d,
            &env,
            &name,
            &["--allow-publish", "out/#"],
            &["pub", "out/temp", "21"],
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = sub.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out/temp 21\n");

    // In: a broker message reaches a subscribed container, once the bridge mirrors it.
    start(
        &d,
        &env,
        "in",
        &["--allow-subscribe", "in/#"],
        &["sub", "in/#", "1"],
    );
    logs_contain(&d, &env, "in", "ready");
    broker.publish_until_received(&d, &env, "in", "in/x", "hello");

    // No echo: a message published here and subscribed here arrives once.
    start(
        &d,
        &env,
        "echo-sub",
        &["--allow-subscribe", "loop/#"],
        &["sub", "loop/#", "2", "1500"],
    );
    logs_contain(&d, &env, "echo-sub", "ready");
    std::thread::sleep(Duration::from_millis(600)); // the bridge subscribes to `loop/#`
    start(
        &d,
        &env,
        "echo-pub",
        &["--allow-publish", "loop/#"],
        &["pub", "loop/a", "x"],
    );
    assert_eq!(d.wedge(&env, &["wait", "echo-sub"]).stdout.trim(), "1");
    assert_eq!(
        d.wedge(&env, &["logs", "echo-sub"]).stdout,
        "ready\nloop/a x\ntimeout\n"
    );
    assert!(
        d.log_text().contains("MQTT bridge connected"),
        "{}",
        d.log_text()
    );
}

#[test]
fn a_bad_broker_url_stops_wedged_with_a_clear_error() {
    let env = Env::new();
    let out = crate::common::wedged_command()
        .args(["--root", env.root().to_str().unwrap(), "--mqtt", "http://x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid broker URL"));
}

#[test]
fn qos_1_messages_survive_a_broker_restart_mid_stream() {
    let env = Env::new();
    let mut broker = Mosquitto::start(&env);
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let d = TestDaemon::start(&env, &["--mqtt", &url, "--mqtt-client-id", "wedged-qos"]);
    let count = 60;
    // A durable QoS 1 subscriber: its session outlives the broker's restart.
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-c", "-i", "test-durable", "-q", "1", "-t", "seq/#"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // QoS 1 may deliver twice: collect distinct payloads as they come.
    let got = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let subscribed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lines = std::io::BufReader::new(sub.stdout.take().unwrap());
    let (seen, warm) = (got.clone(), subscribed.clone());
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(lines).map_while(Result::ok) {
            match line.trim().parse::<u32>() {
                Ok(n) => drop(seen.lock().unwrap().insert(n)),
                Err(_) => warm.store(true, std::sync::atomic::Ordering::SeqCst),
            }
        }
    });
    // The subscriber is in place once a warm-up message reaches it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !subscribed.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "mosquitto_sub never subscribed");
        broker.publish("seq/warm", "warm");
        std::thread::sleep(Duration::from_millis(200));
    }
    start(
        &d,
        &env,
        "seq",
        &["--allow-publish", "seq/#"],
        &["pub-seq", "seq/n", &count.to_string(), "50"],
    );
    std::thread::sleep(Duration::from_millis(1200));
    broker.restart();
    assert_eq!(d.wedge(&env, &["wait", "seq"]).stdout.trim(), "0");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing: Vec<u32> = {
            let got = got.lock().unwrap();
            (0..count).filter(|i| !got.contains(i)).collect()
        };
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lost across the restart: {missing:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = sub.kill();
    let _ = sub.wait();
}

#[test]
fn the_bridge_reaches_a_broker_over_tls_with_a_password_and_feeds_a_push_handler() {
    let env = Env::new();
    let dir = env.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, _key) = crate::common::self_signed_cert(&dir);
    let secured = Secured {
        cert: cert.clone(),
        user: "edge",
        password: "s3cret",
    };
    let broker = Mosquitto::start_with(&env, Some(&secured));
    let url = format!("mqtts://edge:s3cret@localhost:{}", broker.port);
    let ca = cert.to_str().unwrap();
    let d = TestDaemon::start(&env, &["--mqtt", &url, "--mqtt-ca", ca]);
    let mut all = vec!["run", "-d", "--name", "h"];
    all.extend_from_slice(&["--allow-subscribe", "in/#", "--allow-publish", "replies/#"]);
    all.push(HANDLER);
    d.wedge(&env, &all).expect_code(0);
    logs_contain(&d, &env, "h", "subscribed to `in/#`");

    // A device publishes to the broker; the handler answers through the bridge.
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args(&broker.client)
        .args(["-t", "replies/#", "-C", "1", "-v"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sub.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "no reply reached the broker: {}",
            d.log_text()
        );
        broker.publish("in/dev1", "ping");
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = sub.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "replies/in_dev1 ping\n"
    );
    assert!(
        d.log_text().contains("MQTT bridge connected"),
        "{}",
        d.log_text()
    );
}

#[test]
fn a_wrong_mqtt_password_is_reported_and_retried() {
    let env = Env::new();
    let dir = env.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, _key) = crate::common::self_signed_cert(&dir);
    let secured = Secured {
        cert: cert.clone(),
        user: "edge",
        password: "s3cret",
    };
    let broker = Mosquitto::start_with(&env, Some(&secured));
    let url = format!("mqtts://edge:wrong@localhost:{}", broker.port);
    let d = TestDaemon::start(&env, &["--mqtt", &url, "--mqtt-ca", cert.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.log_text().contains("retrying") {
        assert!(
            Instant::now() < deadline,
            "nothing logged: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = d.log_text();
    assert!(!log.contains("MQTT bridge connected"), "{log}");
    assert!(
        log.contains("NotAuthorized") && log.contains("retrying"),
        "{log}"
    );
    assert!(!log.contains("s3cret") && !log.contains("wrong"), "{log}");
    // The daemon itself keeps serving.
    d.wedge(&env, &["ps"]).expect_code(0);
}

/// The pid of the `wedged` serving `d`'s socket, found in `/proc`.
fn daemon_pid(d: &TestDaemon) -> u32 {
    let socket = d.socket.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("wedged")) && args.contains(&socket) {
            return pid;
        }
    }
    panic!("no wedged process for {socket}");
}

/// A field of `/proc/PID/status` in bytes (`VmHWM`: the peak resident set).
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix(" kB")?.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no `{field}` in {status}"))
}

/// The value of an unlabelled series in the daemon's metrics.
fn metric(d: &TestDaemon, name: &str) -> u64 {
    let text = d.request("GET", "/metrics", None).1;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
}

/// The most the daemon may hold while attacked: the bus's 64 MiB default, the guest's
/// own memory and ample slack for the allocator; far below the 1 GiB the flood sends.
const RSS_BOUND: u64 = 400 << 20;

#[test]
fn a_flooding_app_cannot_make_the_daemon_hold_its_messages() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &[]);
    // The attacker subscribes 8 times and never reads, then publishes 1,024 x 1 MiB.
    let grants = ["--allow-publish", "flood/#", "--allow-subscribe", "flood/#"];
    let attack = ["flood", "flood/#", "flood/x", "1048576", "1024", "8"];
    start(&d, &env, "flood", &grants, &attack);
    logs_contain_within(
        &d,
        &env,
        "flood",
        "published 1024",
        Duration::from_secs(300),
    );
    let peak = proc_status_bytes(daemon_pid(&d), "VmHWM");
    eprintln!("wedged peak RSS under the flood: {} MiB", peak >> 20);
    assert!(peak < RSS_BOUND, "wedged reached {} MiB", peak >> 20);
    let queued = metric(&d, "wedge_messages_queued_bytes");
    assert!(queued <= 64 << 20, "{queued} bytes queued");
    assert!(metric(&d, "wedge_messages_dropped_total") > 0);

    // Other apps still exchange messages: the hoarder gives up its room.
    start(
        &d,
        &env,
        "sub",
        &["--allow-subscribe", "ok/#"],
        &["sub", "ok/#", "1"],
    );
    logs_contain(&d, &env, "sub", "ready");
    start(
        &d,
        &env,
        "pub",
        &["--allow-publish", "ok/#"],
        &["pub", "ok/x", "hello"],
    );
    assert_eq!(d.wedge(&env, &["wait", "sub"]).stdout.trim(), "0");
    assert_eq!(
        d.wedge(&env, &["logs", "sub"]).stdout,
        "ready\nok/x hello\ndropped 0\n"
    );
}

#[test]
fn a_hostile_broker_cannot_make_the_daemon_hold_its_messages() {
    let env = Env::new();
    let broker = Mosquitto::start(&env);
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let d = TestDaemon::start(
        &env,
        &["--mqtt", &url, "--mqtt-client-id", "wedged-hostile"],
    );
    // A subscriber that never reads: 8 queues on `in/#`.
    start(
        &d,
        &env,
        "hold",
        &["--allow-subscribe", "in/#"],
        &["flood", "in/#", "unused", "1", "0", "8"],
    );
    logs_contain(&d, &env, "hold", "published 0");
    // Once the bridge has mirrored `in/#`, broker messages reach the queues.
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&d, "wedge_messages_delivered_total") == 0 {
        assert!(Instant::now() < deadline, "the bridge never delivered");
        broker.publish("in/probe", "x");
        std::thread::sleep(Duration::from_millis(300));
    }
    let dir = env.path("payloads");
    std::fs::create_dir_all(&dir).unwrap();
    let mib = dir.join("1mib");
    let two_mib = dir.join("2mib");
    std::fs::write(&mib, vec![b'x'; 1 << 20]).unwrap();
    std::fs::write(&two_mib, vec![b'y'; 2 << 20]).unwrap();
    // 1,024 payloads of 1 MiB (what the bus takes at most), then 2 MiB ones (over it).
    for (file, repeat) in [(&mib, "1024"), (&two_mib, "8")] {
        let status = std::process::Command::new("mosquitto_pub")
            .args(&broker.client)
            .args(["-t", "in/big", "--repeat", repeat, "-f"])
            .arg(file)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric(&d, "wedge_messages_refused_total") == 0 {
        assert!(
            Instant::now() < deadline,
            "no 2 MiB message was refused: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let peak = proc_status_bytes(daemon_pid(&d), "VmHWM");
    eprintln!(
        "wedged peak RSS from the hostile broker: {} MiB",
        peak >> 20
    );
    assert!(peak < RSS_BOUND, "wedged reached {} MiB", peak >> 20);
    assert!(metric(&d, "wedge_messages_queued_bytes") <= 64 << 20);

    // The bridge carries on: a later message reaches a new subscriber.
    start(
        &d,
        &env,
        "after",
        &["--allow-subscribe", "after/#"],
        &["sub", "after/#", "1", "60000"],
    );
    logs_contain(&d, &env, "after", "ready");
    broker.publish_until_received(&d, &env, "after", "after/x", "ok");
}

#[test]
fn wildcard_grants_do_not_reach_dollar_topics() {
    let env = Env::new();
    let run = msg(
        &env,
        &["--allow-subscribe", "#"],
        &["sub", "$SYS/#", "1", "10"],
    );
    run.expect_code(1);
    assert!(run.stderr.contains("permission denied"), "{}", run.stderr);
    let run = msg(&env, &["--allow-publish", "#"], &["pub", "$SYS/x", "1"]);
    run.expect_code(1);
    assert!(run.stderr.contains("permission denied"), "{}", run.stderr);
    // Granted by name, they work.
    let run = msg(
        &env,
        &["--allow-subscribe", "$SYS/#"],
        &["sub", "$SYS/broker/+", "1", "10"],
    );
    assert_eq!(run.stdout, "ready\ntimeout\n");

    // A `#` subscription does not get what is published to `$SYS/...`.
    let d = TestDaemon::start(&env, &[]);
    start(
        &d,
        &env,
        "all",
        &["--allow-subscribe", "#"],
        &["sub", "#", "1"],
    );
    logs_contain(&d, &env, "all", "ready");
    start(
        &d,
        &env,
        "sys",
        &["--allow-publish", "$SYS/#"],
        &["pub", "$SYS/broker/load", "9"],
    );
    assert_eq!(d.wedge(&env, &["wait", "sys"]).stdout.trim(), "0");
    start(
        &d,
        &env,
        "plain",
        &["--allow-publish", "a/#"],
        &["pub", "a/b", "1"],
    );
    assert_eq!(d.wedge(&env, &["wait", "all"]).stdout.trim(), "0");
    assert_eq!(
        d.wedge(&env, &["logs", "all"]).stdout,
        "ready\na/b 1\ndropped 0\n"
    );
}

#[test]
fn the_broker_password_comes_from_a_file_not_the_command_line() {
    let env = Env::new();
    let dir = env.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, _key) = crate::common::self_signed_cert(&dir);
    let secured = Secured {
        cert: cert.clone(),
        user: "edge",
        password: "s3cret-in-file",
    };
    let broker = Mosquitto::start_with(&env, Some(&secured));
    let password = env.path("mqtt-password");
    std::fs::write(&password, "s3cret-in-file\n").unwrap();
    let url = format!("mqtts://edge@localhost:{}", broker.port);
    let d = TestDaemon::start(
        &env,
        &[
            "--mqtt",
            &url,
            "--mqtt-ca",
            cert.to_str().unwrap(),
            "--mqtt-password-file",
            password.to_str().unwrap(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d.log_text().contains("MQTT bridge connected") {
        assert!(Instant::now() < deadline, "not connected: {}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", daemon_pid(&d))).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("s3cret"),
        "the password is in argv"
    );
    assert!(!d.log_text().contains("warning"), "{}", d.log_text());

    // A password in the URL still works, with a warning.
    let url = format!("mqtts://edge:wrong@localhost:{}", broker.port);
    let log = env.path("other.log");
    let mut other = crate::common::wedged_command()
        .args([
            "--root",
            env.path("other").to_str().unwrap(),
            "--mqtt",
            &url,
        ])
        .args(["--mqtt-client-id", "other", "--socket"])
        .arg(env.path("other.sock"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("warning") {
            assert!(text.contains("--mqtt-password-file"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no warning: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = other.kill();
    let _ = other.wait();
}
