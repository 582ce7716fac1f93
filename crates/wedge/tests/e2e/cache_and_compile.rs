//! The AOT cache (entries, corruption, staleness) and `wedge compile` to `.cwasm`,
//! including the Pulley interpreter target.

use crate::common::{Env, cache_entries, cache_entries_once_compiled, relative_to};
use wedge_test_programs::{p1, p2, wat};

#[test]
fn first_run_fills_the_cache_and_later_runs_use_it() {
    let env = Env::new();
    env.wedge(&["run", p1::HELLO]).expect_code(0);
    let entries = cache_entries(&env.root());
    assert_eq!(entries.len(), 1, "{entries:?}");
    let sha = {
        use std::process::Command;
        let out = Command::new("sha256sum").arg(p1::HELLO).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        entries[0].file_name().unwrap().to_string_lossy(),
        format!("{sha}.cwasm")
    );
    let before = std::fs::metadata(&entries[0]).unwrap().modified().unwrap();
    env.wedge(&["run", p1::HELLO]).expect_code(0);
    assert_eq!(
        std::fs::metadata(&entries[0]).unwrap().modified().unwrap(),
        before,
        "entry was rewritten"
    );

    // Settings that change the code get their own entry.
    env.wedge(&["run", "--fuel", "100000000", p1::HELLO])
        .expect_code(0);
    env.wedge(&["run", p2::HELLO]).expect_code(0);
    assert_eq!(cache_entries(&env.root()).len(), 3);
    // A time limit needs epoch checks in the code: its own entry too. A run without
    // one uses code without checks (faster), or code with them when that is what the
    // cache holds.
    env.wedge(&["run", "--timeout", "10s", p1::HELLO])
        .expect_code(0);
    assert_eq!(cache_entries(&env.root()).len(), 4);
    let checked_only = Env::new();
    checked_only
        .wedge(&["run", "--timeout", "10s", p1::HELLO])
        .expect_code(0);
    checked_only.wedge(&["run", p1::HELLO]).expect_code(0);
    assert_eq!(cache_entries(&checked_only.root()).len(), 1);
    // --no-cache neither reads nor writes.
    let fresh = Env::new();
    fresh
        .wedge(&["run", "--no-cache", p1::HELLO])
        .expect_code(0);
    assert!(cache_entries(&fresh.root()).is_empty());
}

/// A warm run maps the cached code of an unchanged app file without reading it: the
/// cache remembers the file's digest by its stamp. A file rewritten in place, even with
/// its size and modification time as before, or replaced, runs its new code.
#[test]
fn an_app_file_changed_in_place_never_runs_its_old_code() {
    use std::io::Write;
    let env = Env::new();
    let hello = std::fs::read(p1::HELLO).unwrap();
    let at = hello
        .windows(16)
        .position(|w| w == b"hello from wedge")
        .unwrap();
    let mut jello = hello.clone();
    jello[at] = b'j';
    let app = env.path("app.wasm");
    let arg = app.to_str().unwrap();
    let remembered =
        || std::fs::read_dir(env.root().join("cache/aot/files")).map_or(0, |d| d.count());
    let runs = |expected: &str| {
        let run = env.wedge(&["run", arg]);
        run.expect_code(0);
        assert_eq!(run.stdout, expected);
    };

    std::fs::write(&app, &hello).unwrap();
    runs("hello from wedge\n");
    assert_eq!(
        remembered(),
        0,
        "a file changed a moment ago is not remembered"
    );
    // Older than a clock tick or two: remembered, then found.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    runs("hello from wedge\n");
    assert_eq!(remembered(), 1);
    runs("hello from wedge\n");

    let modified = std::fs::metadata(&app).unwrap().modified().unwrap();
    let mut file = std::fs::OpenOptions::new().write(true).open(&app).unwrap();
    file.write_all(&jello).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    let meta = std::fs::metadata(&app).unwrap();
    assert_eq!(
        (meta.len(), meta.modified().unwrap()),
        (hello.len() as u64, modified)
    );
    runs("jello from wedge\n");

    let other = env.path("other.wasm");
    std::fs::write(&other, &hello).unwrap();
    std::fs::rename(&other, &app).unwrap();
    runs("hello from wedge\n");
    assert_eq!(cache_entries(&env.root()).len(), 2, "one entry per program");
}

#[test]
fn corrupt_or_stale_entries_are_rebuilt_never_run() {
    let env = Env::new();
    env.wedge(&["run", p1::HELLO]).expect_code(0);
    let entry = cache_entries(&env.root()).remove(0);
    let good = std::fs::read(&entry).unwrap();

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let stale = {
        // A checksum-valid entry whose payload is not code for this engine.
        let mut v = good[..24].to_vec();
        v.extend_from_slice(b"not code");
        v[8..24].copy_from_slice(&xxhash_rust::xxh3::xxh3_128(b"not code").to_le_bytes());
        v
    };
    for (what, bytes) in [
        ("flipped", flipped),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", vec![]),
        ("stale", stale),
    ] {
        std::fs::write(&entry, &bytes).unwrap();
        let run = env.wedge(&["run", p1::HELLO]);
        run.expect_code(0);
        assert_eq!(run.stdout, "hello from wedge\n", "{what}");
        assert_eq!(
            std::fs::read(&entry).unwrap(),
            good,
            "{what} entry was not rebuilt"
        );
    }
}

