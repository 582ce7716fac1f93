//! Deny by default: volumes (read-only unless `:rw`, no escapes) and network grants,
//! checked with real guests against real files and a real loopback listener.

use crate::common::Env;
use std::io::{Read, Write};
use std::net::TcpListener;
use wedge_test_programs::{c, p1, p2};

/// A volume folder with a file, a subfolder, and a symlink pointing outside it.
fn volume(env: &Env) -> String {
    let vol = env.path("vol");
    std::fs::create_dir_all(vol.join("sub")).unwrap();
    std::fs::write(vol.join("in.txt"), "inside\n").unwrap();
    std::fs::write(env.path("outside.txt"), "SECRET\n").unwrap();
    std::os::unix::fs::symlink(env.path("outside.txt"), vol.join("link")).unwrap();
    std::os::unix::fs::symlink("../outside.txt", vol.join("rel-link")).unwrap();
    vol.to_string_lossy().into_owned()
}

#[test]
fn volumes_are_read_only_unless_rw() {
    let env = Env::new();
    let vol = volume(&env);
    let ro = format!("{vol}:/data");
    let rw = format!("{vol}:/data:rw");
    for wasm in [p1::FILES, p2::FILES] {
        let run = env.wedge(&["run", "-v", &ro, wasm, "read", "/data/in.txt"]);
        run.expect_code(0);
        assert_eq!(run.stdout, "inside\n\n");
        let run = env.wedge(&["run", "-v", &ro, wasm, "write", "/data/new.txt", "x"]);
        run.expect_code(1);
        assert!(run.stdout.starts_with("error:"), "{}", run.stdout);
        assert!(
            !env.path("vol/new.txt").exists(),
            "read-only volume was written"
        );

        let run = env.wedge(&["run", "-v", &rw, wasm, "write", "/data/new.txt", "written"]);
        run.expect_code(0);
        assert_eq!(
            std::fs::read_to_string(env.path("vol/new.txt")).unwrap(),
            "written"
        );
        std::fs::remove_file(env.path("vol/new.txt")).unwrap();

        let run = env.wedge(&["run", "-v", &ro, wasm, "ls", "/data"]);
        assert_eq!(run.stdout, "in.txt\nlink\nrel-link\nsub\n");
    }
}

#[test]
fn guests_cannot_escape_a_volume() {
    let env = Env::new();
    let vol = volume(&env);
    let grant = format!("{vol}:/data:rw");
    let escapes = [
        "/data/../outside.txt",
        "/data/sub/../../outside.txt",
        "/outside.txt",
        "/data/link",
        "/data/rel-link",
    ];
    for wasm in [p1::FILES, p2::FILES, c::FILES] {
        for path in escapes {
            let run = env.wedge(&["run", "-v", &grant, wasm, "read", path]);
            assert_eq!(run.code, 1, "{wasm} read {path}: {}", run.stdout);
            assert!(
                run.stdout.starts_with("error:"),
                "{wasm} read {path}: {}",
                run.stdout
            );
            assert!(!run.stdout.contains("SECRET"), "{wasm} escaped via {path}");
        }
        let run = env.wedge(&[
            "run",
            "-v",
            &grant,
            wasm,
            "write",
            "/data/../escaped.txt",
            "x",
        ]);
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert!(
            !env.path("escaped.txt").exists(),
            "{wasm} wrote outside its volume"
        );
    }
}

#[test]
fn no_volume_means_no_files() {
    let env = Env::new();
    volume(&env);
    for wasm in [p1::FILES, p2::FILES, c::FILES] {
        let run = env.wedge(&[
            "run",
            wasm,
            "read",
            &env.path("outside.txt").to_string_lossy(),
        ]);
        assert_eq!(run.code, 1);
        assert!(!run.stdout.contains("SECRET"));
    }
}

