//! `wedge:edge/messaging` end to end: the `msg` guest component publishing and
//! subscribing in `wedge run` and between containers of a real `wedged`.

mod common;

use common::{Env, TestDaemon};
use std::time::{Duration, Instant};
use wedge_test_programs::edge::MSG;

/// `wedge run FLAGS… msg.wasm ARGS…`.
fn msg(env: &Env, flags: &[&str], args: &[&str]) -> common::Run {
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

/// Polls `wedge logs NAME` until it holds `needle` (20 s at most); the logs.
#[track_caller]
fn logs_contain(d: &TestDaemon, env: &Env, name: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = d.wedge(env, &["logs", name]);
        if logs.stdout.contains(needle) {
            return logs.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "`{needle}` never logged by {name}: {}{}",
            logs.stdout,
            logs.stderr
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
fn a_slow_subscriber_loses_its_oldest_messages_without_slowing_a_fast_one() {
    let env = Env::new();
    let d = TestDaemon::start(&env, &["--queue-size", "16"]);
    let grant = ["--allow-subscribe", "load/#"];
    // Slow: reads 3 messages, 400 ms apart.
    start(
        &d,
        &env,
        "slow",
        &grant,
        &["sub", "load/#", "3", "10000", "400"],
    );
    start(&d, &env, "fast", &grant, &["bench-sub", "load/#", "2000"]);
    logs_contain(&d, &env, "slow", "ready");
    logs_contain(&d, &env, "fast", "ready");
    let started = Instant::now();
    // 2,000 messages at 2,000/s: the fast subscriber keeps up with a 16-message queue.
    start(
        &d,
        &env,
        "producer",
        &["--allow-publish", "load/#"],
        &["bench-pub", "load/x", "2000", "2000"],
    );
    let fast = logs_contain(&d, &env, "fast", "received");
    let fast_done = started.elapsed();
    assert!(
        fast.contains("dropped 0 "),
        "the fast subscriber lost messages: {fast}"
    );
    let ps = d.wedge(&env, &["ps", "--format", "json"]).stdout;
    assert!(
        ps.contains("\"slow\""),
        "the slow subscriber should still be running after {fast_done:?}: {ps}"
    );
    let slow = logs_contain(&d, &env, "slow", "dropped");
    let dropped: u64 = slow
        .lines()
        .find_map(|l| l.strip_prefix("dropped "))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(dropped > 1000, "the slow queue should overflow: {slow}");
    let metrics = d.request("GET", "/metrics", None).1;
    assert!(
        !metrics.contains("wedge_messages_dropped_total 0\n"),
        "{metrics}"
    );
}