#[test]
fn compile_writes_cwasm_that_run_executes() {
    let env = Env::new();
    for (wasm, name) in [(p1::HELLO, "p1.cwasm"), (p2::HELLO, "p2.cwasm")] {
        let out = env.path(name).to_string_lossy().into_owned();
        env.wedge(&["compile", wasm, "-o", &out]).expect_code(0);
        assert!(std::fs::read(&out).unwrap().starts_with(b"\x7fELF"));
        let run = env.wedge(&["run", &out]);
        run.expect_code(0);
        assert_eq!(run.stdout, "hello from wedge\n");
        // Compiled without fuel metering: a fuel limit is refused with a clear message.
        env.wedge(&["run", "--fuel", "1000", &out])
            .expect_code(125)
            .expect_one_line_error("fuel");
    }
}

#[test]
fn pulley_cwasm_runs_without_extra_flags() {
    let env = Env::new();
    for (wasm, name) in [
        (p1::ARGS_ENV, "p1-pulley.cwasm"),
        (p2::ARGS_ENV, "p2-pulley.cwasm"),
    ] {
        let out = env.path(name).to_string_lossy().into_owned();
        env.wedge(&["compile", "--target", "pulley64", wasm, "-o", &out])
            .expect_code(0);
        let run = env.wedge(&["run", &out, "hi"]);
        run.expect_code(0);
        assert!(run.stdout.contains("arg[1]=hi"), "{}", run.stdout);
    }
    let fueled = env.path("fuel.cwasm").to_string_lossy().into_owned();
    env.wedge(&[
        "compile",
        "--fuel",
        "--target",
        "pulley64",
        p1::SPIN,
        "-o",
        &fueled,
    ])
    .expect_code(0);
    env.wedge(&["run", "--fuel", "100000", &fueled])
        .expect_code(124);
}

/// Code for the edge devices is made here: 64-bit ARM (and Pulley for 32-bit boards).
/// A crash of the code generator (wasmtime #13959: Cranelift's riscv64 backend on the
/// `files` guest) is a one-line error naming the way out, never a panic.
#[test]
fn compile_targets_edge_devices_and_a_compiler_crash_is_one_line() {
    let env = Env::new();
    for target in [
        "aarch64-unknown-linux-gnu",
        "riscv64gc-unknown-linux-gnu",
        "pulley32",
    ] {
        let out = env.path(&format!("{target}.cwasm"));
        let out = out.to_string_lossy();
        env.wedge(&["compile", "--target", target, p1::HELLO, "-o", &out])
            .expect_code(0);
        assert!(std::fs::metadata(&*out).unwrap().len() > 0);
    }
    let out = env.path("files.cwasm").to_string_lossy().into_owned();
    env.wedge(&[
        "compile",
        "--target",
        "riscv64gc-unknown-linux-gnu",
        p1::FILES,
        "-o",
        &out,
    ])
    .expect_code(125)
    .expect_one_line_error("run it with `--engine pulley`");
}

#[test]
fn a_big_apps_first_run_starts_on_winch_and_later_runs_get_cranelift_code() {
    let cranelift = Env::new();
    let expected = cranelift.wedge(&["run", "--engine", "cranelift", wat::BIG]);
    expected.expect_code(0);
    assert!(expected.stdout.starts_with("big: "), "{}", expected.stdout);
    assert_eq!(cache_entries(&cranelift.root()).len(), 1);

    let env = Env::new();
    let first = env.wedge(&["run", wat::BIG]);
    first.expect_code(0);
    assert_eq!(first.stdout, expected.stdout);
    assert!(first.stderr.is_empty(), "{}", first.stderr);
    // The run had Winch's code, kept nowhere; a `wedge tier-up` in the background
    // puts Cranelift's in the cache: the entry a run with `--engine cranelift` makes.
    assert_eq!(
        cache_entries_once_compiled(&env.root()),
        relative_to(&cranelift.root(), &cache_entries(&cranelift.root())),
        "no Cranelift code after the first run"
    );
    let later = env.wedge(&["run", wat::BIG]);
    later.expect_code(0);
    assert_eq!(later.stdout, expected.stdout);
    assert_eq!(cache_entries(&env.root()).len(), 1);
}

#[test]
fn small_apps_and_named_compilers_get_no_baseline_first_run() {
    let env = Env::new();
    env.wedge(&["run", "--engine", "winch", wat::BIG])
        .expect_code(0);
    env.wedge(&["run", p1::HELLO]).expect_code(0);
    // Each got the code of the compiler it ran on, and no more appears.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(cache_entries(&env.root()).len(), 2);
}