#[test]
fn c_guest_reads_and_writes_in_a_volume() {
    let env = Env::new();
    let vol = volume(&env);
    let run = env.wedge(&[
        "run",
        "-v",
        &format!("{vol}:/data"),
        c::FILES,
        "read",
        "/data/in.txt",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, "inside\n");
    let run = env.wedge(&[
        "run",
        "-v",
        &format!("{vol}:/data:rw"),
        c::FILES,
        "write",
        "/data/c.txt",
        "from C",
    ]);
    run.expect_code(0);
    assert_eq!(
        std::fs::read_to_string(env.path("vol/c.txt")).unwrap(),
        "from C"
    );
}

#[test]
fn open_handles_are_capped_per_instance() {
    let env = Env::new();
    let vol = volume(&env);
    let ro = format!("{vol}:/data");
    // A core module gets `EMFILE` at exactly its cap, and carries on.
    for (cap, expected) in [("8", "opened 8 files: "), ("0", "opened 0 files: ")] {
        let run = env.wedge(&[
            "run",
            "--max-files",
            cap,
            "-v",
            &ro,
            p1::FDHOG,
            "/data/in.txt",
            "0",
        ]);
        run.expect_code(0);
        assert!(run.stdout.starts_with(expected), "{}", run.stdout);
    }
    // A component's handles of every kind share its capped resource table (the cap
    // plus 64): opening past it fails in the guest, however the guest reports it.
    let run = env.wedge(&[
        "run",
        "--max-files",
        "8",
        "-v",
        &ro,
        p2::FDHOG,
        "/data/in.txt",
        "0",
    ]);
    let opened: usize = run
        .stdout
        .strip_prefix("opened ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(opened <= 8 + 64, "{}", run.stdout);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn missing_volume_directory_is_a_wedge_error() {
    let env = Env::new();
    let grant = format!("{}:/data", env.path("nope").display());
    env.wedge(&["run", "-v", &grant, p1::HELLO])
        .expect_code(125)
        .expect_one_line_error("invalid volume");
    env.wedge(&["run", "-v", "x:/data:rwx", p1::HELLO])
        .expect_code(125)
        .expect_one_line_error("mode must be `ro` or `rw`");
}

/// A loopback server answering each connection with `pong:` + what it read; returns its port.
fn echo_server(connections: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            let mut buf = Vec::new();
            stream.read_to_end(&mut buf).unwrap();
            stream.write_all(b"pong:").unwrap();
            stream.write_all(&buf).unwrap();
        }
    });
    (port, handle)
}

#[test]
fn outbound_connections_need_a_matching_grant() {
    let env = Env::new();
    let (port, server) = echo_server(3);
    let target = format!("127.0.0.1:{port}");
    for grant in [
        target.clone(),
        "127.0.0.0/8:*".to_string(),
        format!("localhost:{port}"),
    ] {
        let run = env.wedge(&["run", "--allow-net", &grant, p2::NET, "connect", &target]);
        run.expect_code(0);
        assert_eq!(run.stdout, "ok reply pong:ping\n", "grant {grant}");
    }
    server.join().unwrap();

    // Denied: no grant, another port, another host. The guest sees a permission error.
    let other_port = format!("127.0.0.1:{}", port.wrapping_add(1));
    for flags in [
        vec![],
        vec!["--allow-net", other_port.as_str()],
        vec!["--allow-net", "10.0.0.1:*"],
    ] {
        expect_permission_denied(&env, &flags, &["connect", &target]);
    }
}

#[test]
fn dns_lookup_needs_allow_dns() {
    let env = Env::new();
    let run = env.wedge(&["run", p2::NET, "lookup", "localhost"]);
    run.expect_code(1);
    let run = env.wedge(&["run", "--allow-dns", p2::NET, "lookup", "localhost"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("ok resolved "), "{}", run.stdout);
}

#[test]
fn wasip1_guests_have_no_sockets() {
    let env = Env::new();
    let (port, _server) = echo_server(1);
    let target = format!("127.0.0.1:{port}");
    let run = env.wedge(&["run", "--allow-net", &target, p1::NET, "connect", &target]);
    run.expect_code(1);
    assert!(run.stdout.starts_with("error:"), "{}", run.stdout);
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn listening_needs_allow_listen() {
    use std::io::BufRead;
    use std::process::Stdio;
    let env = Env::new();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = crate::common::wedge_command()
        .args([
            "run",
            "--allow-listen",
            &addr,
            "--timeout",
            "20s",
            p2::NET,
            "serve",
            &addr,
        ])
        .env("WEDGE_ROOT", env.root())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "listening\n");
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.write_all(b"hi").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "pong:hi");
    assert!(child.wait().unwrap().success());

    // Without the grant, or with a grant for another port, binding is refused.
    let other = format!("127.0.0.1:{}", port.wrapping_add(1));
    for flags in [
        vec![],
        vec!["--allow-listen", other.as_str()],
        vec!["--allow-net", addr.as_str()],
    ] {
        expect_permission_denied(&env, &flags, &["serve", &addr]);
    }
}

/// Runs the wasip2 `net` guest with `flags` and `guest_args`; it must be refused with a
/// permission error (exit 1), not crash.
fn expect_permission_denied(env: &Env, flags: &[&str], guest_args: &[&str]) {
    let mut args = vec!["run"];
    args.extend(flags);
    args.push(p2::NET);
    args.extend(guest_args);
    let run = env.wedge(&args);
    run.expect_code(1);
    assert!(
        run.stdout.contains("Permission denied"),
        "{flags:?}: {}",
        run.stdout
    );
}
