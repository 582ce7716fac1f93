//! Compiles the guest programs under `guests/` to Wasm and writes `programs.rs`, a table
//! of constants holding their paths (as wasmtime's `test-programs/artifacts` does).
//!
//! Rust guests are built for `wasm32-wasip1` (core modules) and `wasm32-wasip2`
//! (components); the component-only guests in `guests/components` (`wasi:http/proxy`
//! apps, and commands using wedge's host APIs) for `wasm32-wasip2` only;
//! C guests with clang-16 and Debian's wasi-libc; hand-written core modules in
//! `guests/wat` (instructions no compiled language emits) with the `wat` crate.
//! Missing tools are a build error that points at `scripts/setup.sh`.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Rust guest binaries, one per file in `guests/rust/src/bin`.
const RUST_GUESTS: &[&str] = &[
    "hello", "args_env", "stdio", "files", "net", "memhog", "spin", "sleep", "trap", "exit42",
    "ticker", "flood", "graceful", "nn", "fdhog", "stubborn", "fdstarve",
];
/// `wasi:http/proxy` guests, member crates of the `guests/components` workspace.
const HTTP_GUESTS: &[&str] = &["hello", "probe"];
/// Apps using wedge's host APIs (key-value, config, messaging), members of the same
/// workspace: commands, and one push handler.
const EDGE_GUESTS: &[&str] = &["kv", "msg", "handler"];
/// C guests, one per file in `guests/c`.
const C_GUESTS: &[&str] = &["hello", "files"];
/// C guests built as WASI reactors (`-mexec-model=reactor`): `_initialize` and a default
/// export `""` instead of `_start`, one per file in `guests/c`.
const C_REACTOR_GUESTS: &[&str] = &["reactor"];
/// Core modules written in the text format, one per file in `guests/wat`.
const WAT_GUESTS: &[&str] = &["tables", "big_table"];
/// C guests using wedge's host APIs through `wit-bindgen c` bindings (`guests/c-edge`,
/// one file each, linked with the bindings in `gen/` and `wedge_crt.c`).
const C_EDGE_GUESTS: &[&str] = &["publisher"];
/// C guests for microcontrollers (`guests/micro`, one file each): one page of linear
/// memory and an 8 KiB stack, so they fit a device with wedge-micro; the same modules
/// run under `wedge run`.
const C_MICRO_GUESTS: &[&str] = &["hello", "ticker", "crash", "spin", "hog", "wild"];
/// What makes a C guest small enough for a microcontroller.
const MICRO_FLAGS: &[&str] = &[
    "-Wl,-z,stack-size=8192",
    "-Wl,--initial-memory=65536",
    "-Wl,--strip-debug",
];
/// The Rust targets and the module name each gets in `programs.rs`.
const RUST_TARGETS: &[(&str, &str)] = &[("wasm32-wasip1", "p1"), ("wasm32-wasip2", "p2")];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let guests = manifest_dir.join("guests");
    let components = guests.join("components");
    let mut sources = vec![
        guests.join("rust/src"),
        guests.join("rust/Cargo.toml"),
        guests.join("c"),
        guests.join("c-edge"),
        guests.join("micro"),
        guests.join("wat"),
        components.join("Cargo.toml"),
        components.join("Cargo.lock"),
        manifest_dir.join("../../wit"),
    ];
    for name in HTTP_GUESTS.iter().chain(EDGE_GUESTS) {
        sources.extend([
            components.join(name).join("Cargo.toml"),
            components.join(name).join("src"),
        ]);
    }
    for path in sources {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let mut code = Programs::default();
    let rust_target_dir = out_dir.join("rust-guests");
    let targets: Vec<&str> = RUST_TARGETS.iter().map(|(target, _)| *target).collect();
    build_rust(&guests.join("rust/Cargo.toml"), &rust_target_dir, &targets);
    for (target, module) in RUST_TARGETS {
        let doc = format!("Rust guests built for `{target}`.");
        write_rust_module(
            &mut code,
            &doc,
            module,
            &rust_target_dir.join(target),
            RUST_GUESTS,
        );
    }

    let components_target_dir = out_dir.join("component-guests");
    build_rust(
        &components.join("Cargo.toml"),
        &components_target_dir,
        &["wasm32-wasip2"],
    );
    let built = components_target_dir.join("wasm32-wasip2");
    write_rust_module(
        &mut code,
        "`wasi:http/proxy` components (`wasm32-wasip2`) for `wedge serve`: `hello` answers \
         every request `hello from wasm`; `probe` routes on the path to exercise the host \
         (see `guests/components/probe/src/lib.rs`).",
        "http",
        &built,
        HTTP_GUESTS,
    );
    write_rust_module(
        &mut code,
        "Apps (`wasm32-wasip2`) using wedge's host APIs: `kv` drives `wasi:keyvalue` \
         and `wasi:config`, `msg` drives `wedge:edge/messaging`, from their arguments; \
         `handler` is a push handler (`wedge:edge/handler`) that answers each message \
         (see `guests/components/{kv,msg,handler}/src`).",
        "edge",
        &built,
        EDGE_GUESTS,
    );

    code.open_module(
        "C guests built with clang-16 for `wasm32-wasi` (core modules); `publisher` \
         imports `wedge:edge/messaging` through `wit-bindgen c` bindings, so wedge makes \
         it a component to run it; `reactor` is a WASI reactor.",
        "c",
    );
    for name in C_GUESTS {
        let out = out_dir.join(format!("c-{name}.wasm"));
        build_c(&[guests.join("c").join(format!("{name}.c"))], &[], &out);
        code.constant(name, &out);
    }
    let edge = guests.join("c-edge");
    for name in C_EDGE_GUESTS {
        let out = out_dir.join(format!("c-{name}.wasm"));
        let sources = [
            edge.join(format!("{name}.c")),
            edge.join("wedge_crt.c"),
            edge.join("gen/messaging_client.c"),
        ];
        // `wedge_crt.c` replaces wasi-libc's `_start` (see there).
        build_c(&sources, &["-nostartfiles"], &out);
        code.constant(name, &out);
    }
    for name in C_REACTOR_GUESTS {
        let out = out_dir.join(format!("c-{name}.wasm"));
        build_c(
            &[guests.join("c").join(format!("{name}.c"))],
            &["-mexec-model=reactor"],
            &out,
        );
        code.constant(name, &out);
    }
    code.close_module();

    code.open_module(
        "C guests for microcontrollers (`guests/micro`), one 64 KiB page of memory each: \
         `hello` greets its arguments, `ticker` ticks every 10 ms, `crash` traps, `spin` \
         loops forever, `hog` takes memory until refused, `wild` hands the host addresses \
         outside its memory, `chat` talks over `wedge:edge/messaging` through the `c-edge` \
         bindings.",
        "micro",
    );
    for name in C_MICRO_GUESTS {
        let out = out_dir.join(format!("micro-{name}.wasm"));
        build_c(
            &[guests.join("micro").join(format!("{name}.c"))],
            MICRO_FLAGS,
            &out,
        );
        code.constant(name, &out);
    }
    let out = out_dir.join("micro-chat.wasm");
    let sources = [
        guests.join("micro/chat.c"),
        edge.join("wedge_crt.c"),
        edge.join("gen/messaging_client.c"),
    ];
    build_c(&sources, &[MICRO_FLAGS, &["-nostartfiles"]].concat(), &out);
    code.constant("chat", &out);
    code.close_module();

    code.open_module(
        "Core modules written in the text format (`guests/wat`): `tables` grows ten \
         tables by ten million elements each, `big_table` declares one that large; `big`, \
         generated here, is over 1 MiB of code (thousands of functions folded into one \
         number it prints), an app big enough for a first run on the baseline compiler; \
         `big_throws` is the same passing the number through a Wasm exception, which \
         the baseline compiler (Winch) refuses.",
        "wat",
    );
    for (name, exceptions) in [("big", false), ("big_throws", true)] {
        let out = out_dir.join(format!("wat-{name}.wasm"));
        let bytes = wat::parse_str(big_module(exceptions)).expect("assemble a generated module");
        std::fs::write(&out, bytes).expect("write a generated module");
        code.constant(name, &out);
    }
    for name in WAT_GUESTS {
        let source = guests.join("wat").join(format!("{name}.wat"));
        let bytes = wat::parse_file(&source)
            .unwrap_or_else(|e| panic!("cannot assemble `{}`: {e}", source.display()));
        let out = out_dir.join(format!("wat-{name}.wasm"));
        std::fs::write(&out, bytes).expect("write an assembled guest");
        code.constant(name, &out);
    }
    code.close_module();
    std::fs::write(out_dir.join("programs.rs"), code.finish()).expect("write programs.rs");
}

/// Functions of the generated `big` module, and arithmetic steps in each.
const BIG_FUNCTIONS: u32 = 6000;
const BIG_STEPS: u32 = 48;

/// The text of the `big` guest: `_start` folds a number through every function (each a
/// different chain of multiplies, adds, xors and rotates) and prints it in decimal with
/// `fd_write`, `big: N`. With `exceptions`, the number is thrown and caught on its way
/// (the same output).
fn big_module(exceptions: bool) -> String {
    let mut wat = String::from(
        "(module\n\
         (import \"wasi_snapshot_preview1\" \"fd_write\" \
         (func $fd_write (param i32 i32 i32 i32) (result i32)))\n\
         (memory (export \"memory\") 1)\n",
    );
    if exceptions {
        wat.push_str(
            "(tag $number (param i32))\n\
             (func $through_exception (param i32) (result i32)\n\
               (block $caught (result i32)\n\
                 (try_table (catch $number $caught) local.get 0 throw $number)\n\
                 unreachable))\n",
        );
    }
    let ops = ["i32.mul", "i32.add", "i32.xor", "i32.rotl"];
    for f in 0..BIG_FUNCTIONS {
        write!(wat, "(func $f{f} (param i32) (result i32) local.get 0").unwrap();
        for step in 0..BIG_STEPS {
            let constant = ((f * 7919 + step * 104_729) % 65_521) | 1;
            let op = ops[((f + step) % 4) as usize];
            write!(wat, " i32.const {constant} {op}").unwrap();
        }
        wat.push_str(")\n");
    }
    wat.push_str("(func (export \"_start\") (local $n i32) (local $at i32)\ni32.const 1\n");
    for f in 0..BIG_FUNCTIONS {
        writeln!(wat, "call $f{f}").unwrap();
    }
    if exceptions {
        wat.push_str("call $through_exception\n");
    }
    // The number's digits backwards from byte 64, after "big: ", then a newline.
    wat.push_str(
        "local.set $n\n\
         i32.const 64 i32.const 10 i32.store8\n\
         i32.const 64 local.set $at\n\
         (loop $digit\n\
           local.get $at i32.const 1 i32.sub local.tee $at\n\
           local.get $n i32.const 10 i32.rem_u i32.const 48 i32.add i32.store8\n\
           local.get $n i32.const 10 i32.div_u local.tee $n\n\
           br_if $digit)\n\
         local.get $at i32.const 5 i32.sub local.tee $at\n\
         i32.const 0x20676962 i32.store\n\
         local.get $at i32.const 58 i32.store8 offset=3\n\
         local.get $at i32.const 32 i32.store8 offset=4\n\
         i32.const 100 local.get $at i32.store\n\
         i32.const 104 i32.const 65 local.get $at i32.sub i32.store\n\
         i32.const 1 i32.const 100 i32.const 1 i32.const 108 call $fd_write drop)\n)\n",
    );
    wat
}

/// Writes `pub mod {module}` with one constant per guest in `{target_dir}/release`.
fn write_rust_module(
    code: &mut Programs,
    doc: &str,
    module: &str,
    target_dir: &Path,
    names: &[&str],
) {
    code.open_module(doc, module);
    for name in names {
        let path = target_dir.join("release").join(format!("{name}.wasm"));
        assert!(path.exists(), "guest `{}` was not built", path.display());
        code.constant(name, &path);
    }
    code.close_module();
}

/// The text of `programs.rs`: a module of path constants per kind of guest, then
/// `ALL`, every constant's `module::NAME` (for the check that each is used by a test).
#[derive(Default)]
struct Programs {
    code: String,
    module: String,
    all: Vec<String>,
}

impl Programs {
    fn open_module(&mut self, doc: &str, module: &str) {
        writeln!(self.code, "/// {doc}\npub mod {module} {{").unwrap();
        self.module = module.to_string();
    }

    fn constant(&mut self, name: &str, path: &Path) {
        let constant = name.to_uppercase();
        writeln!(
            self.code,
            "    /// Path of the `{name}` guest.\n    pub const {constant}: &str = {:?};",
            path.display().to_string()
        )
        .unwrap();
        self.all.push(format!("{}::{constant}", self.module));
    }

    fn close_module(&mut self) {
        self.code.push_str("}\n");
    }

    fn finish(self) -> String {
        format!(
            "// Generated by build.rs: paths of the compiled guest programs.\n{}\
             /// Every constant above, as `module::NAME`.\npub const ALL: &[&str] = &{:?};\n",
            self.code, self.all
        )
    }
}

/// Builds a standalone guest workspace in release mode for each of `targets`.
fn build_rust(manifest: &Path, target_dir: &Path, targets: &[&str]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--quiet")
        .arg("--locked")
        .arg("--manifest-path")
        .arg(manifest);
    for target in targets {
        cmd.arg("--target").arg(target);
    }
    cmd.env("CARGO_TARGET_DIR", target_dir);
    // Flags meant for the host build (coverage, sanitizers, profiles) must not reach the guests.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_ENCODED_RUSTFLAGS")
            || key == "RUSTFLAGS"
            || key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_BUILD_")
            || key == "RUSTC_WRAPPER"
            || key == "RUSTC_WORKSPACE_WRAPPER"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    let hint = format!(
        "rustup target add {} (and crates.io or a filled cargo cache for guest dependencies)",
        targets.join(" ")
    );
    run(&mut cmd, &hint);
}

fn build_c(sources: &[PathBuf], flags: &[&str], out: &Path) {
    let clang = env::var("WEDGE_WASI_CLANG").unwrap_or_else(|_| "clang-16".into());
    let mut cmd = Command::new(clang);
    cmd.args(["--target=wasm32-wasi", "-O2", "-Wall", "-Werror"])
        .args(flags)
        .arg("-o")
        .arg(out)
        .args(sources);
    run(
        &mut cmd,
        "scripts/setup.sh (installs clang-16, lld-16, wasi-libc, libclang-rt-16-dev-wasm32)",
    );
}

fn run(cmd: &mut Command, hint: &str) {
    match cmd.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("building guests failed ({status}): {cmd:?}\nhint: {hint}"),
        Err(e) => panic!("cannot run {cmd:?}: {e}\nhint: {hint}"),
    }
}
